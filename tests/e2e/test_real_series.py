"""Real recorded series brought as a user would bring them (issue 15): the two NAB series of
../shared/datasets/nab/ on device types and metrics the default catalogue does not have, imported from a
CSV, replayed (or sent by the user's own gateway before their metric was declared), landed by Spark,
and modelled by dbt; every reading reaches silver."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ingestion.simulator import line_sizes
from ingestion.sinks import make_sink
from lakehouse.catalogue_store import import_files
from lakehouse.cli import main
from lakehouse.config import Settings
from orchestration.backfill import DateRange
from orchestration.transform import transform
from tests.support.datasets import NAB_DIR

pytestmark = pytest.mark.e2e

CPU = NAB_DIR / "cpu_utilization_asg_misconfiguration.csv"
AMBIENT = NAB_DIR / "ambient_temperature_system_failure.csv"
REFERENCE = {"reference_time": "2026-03-02 00:00:00"}

# One catalogue file, several kinds (the `kind` column): two new device types, a new metric, two devices.
CATALOGUE = """\
kind,device_type,reporting_interval_s,silence_after_s,description,metric,unit,valid_min,valid_max,alert_max,device_id,site_id,installed_at
device_type,autoscaling_group,300,1800,EC2 auto scaling group (NAB realKnownCause),,,,,,,,
device_type,office_climate,3600,86400,Office ambient temperature sensor (NAB realKnownCause),,,,,,,,
metric,autoscaling_group,,,,cpu_utilization_pct,percent,0,100,95,,,
device,autoscaling_group,,,,,,,,,nab-asg-0001,aws-us-east-1,2014-05-14 01:14:00
device,office_climate,,,,,,,,,nab-office-0001,office-1,2013-07-04
"""
AMBIENT_METRIC = (
    "device_type,metric,unit,valid_min,valid_max\noffice_climate,ambient_temperature_f,degree Fahrenheit,-40,150\n"
)


def nab_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def silver_values(settings: Settings, metric: str, device_id: str) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        columns = {c[0] for c in con.execute("describe silver.silver_readings").fetchall()}
        value = metric if metric in columns else "'no such column'"
        return con.execute(
            f"select strftime(event_at, '%Y-%m-%d %H:%M:%S'), {value} from silver.silver_readings "
            f"where device_id = '{device_id}' order by event_at"
        ).fetchall()


@pytest.fixture(scope="module")
def real_lake(spark, tmp_path_factory):
    from spark.bronze_job import run_bronze

    if not CPU.is_file() or not AMBIENT.is_file():
        pytest.fail(f"the NAB series are missing from {NAB_DIR}; see tests/ingestion/test_replay.py")
    folder = tmp_path_factory.mktemp("real")
    settings = Settings.load(env={}, cwd=folder, lake=str(folder / "lake"))
    catalogue = folder / "my_fleet.csv"
    catalogue.write_text(CATALOGUE)
    assert main(["--lake", settings.lake, "catalog", "import", str(catalogue)]) == 0
    # The CPU series, replayed onto the metric the import declared.
    assert main(["--lake", settings.lake, "replay", str(CPU), "--device", "nab-asg-0001",
                 "--map", "value=cpu_utilization_pct", "--quiet"]) == 0  # fmt: skip
    # The office sensor's own gateway sends its readings before anyone declared their metric.
    lines = [
        json.dumps({"device_id": "nab-office-0001", "device_type": "office_climate", "site_id": "office-1",
                    "event_time": row["timestamp"].replace(" ", "T") + "Z", "seq": n,
                    "ambient_temperature_f": float(row["value"])})
        for n, row in enumerate(nab_rows(AMBIENT), start=1)
    ]  # fmt: skip
    gateway = make_sink("landing", settings.lake_root, "gateway")
    gateway.send(lines, np.zeros(len(lines), dtype="int64"), ["nab-office-0001"] * len(lines), line_sizes(lines))
    gateway.close()
    bronze = run_bronze(settings, spark=spark)
    before = transform(settings, "silver", vars=REFERENCE, data_tests=False)
    assert before.success, before.failures
    before_values = silver_values(settings, "ambient_temperature_f", "nab-office-0001")
    # Then the metric is declared, and a backfill over the series' dates brings its readings in.
    metric = folder / "ambient.csv"
    metric.write_text(AMBIENT_METRIC)
    import_files(settings, [metric])
    unchanged = transform(settings, "silver", vars=REFERENCE, data_tests=False)
    assert unchanged.success, unchanged.failures
    unchanged_values = silver_values(settings, "ambient_temperature_f", "nab-office-0001")
    days = DateRange.parse("2013-07-04", "2014-05-28").dbt_vars()
    backfilled = transform(settings, vars={**REFERENCE, **days}, data_tests=False)
    assert backfilled.success, backfilled.failures
    return settings, bronze, before_values, unchanged_values


def test_every_replayed_reading_of_a_new_metric_reaches_silver(real_lake):
    settings, bronze, _, _ = real_lake
    rows = nab_rows(CPU)
    assert (bronze.lines, bronze.bronze_rows, bronze.quarantine_rows) == (7_267 + 18_050, 7_267 + 18_050, 0)
    values = silver_values(settings, "cpu_utilization_pct", "nab-asg-0001")
    assert values == [(row["timestamp"], float(row["value"])) for row in rows]
    assert len(values) == 18_050


def test_readings_sent_before_their_metric_was_declared_come_in_with_a_backfill(real_lake):
    settings, _, before, unchanged = real_lake
    rows = nab_rows(AMBIENT)
    # Every reading is in silver; the undeclared value only in bronze's _rescued_data, no silver column.
    assert len(before) == len(rows) == 7_267
    assert {value for _, value in before} == {"no such column"}
    # Declaring the metric adds its column; the readings already in silver get values only with a backfill.
    assert [t for t, _ in unchanged] == [t for t, _ in before]
    assert {value for _, value in unchanged} == {None}
    after = silver_values(settings, "ambient_temperature_f", "nab-office-0001")
    assert after == [(row["timestamp"], float(row["value"])) for row in rows]


def test_gold_aggregates_the_new_metrics(real_lake):
    import duckdb

    settings, _, _, _ = real_lake
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        counts = con.execute(
            "select metric, sum(reading_count) from gold.gold_sensor_metrics_daily "
            "where device_id like 'nab-%' group by metric order by metric"
        ).fetchall()
        bronze_rows = con.execute(
            f"select count(*) from read_parquet('{settings.lake_root.bronze_readings}/*/*.parquet')"
        ).fetchall()[0][0]
        silver_rows = con.execute(
            "select (select count(*) from silver.silver_readings)"
            " + (select count(*) from silver.silver_rejected_readings)"
        ).fetchall()[0][0]
    assert counts == [("ambient_temperature_f", 7_267), ("cpu_utilization_pct", 18_050)]
    assert bronze_rows == silver_rows == 7_267 + 18_050


def test_the_gates_judge_the_new_device_types_and_metrics_by_the_catalogue(real_lake):
    from expectations.runner import run_gate

    settings, bronze, _, _ = real_lake
    results = {
        "bronze": run_gate(settings, "bronze", run_id="real", batch_ids=bronze.batch_ids),
        "silver": run_gate(settings, "silver", run_id="real"),
        "gold": run_gate(settings, "gold", run_id="real"),
    }
    for layer, result in results.items():
        assert result.success, result.format_report()
        assert [o.expectation for o in result.failures] == [], layer
    checked = {o.expectation: o for o in results["silver"].results}
    # the catalogue's new metrics are checked like the contract's, against the catalogue's ranges
    cpu_range = checked["cpu_utilization_pct_in_valid_range_for_autoscaling_group"]
    assert cpu_range.success and cpu_range.element_count == results["silver"].rows
    assert checked["ambient_temperature_f_null_for_types_not_reporting_it"].success
    assert results["silver"].rows >= 7_267 + 18_050
