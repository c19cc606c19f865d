"""`lakehouse gate bronze|silver|gold`: exit codes, what it prints, and its help."""

from __future__ import annotations

import pytest

from lakehouse import ops
from lakehouse.cli import build_parser, main


def test_a_passing_gate_exits_0_and_prints_its_report(gate_lake, capsys):
    gate_lake.write_warehouse(gate_lake.silver_from(gate_lake.clean_readings()))

    code = main(["--lake", gate_lake.lake.root, "gate", "silver", "--partition", gate_lake.day, "--run-id", "cli-1"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("gate silver passed: all expected; 42 expectations over 1 partition(s)")
    assert {r["run_id"] for r in ops.read(gate_lake.lake, "ops_gate_results")} == {"cli-1"}


def test_an_error_failure_exits_3_with_the_failed_expectations(gate_lake, capsys):
    readings = gate_lake.clean_readings()
    readings.loc[0, "device_id"] = "sensor#1"
    gate_lake.write_bronze(readings, batch_id=4)

    code = main(["--lake", gate_lake.lake.root, "gate", "bronze", "--batch", "4"])

    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("error: gate bronze FAILED: 1 error(s), 0 warning(s)")
    assert "ERROR   bronze__readings :: device_id_matches_pattern (device_id, where not matching the pattern)" in err
    assert "1 of 192 checked rows unexpected" in err
    assert "e.g. chk_device_id_not_matching_pattern=sensor#1  device_id=sensor#1" in err


def test_a_warning_is_printed_and_the_gate_still_passes(gate_lake, capsys):
    gate_lake.write_warehouse(gate_lake.silver_from(gate_lake.clean_readings()))
    gate_lake.execute("update gold.gold_device_health set battery_pct = 101 where device_id = 'env-00001'")

    code = main(["--lake", gate_lake.lake.root, "gate", "gold"])

    out = capsys.readouterr().out
    assert code == 0
    assert "gate gold passed: 1 warning(s)" in out.replace("0 error(s), ", "")
    assert "WARNING gold__device_health :: battery_pct_between_0_and_100 (battery_pct)" in out


def test_input_that_cannot_be_gated_exits_2_with_the_reason(gate_lake, capsys):
    code = main(["--lake", gate_lake.lake.root, "gate", "gold"])

    assert code == 2
    assert "warehouse.duckdb does not exist; build silver and gold first" in capsys.readouterr().err


def test_several_partitions_and_batches_can_be_given(gate_lake):
    args = build_parser().parse_args(
        ["gate", "bronze", "--batch", "1", "2", "--batch", "5", "--partition", "2026-03-01", "--docs"]
    )

    assert args.batch_ids == [1, 2, 5]
    assert args.partitions == ["2026-03-01"]
    assert args.docs is True


def test_gate_help_explains_layers_severities_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["gate", "--help"])

    text = capsys.readouterr().out
    for phrase in (
        "bronze",
        "silver",
        "gold",
        "expectations/gates.toml",
        "--partition DATE",
        "--batch N",
        "--docs",
        "exit codes",
        "3 an error-severity expectation failed",
        "never deletes",
    ):
        assert phrase in text, phrase
