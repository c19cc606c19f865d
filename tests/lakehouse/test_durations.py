"""Every command reads durations in one grammar: a positive number and a unit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lakehouse.cli import main
from lakehouse.durations import DurationError, parse_duration, spark_interval


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10),
        ("1.5m", 90),
        ("15m", 900),
        ("1h", 3600),
        ("2d", 172_800),
        ("10 seconds", 10),
        ("2 Minutes", 120),
        (" 1d ", 86_400),
    ],
)
def test_a_duration_is_a_number_and_a_unit(text, seconds):
    assert parse_duration(text, "--every") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["15", "0m", "fast", "1w", "-5s", ""])
def test_anything_else_is_refused_naming_the_option_and_examples(text):
    with pytest.raises(DurationError, match=r"--every '.*' is not a duration.*e\.g\. 10s, 15m, 1h, 1d"):
        parse_duration(text, "--every")


def test_spark_gets_its_trigger_interval_in_seconds():
    assert spark_interval(parse_duration("2m", "--interval")) == "120 seconds"
    assert spark_interval(parse_duration("500ms", "--interval")) == "0.5 seconds"


@pytest.mark.parametrize(
    "command",
    [
        ["bronze", "--continuous", "--interval"],
        ["stream", "--interval"],
        ["schedule", "--every"],
        ["produce", "--duration"],
    ],
)
def test_every_command_refuses_the_same_bad_duration_the_same_way(command, tmp_path, capsys):
    assert _exit_code(["--lake", str(tmp_path / "lake"), *command, "15"]) == 2
    assert f"{command[-1]} '15' is not a duration; write a number and a unit" in capsys.readouterr().err


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse refuses a bad option value itself (`type=`), with exit code 2
        return int(exc.code)
