"""`lakehouse demo`'s arguments (the demo itself runs end to end in tests/e2e/test_stedi_pipeline.py)."""

from __future__ import annotations

import pytest

from lakehouse.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stedi-customers", "-1"], "--stedi-customers -1 must be 0 or more"),
        (["--dirty-rate", "1.5"], "--dirty-rate 1.5 must be between 0 and 1"),
    ],
)
def test_impossible_demo_arguments_are_refused_before_anything_runs(tmp_path, capsys, args, message):
    assert main(["--lake", str(tmp_path / "lake"), "demo", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()


def test_demo_help_says_what_it_lands(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "--stedi-customers" in out and "--readings" in out
