"""Specification of the dashboard's queries, on a tiny warehouse with exactly known rows (conftest
``TINY_WAREHOUSE_SQL``, fleet clock 2026-03-02 12:00 UTC) and on inline ops records."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dashboards import data as q
from dashboards.data import AnomalyFilter
from lakehouse.catalogue import SINCE_ALWAYS, Entry
from lakehouse.catalogue_store import Version, default_entries
from lakehouse.fleet import default_fleet, fleet_of

AS_OF = datetime(2026, 3, 2, 12, 0, 0)


def anomaly_ids(tiny_data, **filters) -> list[str]:
    with tiny_data.warehouse() as con:
        page = q.find_anomalies(con, AnomalyFilter(**filters))
    return sorted(page.rows.anomaly_id)


def test_the_fleet_counts_devices_and_those_not_silent_at_the_fleet_clock(tiny_data):
    with tiny_data.warehouse() as con:
        summary = q.fleet_summary(con)
    assert (summary.devices, summary.online, summary.offline) == (3, 2, 1)
    assert summary.as_of_at == AS_OF
    assert summary.by_status.values.tolist() == [["silent", 1], ["degraded", 1], ["healthy", 1]]


def test_anomalies_of_the_last_24_hours_are_the_windows_that_overlap_them(tiny_data):
    since, until = q.anomaly_window(AS_OF)
    with tiny_data.warehouse() as con:
        counts = q.anomalies_by_kind_and_site(con, since, until)
    assert counts.values.tolist() == [
        ["data_gap", "site-02", "critical", 1],  # started 27 h before, ended 23 h before the clock
        ["flatline", "site-01", "warning", 1],
        ["threshold_breach", "site-02", "critical", 1],  # the one 25 h old is left out
    ]


def test_the_fleet_table_lists_the_worst_devices_first(tiny_data):
    with tiny_data.warehouse() as con:
        devices = q.fleet_devices(con)
    assert devices.device_id.tolist() == ["wrb-00003", "mch-00002", "env-00001"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["a-across", "a-flat", "a-inside", "a-old"]),
        ({"kinds": ["threshold_breach"]}, ["a-inside", "a-old"]),
        ({"kinds": ["threshold_breach"], "severities": ["critical"]}, ["a-inside"]),
        ({"sites": ["site-01"]}, ["a-flat", "a-old"]),
        ({"device_text": "MCH"}, ["a-across", "a-inside"]),
        ({"device_text": "  0001 "}, ["a-flat", "a-old"]),
        ({"since": datetime(2026, 3, 2)}, ["a-flat", "a-inside"]),
        ({"until": datetime(2026, 3, 1, 9, 30)}, ["a-across"]),
    ],
)
def test_anomaly_filters_combine(tiny_data, filters, expected):
    assert anomaly_ids(tiny_data, **filters) == expected


@pytest.mark.parametrize(
    "hostile",
    [
        "x' or '1'='1",
        "'; drop table gold.gold_anomalies; --",
        "env-00001' --",
        "%",
        "_",
        "') or true or ('",
    ],
)
def test_a_hostile_filter_string_is_treated_as_data(tiny_data, hostile):
    assert anomaly_ids(tiny_data, device_text=hostile) == []
    assert anomaly_ids(tiny_data, kinds=[hostile]) == []
    with tiny_data.warehouse() as con:
        assert con.execute("select count(*) from gold.gold_anomalies").fetchall() == [(4,)]


def test_a_filter_typed_with_sql_finds_a_device_whose_id_really_contains_it(tiny_lake, tmp_path):
    from dashboards.data import DashboardData

    with duckdb.connect(str(tiny_lake.lake_root.warehouse)) as con:
        con.execute(
            "insert into gold.gold_anomalies (anomaly_id, device_id, anomaly_kind, severity, started_at, ended_at) "
            "values ('a-odd', 'odd''; drop--', 'flatline', 'info', '2026-03-02 01:00:00', '2026-03-02 02:00:00')"
        )
    data = DashboardData(tiny_lake.lake_root, tmp_path / "copies", min_refresh_interval_s=0)
    data.refresh()
    assert anomaly_ids(data, device_text="'; drop--") == ["a-odd"]


def test_the_anomaly_page_counts_all_matches_but_returns_at_most_the_limit(tiny_data):
    with tiny_data.warehouse() as con:
        page = q.find_anomalies(con, AnomalyFilter(limit=2))
    assert (page.total, page.devices, len(page.rows)) == (4, 2, 2)
    assert page.rows.anomaly_id.tolist() == ["a-inside", "a-across"]  # critical first, newest first
    assert page.by_kind.anomalies.sum() == 4


def test_a_device_series_is_gold_hourly_or_silver_readings_in_long_form(tiny_data):
    since, until = AS_OF - timedelta(hours=24), AS_OF
    with tiny_data.warehouse() as con:
        device = q.device(con, "mch-00002", default_fleet())
        hourly = q.device_series(con, device, since, until, "hourly")
        readings = q.device_series(con, device, since, until, "readings")
    assert device.metrics == ("temperature_c", "pressure_hpa", "vibration_mm_s")
    vibration = hourly[hourly.metric == "vibration_mm_s"]
    assert vibration[["value", "min_value", "max_value"]].values.tolist() == [[1.5, 1.0, 2.0], [2.5, 1.0, 7.5]]
    assert sorted(readings.metric.unique()) == ["pressure_hpa", "temperature_c", "vibration_mm_s"]
    assert readings[readings.metric == "vibration_mm_s"].value.tolist() == [1.2, 7.5]


def test_a_device_anomaly_list_has_its_metric_and_device_level_windows(tiny_data):
    with tiny_data.warehouse() as con:
        windows = q.device_anomalies(con, "mch-00002", AS_OF - timedelta(days=2), AS_OF)
    assert windows.anomaly_kind.tolist() == ["threshold_breach", "data_gap"]


def test_thresholds_are_the_alert_limits_of_the_catalogue():
    limits = q.thresholds("machine", default_fleet())
    assert (limits["vibration_mm_s"].alert_min, limits["vibration_mm_s"].alert_max) == (None, 4.5)
    assert set(limits) == {"temperature_c", "pressure_hpa", "vibration_mm_s"}


def test_a_users_own_device_type_and_metric_get_their_limits_and_unit_from_the_catalogue():
    pump = Entry("device_type", {"device_type": "pump", "reporting_interval_s": 60.0, "silence_after_s": 600.0})
    flow = Entry(
        "metric",
        {"device_type": "pump", "metric": "flow_l_min", "unit": "litre per minute", "valid_min": 0.0,
         "valid_max": 500.0, "alert_min": None, "alert_max": 400.0, "max_jump": None, "device_id": None},
    )  # fmt: skip
    fleet = fleet_of([Version(1, SINCE_ALWAYS, (*default_entries(), pump, flow))])

    limits = q.thresholds("pump", fleet)

    assert set(limits) == {"flow_l_min"}
    assert (limits["flow_l_min"].alert_max, limits["flow_l_min"].valid_max) == (400.0, 500.0)
    assert fleet.units[("pump", "flow_l_min")] == "litre per minute"
    assert fleet.reported["pump"] == ("flow_l_min",) and "flow_l_min" in fleet.metrics


def test_rejections_are_counted_by_reason_and_metric(tiny_data):
    with tiny_data.warehouse() as con:
        rejected = q.rejection_counts(con)
    assert rejected.values.tolist() == [["out_of_range", "temperature_c", 2], ["unknown_device", "", 1]]


def test_quarantine_is_counted_by_reason_and_ingest_date(tiny_lake):
    lake = tiny_lake.lake_root
    for day, reasons in (("2026-03-01", ["malformed_json", "malformed_json"]), ("2026-03-02", ["empty_line"])):
        folder = lake.local_path("quarantine", "readings", f"ingest_date={day}")
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"raw_line": ["x"] * len(reasons), "reason": reasons}), folder / "part-0.parquet")
    assert q.quarantine_counts(lake).values.tolist() == [
        ["empty_line", "2026-03-02", 1],
        ["malformed_json", "2026-03-01", 2],
    ]


def test_freshness_names_each_layer_and_says_what_is_not_built(tiny_data):
    with tiny_data.warehouse() as con:
        layers = q.layer_freshness(con, tiny_data.lake)
    by_table = {f.table: f for f in layers}
    assert by_table["bronze/readings (Parquet)"].problem == "no bronze files yet"
    assert by_table["silver.silver_readings"].newest_event_at == datetime(2026, 3, 2, 11, 0, 10)
    assert by_table["gold.gold_sensor_metrics_hourly"].newest_event_at == datetime(2026, 3, 2, 12, 0)
    assert by_table["gold.gold_device_health"].rows == 3
    assert by_table["gold.gold_device_health"].lag(AS_OF) == timedelta(seconds=10)


def gate_record(layer, run_id, validated_at, expectation, success, severity="error", **extra):
    return {
        "layer": layer,
        "run_id": run_id,
        "validated_at": validated_at,
        "suite": f"{layer}__readings",
        "expectation": expectation,
        "success": success,
        "severity": severity,
        "scope": "partitions",
        "partition": extra.get("partition"),
        "unexpected_count": extra.get("unexpected_count"),
    }


GATE_RECORDS = [
    gate_record("silver", "run-1", "2026-03-01T10:00:00+00:00", "key_unique", False, partition="2026-03-01"),
    gate_record("silver", "run-2", "2026-03-02T10:00:00+00:00", "key_unique", True, partition="2026-03-01"),
    gate_record("silver", "run-2", "2026-03-02T10:00:00+00:00", "key_unique", True, partition="2026-03-02"),
    gate_record("silver", "run-2", "2026-03-02T10:00:00+00:00", "in_lookback", False, "warning", unexpected_count=4),
    gate_record("bronze", "run-2", "2026-03-02T09:00:00+00:00", "rows_match", False, partition="2026-03-02"),
    gate_record("bronze", "run-2", "2026-03-02T09:00:00+00:00", "rows_match", False, partition="2026-03-01"),
]


def test_each_layer_shows_its_latest_gate_run_with_errors_and_warnings_counted_once():
    gates = q.latest_gate_results(GATE_RECORDS)
    assert gates[["layer", "status", "expectations", "errors", "warnings", "run_id"]].values.tolist() == [
        ["bronze", "failed", 1, 1, 0, "run-2"],
        ["silver", "passed with warnings", 2, 0, 1, "run-2"],
    ]


def test_the_failures_of_the_latest_gates_name_suite_expectation_rows_and_partitions():
    failures = q.failed_expectations(GATE_RECORDS)
    assert failures.values.tolist() == [
        ["bronze", "error", "bronze__readings", "rows_match", 0, "2026-03-01, 2026-03-02"],
        ["silver", "warning", "silver__readings", "in_lookback", 4, ""],
    ]


def run_step(run_id, step, status, started, **counts):
    return {"run_id": run_id, "step": step, "status": status, "cycle_started_at": started, "seconds": 2.0, **counts}


def test_recent_runs_are_newest_first_with_the_failed_step_and_the_rows_of_each_layer():
    records = [
        run_step("r1", "bronze", "ok", "2026-03-01T10:00:00+00:00", rows_in=100, rows_out=98, rows_rejected=2),
        run_step("r1", "silver", "ok", "2026-03-01T10:00:00+00:00", rows_out=97, rows_rejected=1),
        run_step("r2", "bronze", "ok", "2026-03-02T10:00:00+00:00", rows_in=50, rows_out=10, rows_rejected=40),
        run_step("r2", "gate_bronze", "failed", "2026-03-02T10:00:00+00:00"),
        run_step("r2", "silver", "skipped", "2026-03-02T10:00:00+00:00"),
    ]
    runs = q.recent_runs(records)
    assert runs[["run_id", "status", "failed_step", "seconds", "landing_lines", "quarantined"]].values.tolist() == [
        ["r2", "failed", "gate_bronze", 6.0, 50, 40],
        ["r1", "ok", "", 4.0, 100, 2],
    ]
    assert runs.silver_rows.tolist()[1] == 97


def test_ops_records_are_read_once_per_file_and_new_files_are_picked_up(tiny_data):
    from lakehouse import ops

    ops.append(tiny_data.lake, "ops_runs", [run_step("r1", "bronze", "ok", "2026-03-01T10:00:00+00:00")])
    assert [r["run_id"] for r in tiny_data.ops_records("ops_runs")] == ["r1"]
    ops.append(tiny_data.lake, "ops_runs", [run_step("r2", "bronze", "ok", "2026-03-02T10:00:00+00:00")])
    assert [r["run_id"] for r in tiny_data.ops_records("ops_runs")] == ["r1", "r2"]


def test_a_warehouse_without_gold_says_to_build_it(tmp_path):
    from dashboards.data import DashboardData, NoWarehouse
    from lakehouse.lake import Lake

    lake = Lake(str(tmp_path / "lake"))
    lake.local_path().mkdir()
    with duckdb.connect(str(lake.warehouse)) as con:
        con.execute("create schema silver")
    data = DashboardData(lake, tmp_path / "copies")
    data.refresh()
    expected = r"no gold.gold_device_health yet; build gold with `lakehouse run`"
    with pytest.raises(NoWarehouse, match=expected), data.warehouse() as con:
        q.fleet_summary(con)
