"""`lakehouse demo`, the README's first command, through the real command line (in-process, so it shares
the test session's Spark): it lands a fleet and a STEDI dataset, runs a cycle, prints the stage table and
where to look next."""

from __future__ import annotations

import duckdb
import pytest

from lakehouse.cli import main


@pytest.fixture(scope="module")
def demo_run(spark, tmp_path_factory):
    lake = tmp_path_factory.mktemp("demo") / "lake"
    capture = pytest.MonkeyPatch()
    outputs: list[str] = []
    capture.setattr("builtins.print", lambda *a, **_k: outputs.append(" ".join(str(x) for x in a)))
    try:
        code = main(["--lake", str(lake), "demo", "--readings", "3000", "--devices", "8", "--stedi-customers", "12"])
    finally:
        capture.undo()
    return lake, code, "\n".join(outputs)


def test_the_demo_exits_0_and_prints_a_row_per_stage(demo_run):
    _, code, output = demo_run
    assert code == 0, output
    stages = [line.split()[0] for line in output.splitlines() if line.split() and line.split()[0].islower()]
    for stage in ("produce", "produce_stedi", "bronze", "gate_bronze", "silver", "gate_silver", "gold", "gate_gold"):
        assert stage in stages, f"no '{stage}' row in:\n{output}"
    assert "machine_learning_curated" in output, "the next steps show the curated zone"


def test_the_demo_builds_gold_and_the_consent_aware_curated_zone(demo_run):
    lake, _, _ = demo_run
    with duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True) as con:
        hourly = con.execute("select count(*) from gold.gold_sensor_metrics_hourly").fetchall()[0][0]
        paired = con.execute("select count(*) from curated.machine_learning_curated").fetchall()[0][0]
    assert hourly > 0
    assert paired > 0


def test_a_negative_number_of_stedi_customers_is_refused(tmp_path, capsys):
    assert main(["--lake", str(tmp_path / "lake"), "demo", "--stedi-customers", "-1"]) == 2
    assert "--stedi-customers -1 must be 0 or more" in capsys.readouterr().err
