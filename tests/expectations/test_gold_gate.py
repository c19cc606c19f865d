"""The gold gate, one defect at a time: each defect fails its expectation (and only the ones that must
fail with it), with the severity gates.toml gives. Gold is built from clean silver with SQL in the
fixture; each test then spoils it with one statement."""

from __future__ import annotations

import pytest

from expectations.runner import run_gate

HOURLY = "gold.gold_sensor_metrics_hourly"
ANOMALIES = "gold.gold_anomalies"
HEALTH = "gold.gold_device_health"
ONE_HOUR = "device_id = 'mch-00002' and metric = 'vibration_mm_s' and hour_at = timestamp '2026-03-01 03:00:00'"
ONE_DEVICE = "device_id = 'env-00001'"


def _failed(result) -> dict[str, str]:
    return {o.expectation: o.severity for o in result.failures}


GOLD_DEFECTS = [
    pytest.param(
        [f"alter table {HOURLY} drop column stddev_value"],
        {"model_columns_present": "error", "stddev_not_negative": "error"},
        id="a documented column is missing",
    ),
    pytest.param(
        [f"update {HOURLY} set site_id = null where {ONE_HOUR}"], {"site_id_not_null": "error"}, id="a null site_id"
    ),
    pytest.param(
        [f"insert into {HOURLY} select * from {HOURLY} where {ONE_HOUR}"],
        {"device_metric_hour_unique": "error"},
        id="a device, metric and hour twice",
    ),
    pytest.param(
        [f"update {HOURLY} set p50_value = max_value + 1 where {ONE_HOUR}"], {"p50_le_p95": "error"}, id="p50 above p95"
    ),
    pytest.param(
        [f"update {HOURLY} set min_value = p50_value + 0.5 where {ONE_HOUR}"],
        {"min_le_p50": "error", "min_le_avg": "error"},
        id="min above p50 and avg",
    ),
    pytest.param(
        [f"update {HOURLY} set max_value = p95_value - 0.5 where {ONE_HOUR}"],
        {"p95_le_max": "error", "avg_le_max": "error"},
        id="max below p95 and avg",
    ),
    pytest.param(
        [f"update {HOURLY} set avg_value = max_value + 0.001 where {ONE_HOUR}"],
        {"avg_le_max": "error"},
        id="avg above max",
    ),
    pytest.param(
        [f"update {HOURLY} set completeness = 1.5 where {ONE_HOUR}"],
        {"completeness_between_0_and_1": "error"},
        id="completeness above 1",
    ),
    pytest.param(
        [f"update {HOURLY} set stddev_value = -0.1 where {ONE_HOUR}"],
        {"stddev_not_negative": "error"},
        id="a negative stddev",
    ),
    pytest.param(
        [f"update {HOURLY} set reading_count = reading_count + 1 where {ONE_HOUR}"],
        {"reading_count_equals_silver": "error"},
        id="a count silver does not have",
    ),
    pytest.param(
        [f"delete from {HOURLY} where {ONE_HOUR}"],
        {"reading_count_equals_silver": "error"},
        id="a silver hour missing in gold",
    ),
    pytest.param(
        [f"update {HOURLY} set reading_count = 0 where {ONE_HOUR}"],
        {"reading_count_positive": "error", "reading_count_equals_silver": "error"},
        id="an hour of no readings",
    ),
    pytest.param(
        [f"update {HOURLY} set metric = 'humidity_pct' where {ONE_HOUR}"],
        # the renamed row has no silver readings, and the silver hour lost its gold row
        {"metric_reported_by_device_type": "error", "reading_count_equals_silver": "error"},
        id="a metric the device type does not report",
    ),
    pytest.param(
        [f"update {ANOMALIES} set ended_at = started_at - interval 1 minute where device_id = 'mch-00002'"],
        {"started_at_not_after_ended_at": "error"},
        id="an anomaly that ends before it starts",
    ),
    pytest.param(
        [f"update {ANOMALIES} set anomaly_kind = 'gremlins'"],
        {"anomaly_kind_known": "error"},
        id="an unknown anomaly kind",
    ),
    pytest.param([f"update {ANOMALIES} set severity = 'meh'"], {"severity_known": "error"}, id="an unknown severity"),
    pytest.param([f"update {ANOMALIES} set metric = 'colour'"], {"metric_known": "error"}, id="an unknown metric"),
    pytest.param(
        [f"update {ANOMALIES} set reading_count = -1"],
        {"reading_count_not_negative": "error"},
        id="a negative reading count",
    ),
    pytest.param(
        [f"insert into {ANOMALIES} select * from {ANOMALIES}"], {"anomaly_id_unique": "error"}, id="an anomaly id twice"
    ),
    pytest.param(
        [f"update {ANOMALIES} set started_at = null"], {"started_at_not_null": "error"}, id="an anomaly without a start"
    ),
    pytest.param(
        [f"update {HEALTH} set health_status = 'zombie' where {ONE_DEVICE}"],
        {"health_status_known": "error"},
        id="an unknown health status",
    ),
    pytest.param(
        [f"update {HEALTH} set completeness_24h = 1.2 where {ONE_DEVICE}"],
        {"completeness_24h_between_0_and_1": "error"},
        id="device completeness above 1",
    ),
    pytest.param(
        [f"update {HEALTH} set battery_pct = 140 where {ONE_DEVICE}"],
        {"battery_pct_between_0_and_100": "warning"},
        id="a battery above 100%",
    ),
    pytest.param(
        [f"update {HEALTH} set open_anomalies = -2 where {ONE_DEVICE}"],
        {"open_anomalies_not_negative": "error"},
        id="negative open anomalies",
    ),
    pytest.param(
        [f"insert into {HEALTH} select * from {HEALTH} where {ONE_DEVICE}"],
        {"device_id_unique": "error"},
        id="a device twice",
    ),
    pytest.param(
        [f"update {HEALTH} set device_id = 'env-09001' where {ONE_DEVICE}"],
        {"device_in_registry": "error"},
        id="a device not in the registry",
    ),
]


