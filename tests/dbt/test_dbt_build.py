"""The dbt project built for real on DuckDB over a small bronze fixture: silver is clean and complete,
gold matches silver."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from lakehouse.config import DBT_PROJECT_DIR
from lakehouse.contract import DEVICE_TYPES, METRICS, load_metric_limits


def test_silver_has_no_duplicate_event_key(small_fleet):
    built, _ = small_fleet
    duplicates = built.query(
        "select device_id, event_at, seq, count(*) from silver.silver_readings group by all having count(*) > 1"
    )
    assert duplicates == []


def test_bronze_rows_equal_silver_plus_rejected_exactly(small_fleet):
    built, fleet = small_fleet
    silver = built.query("select count(*) from silver.silver_readings")[0][0]
    rejected = built.query("select count(*) from silver.silver_rejected_readings")[0][0]
    assert silver == fleet.clean_rows
    assert silver + rejected == built.bronze_count()


def test_silver_holds_only_values_inside_the_valid_range_of_their_device_type(small_fleet):
    built, _ = small_fleet
    limits = load_metric_limits()
    for (device_type, metric), limit in limits.items():
        outside = built.query(
            f"select count(*) from silver.silver_readings where device_type = '{device_type}' "
            f"and ({metric} < {limit.valid_min} or {metric} > {limit.valid_max} or isnan({metric}))"
        )[0][0]
        assert outside == 0, (device_type, metric)
    for device_type, metrics in DEVICE_TYPES.items():
        for metric in set(METRICS) - set(metrics):
            reported = built.query(
                f"select count(*) from silver.silver_readings "
                f"where device_type = '{device_type}' and {metric} is not null"
            )[0][0]
            assert reported == 0, (device_type, metric)


def test_dirty_rows_are_rejected_with_their_reason(small_fleet):
    built, fleet = small_fleet
    rows = built.query(
        "select device_id, event_at, seq, rejection_reason, rejected_metric "
        "from silver.silver_rejected_readings where rejection_reason <> 'duplicate' order by seq"
    )
    device_id, event_at, seq, metric = fleet.out_of_range
    assert (device_id, event_at, seq, "out_of_range", metric) in rows
    assert (*fleet.future, "future_event", None) in rows
    assert (*fleet.type_mismatch, "device_type_mismatch", None) in rows
    unknown = [row for row in rows if row[0] == fleet.unknown_device]
    assert [row[3] for row in unknown] == ["unknown_device"]


def test_duplicate_readings_keep_the_latest_ingest(small_fleet):
    built, fleet = small_fleet
    republished = built.query(
        "select s.batch_id, r.batch_id, r.rejection_reason from silver.silver_readings as s "
        "join silver.silver_rejected_readings as r using (device_id, event_at, seq) "
        "where s.device_id = 'mch-00002'"
    )
    assert len(republished) == len(fleet.republished_keys)
    assert set(republished) == {(1, 0, "duplicate")}
    retried = built.query(
        "select rejection_reason, copy_number from silver.silver_rejected_readings "
        f"where device_id = '{fleet.retried['device_id']}' and seq = {fleet.retried['seq']}"
    )
    assert retried == [("duplicate", 2)]


def test_hourly_gold_equals_a_direct_duckdb_aggregate_of_silver(small_fleet):
    built, _ = small_fleet
    unpivoted = " union all ".join(
        f"select device_id, '{m}' as metric, date_trunc('hour', event_at) as hour_at, {m} as v "
        f"from silver.silver_readings where {m} is not null"
        for m in METRICS
    )
    expected = built.query(
        f"""
        select device_id, metric, hour_at, count(*), min(v), max(v), avg(v), stddev_samp(v),
               quantile_cont(v, 0.5), quantile_cont(v, 0.95)
        from ({unpivoted}) group by all order by all
        """
    )
    actual = built.query(
        """
        select device_id, metric, hour_at, reading_count, min_value, max_value, avg_value, stddev_value,
               p50_value, p95_value
        from gold.gold_sensor_metrics_hourly order by device_id, metric, hour_at
        """
    )
    assert len(actual) == len(expected) > 0
    for got, want in zip(actual, expected, strict=True):
        assert got[:4] == want[:4]
        for g, w in zip(got[4:], want[4:], strict=True):
            assert (g is None and w is None) or math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9)


def test_hourly_completeness_compares_readings_with_the_reporting_interval(small_fleet):
    built, _ = small_fleet
    rows = built.query(
        "select device_type, metric, reading_count, expected_count, completeness "
        "from gold.gold_sensor_metrics_hourly where hour_at = '2026-03-01 10:00:00' "
        "and metric in ('temperature_c', 'distance_mm') order by device_type"
    )
    # environmental reports every 30 s (120 an hour), machine every 10 s (360), step trainer every 5 s.
    assert rows == [
        ("environmental", "temperature_c", 120, 120.0, 1.0),
        ("machine", "temperature_c", 360, 360.0, 1.0),
        ("step_trainer", "distance_mm", 720, 720.0, 1.0),
    ]


def test_a_reading_beyond_the_alert_limit_is_a_threshold_breach(lake_builder, bronze, tmp_path):
    rows = bronze.series(2, bronze.DAY_1, 30, 10)
    for row in rows[10:13]:
        row["vibration_mm_s"] = 7.0  # alert above 4.5, valid up to 100
    rows[11]["vibration_mm_s"] = 9.0
    bronze.write(tmp_path, rows, batch_id=0, ingested_at=bronze.DAY_1.replace(hour=1))
    built = lake_builder()
    assert built.result.success, built.result.failures
    anomalies = built.query(
        "select device_id, metric, started_at, ended_at, peak_value, reading_count, severity "
        "from gold.gold_anomalies where anomaly_kind = 'threshold_breach'"
    )
    assert anomalies == [
        ("mch-00002", "vibration_mm_s", rows[10]["event_time"], rows[12]["event_time"], 9.0, 3, "info")
    ]


def test_a_failing_model_is_reported_without_raising(lake_builder, tmp_path):
    # A bronze file without the contract's columns: the staging view over bronze cannot be created.
    folder = tmp_path / "bronze" / "readings" / "event_date=2026-03-01"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"device_id": ["env-00001"], "event_time": ["not a time"]}), folder / "part-0.parquet")
    built = lake_builder()
    assert built.result.success is False
    assert any("stg_bronze__readings" in failure for failure in built.result.failures), built.result.failures


def test_the_unit_tests_run_and_pass_when_asked_for(small_fleet):
    built, _ = small_fleet
    unit_tests = [t for t in built.result.tests if t.name.startswith("test_")]
    assert len(unit_tests) >= 12
    assert {t.status for t in unit_tests} == {"pass"}
    assert any(t.name == "test_late_data_re_aggregates_exactly_the_hours_it_falls_in" for t in unit_tests)


def test_a_production_transform_leaves_the_unit_tests_out(bronze, tmp_path):
    bronze.write(tmp_path, bronze.series(2, bronze.DAY_1, 10, 10), batch_id=0, ingested_at=bronze.DAY_1.replace(hour=1))
    from lakehouse.config import Settings
    from orchestration.transform import transform

    result = transform(Settings.load(env={}, lake=str(tmp_path)), "silver")
    assert result.success, result.failures
    assert result.tests and not [t for t in result.tests if t.name.startswith("test_")]


def test_every_model_runs_and_reports_its_status(small_fleet):
    built, _ = small_fleet
    names = {m.name for m in built.result.models}
    assert {
        "silver_readings",
        "silver_rejected_readings",
        "gold_sensor_metrics_hourly",
        "gold_sensor_metrics_daily",
        "gold_anomalies",
        "gold_device_health",
    } <= names
    assert all(m.status == "success" for m in built.result.models)


@pytest.mark.parametrize("seed", ["metric_limits", "device_types"])
def test_the_default_catalogue_covers_exactly_the_simulated_device_types(seed):
    import csv

    from lakehouse.contract import DEFAULTS_DIR

    with (DEFAULTS_DIR / f"{seed}.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    if seed == "metric_limits":
        pairs = {(r["device_type"], r["metric"]) for r in rows}
        assert pairs == {(t, m) for t, metrics in DEVICE_TYPES.items() for m in metrics}
    else:
        assert {r["device_type"] for r in rows} == set(DEVICE_TYPES)


def test_dbt_metric_list_is_the_contract_metric_list():
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert tuple(project["vars"]["metrics"]) == METRICS