@pytest.mark.parametrize(("statements", "expected"), GOLD_DEFECTS)
def test_each_gold_defect_fails_its_expectation_with_its_severity(gate_lake, statements, expected):
    gate_lake.write_warehouse(gate_lake.silver_from(gate_lake.clean_readings()))
    gate_lake.execute(*statements)

    result = run_gate(gate_lake.settings, "gold", run_id="defect")

    assert _failed(result) == expected, result.format_report()
    assert result.success == ("error" not in expected.values())


def test_an_average_of_identical_readings_that_rounds_above_them_is_not_a_failure(gate_lake):
    silver = gate_lake.silver_from(gate_lake.clean_readings())
    stuck = (silver["device_id"] == "mch-00002") & (silver["event_at"].dt.hour == 3)
    silver.loc[stuck, "vibration_mm_s"] = 0.1  # a flatline: 0.1 + 0.1 = 0.2, / 2 may not be 0.1 exactly
    gate_lake.write_warehouse(silver)
    gate_lake.execute(f"update {HOURLY} set avg_value = 0.1 + 1e-12 where {ONE_HOUR}")  # one ulp-ish above

    result = run_gate(gate_lake.settings, "gold", run_id="r")

    assert result.failures == [], result.format_report()


def test_gold_for_one_event_date_is_gated_alone(gate_lake):
    readings = gate_lake.clean_readings(per_device=60)  # 30 hours: 2026-03-01 and 2026-03-02
    gate_lake.write_warehouse(gate_lake.silver_from(readings))
    gate_lake.execute(f"update {HOURLY} set completeness = 2 where hour_at >= timestamp '2026-03-02 00:00:00'")

    first_day = run_gate(gate_lake.settings, "gold", run_id="r", partitions=["2026-03-01"])
    second_day = run_gate(gate_lake.settings, "gold", run_id="r", partitions=["2026-03-02"])

    assert first_day.success
    assert {o.partition for o in first_day.results} == {"2026-03-01", None}  # None: device health, table-wide
    assert _failed(second_day) == {"completeness_between_0_and_1": "error"}
