"""Gold gate: the hourly metrics and the anomalies of the increment's event dates (in one batch each), and
device health.

``gold__sensor_metrics_hourly``: key unique and complete, min <= p50 <= p95 <= max and min <= avg <= max
(after rounding to ``order_decimals``, so float rounding of an average does not count), stddev >= 0,
completeness in [0, 1], at least one reading per row, each metric one its device type reports, and
reading_count equal to the count of silver readings of that device, metric and hour.

``gold__anomalies``: unique ids, windows with started_at <= ended_at, known kinds and severities.

``gold__device_health``: one row per registered device, known statuses, completeness and battery in range.

The frames are read with SQL that runs on DuckDB locally and on Athena (see ``expectations/athena.py``).
"""

from __future__ import annotations

from datetime import date, timedelta

import great_expectations.expectations as gxe

from expectations.config import GateConfig
from expectations.silver import increment_filter
from expectations.suites import UNREGISTERED_DEVICE, SuiteSpec, with_registry
from lakehouse.fleet import Fleet
from lakehouse.warehouse import GOLD_ANOMALIES, GOLD_DEVICE_HEALTH, GOLD_HOURLY

HOURLY_SUITE = "gold__sensor_metrics_hourly"
ANOMALIES_SUITE = "gold__anomalies"
HEALTH_SUITE = "gold__device_health"

# The columns each model documents (dbt YAML, read by lakehouse.warehouse): the gate's columns_present.
HOURLY_COLUMNS = GOLD_HOURLY.columns()
ANOMALY_COLUMNS = GOLD_ANOMALIES.columns()
HEALTH_COLUMNS = GOLD_DEVICE_HEALTH.columns()
SILVER_COUNT = "silver_reading_count"
TYPE_METRIC = "chk_device_type_metric"  # "machine.vibration_mm_s": the pair the metric-per-type check reads

# (name, lower column, upper column): each pair must be ordered lower <= upper.
ORDERINGS = {
    "quantiles_ordered": (
        ("min_le_p50", "min_value", "p50_value"),
        ("p50_le_p95", "p50_value", "p95_value"),
        ("p95_le_max", "p95_value", "max_value"),
    ),
    "avg_between_min_and_max": (("min_le_avg", "min_value", "avg_value"), ("avg_le_max", "avg_value", "max_value")),
}

HOURLY_SAMPLE_COLUMNS = (
    "device_id",
    "metric",
    "hour_at",
    "reading_count",
    "min_value",
    "p50_value",
    "p95_value",
    "max_value",
    "avg_value",
)
ANOMALY_SAMPLE_COLUMNS = ("anomaly_id", "device_id", "metric", "anomaly_kind", "started_at", "ended_at")
HEALTH_SAMPLE_COLUMNS = ("device_id", "health_status")


def hourly_sql(
    gold_table: str,
    silver_table: str,
    ranges: list[tuple[str, str]] | None,
    decimals: int,
    gold_columns: list[str],
    fleet: Fleet,
) -> str:
    """The hourly metrics of the event-date ``ranges`` (first, last; None: all), full-outer-joined with
    silver's counts for the same device, metric and hour; rows whose hour_at is null are always included.

    A silver hour that gold lacks appears with null gold columns (and fails ``counts_match_silver``).
    ``gold_columns``: the columns the gold table has; a documented column it lacks is left out of the
    frame, for the suite to report. Portable SQL: runs on DuckDB and Athena (Trino).
    """
    gold_filter = time_filter("hour_at", ranges)
    silver_filter = increment_filter(ranges, undated=False)
    silver_counts = "\n    union all\n".join(
        f"    select device_id, device_type, site_id, '{m}' as metric, date_trunc('hour', event_at) as hour_at,\n"
        f"      count(*) as n\n"
        f"    from {silver_table} where {silver_filter} and {m} is not null\n"
        f"    group by device_id, device_type, site_id, date_trunc('hour', event_at)"
        for m in fleet.metrics
    )
    present = set(gold_columns)
    keys = ("device_id", "device_type", "site_id", "metric", "hour_at")
    select = [
        # a silver hour without a gold row takes its keys from silver; a gold row keeps its own (even null)
        f"case when g.chk_in_gold is null then s.{k} else g.{k} end as {k}"
        for k in keys
        if k in present
    ]
    select += [f"g.{c}" for c in gold_columns if c not in keys]
    select.append(f"s.n as {SILVER_COUNT}")
    if {"device_type", "metric"} <= present:
        select.append(
            f"case when g.chk_in_gold is null then s.device_type || '.' || s.metric "
            f"else g.device_type || '.' || g.metric end as {TYPE_METRIC}"
        )
    select += [
        f"round(g.{upper} - g.{lower}, {decimals}) as chk_{name}"
        for pairs in ORDERINGS.values()
        for name, lower, upper in pairs
        if {lower, upper} <= present
    ]
    columns = ",\n  ".join(select)
    # Subqueries, not a WITH clause: GX's query assets must start with SELECT.
    return f"""select
  {columns}
from (select *, 1 as chk_in_gold from {gold_table} where {gold_filter}) as g
full outer join (
{silver_counts}
) as s
  on g.device_id = s.device_id and g.metric = s.metric and g.hour_at = s.hour_at
"""


def anomalies_sql(table: str, ranges: list[tuple[str, str]] | None) -> str:
    """The anomaly windows that started on the event-date ``ranges`` (None: all), and those without a start."""
    return f"select * from {table} where {time_filter('started_at', ranges)}"


def time_filter(column: str, ranges: list[tuple[str, str]] | None) -> str:
    """Rows whose timestamp ``column`` falls on the event-date ranges, or is null; None: every row."""
    if ranges is None:
        return "true"
    inside = " or ".join(
        f"({column} >= timestamp '{day_bounds(first)[0]}' and {column} < timestamp '{day_bounds(last)[1]}')"
        for first, last in ranges
    )
    return f"({inside or 'false'} or {column} is null)"


def day_bounds(partition: str) -> tuple[str, str]:
    """The first instant of an event date and of the next, as SQL timestamp literals' text."""
    day = date.fromisoformat(partition)
    return f"{day} 00:00:00", f"{day + timedelta(days=1)} 00:00:00"


def health_sql(table: str, fleet: Fleet) -> str:
    return with_registry(f"select * from {table}", fleet)


def hourly_suite(config: GateConfig, fleet: Fleet) -> SuiteSpec:
    spec = SuiteSpec(HOURLY_SUITE, config, HOURLY_SAMPLE_COLUMNS)
    spec.add(
        "columns_present",
        "model_columns_present",
        gxe.ExpectTableColumnsToMatchSet,
        "gold_sensor_metrics_hourly has every documented column (extra columns are allowed).",
        column_set=[*HOURLY_COLUMNS, SILVER_COUNT],
        exact_match=False,
    )
    for name in ("device_id", "device_type", "site_id", "metric", "hour_at"):
        spec.add(
            "key_not_null", f"{name}_not_null", gxe.ExpectColumnValuesToNotBeNull, f"{name} is never null.", column=name
        )
    spec.add(
        "key_unique",
        "device_metric_hour_unique",
        gxe.ExpectCompoundColumnsToBeUnique,
        "One row per device, metric and hour.",
        column_list=["device_id", "metric", "hour_at"],
    )
    spec.add(
        "metric_reported_by_device_type",
        "metric_reported_by_device_type",
        gxe.ExpectColumnValuesToBeInSet,
        "Each row is for a metric its device type reports ("
        + "; ".join(f"{t}: {', '.join(m)}" for t, m in fleet.reported.items())
        + "; the catalogue's).",
        column=TYPE_METRIC,
        column_label="device_type.metric",
        value_set=fleet.type_metric_pairs(),
    )
    decimals = config.parameters["order_decimals"]
    for rule, pairs in ORDERINGS.items():
        for name, lower, upper in pairs:
            spec.add(
                rule,
                name,
                gxe.ExpectColumnValuesToBeBetween,
                f"{lower} <= {upper} (compared after rounding the difference to {decimals} decimals).",
                column=f"chk_{name}",
                min_value=0,
                column_label=f"{upper} - {lower}",
            )
    spec.add(
        "completeness_between_0_and_1",
        "completeness_between_0_and_1",
        gxe.ExpectColumnValuesToBeBetween,
        "completeness (readings received / expected) lies in [0, 1].",
        column="completeness",
        min_value=0,
        max_value=1,
    )
    spec.add(
        "reading_count_positive",
        "reading_count_positive",
        gxe.ExpectColumnValuesToBeBetween,
        "Every hourly row aggregates at least one reading.",
        column="reading_count",
        min_value=1,
    )
    spec.add(
        "stddev_not_negative",
        "stddev_not_negative",
        gxe.ExpectColumnValuesToBeBetween,
        "stddev_value is not negative.",
        column="stddev_value",
        min_value=0,
    )
    spec.add(
        "counts_match_silver",
        "reading_count_equals_silver",
        gxe.ExpectColumnPairValuesToBeEqual,
        "reading_count equals the number of silver readings of that device, metric and hour (a silver "
        "hour missing in gold, or a gold hour silver does not have, fails too).",
        column_A="reading_count",
        column_B=SILVER_COUNT,
        ignore_row_if="both_values_are_missing",
    )
    return spec


def anomalies_suite(config: GateConfig, fleet: Fleet) -> SuiteSpec:
    spec = SuiteSpec(ANOMALIES_SUITE, config, ANOMALY_SAMPLE_COLUMNS)
    params = config.parameters
    spec.add(
        "columns_present",
        "model_columns_present",
        gxe.ExpectTableColumnsToMatchSet,
        "gold_anomalies has every documented column (extra columns are allowed).",
        column_set=list(ANOMALY_COLUMNS),
        exact_match=False,
    )
    spec.add(
        "anomaly_id_unique",
        "anomaly_id_unique",
        gxe.ExpectColumnValuesToBeUnique,
        "anomaly_id identifies one anomaly window.",
        column="anomaly_id",
    )
    for name in ("anomaly_id", "device_id", "anomaly_kind", "started_at", "ended_at", "severity"):
        spec.add(
            "key_not_null", f"{name}_not_null", gxe.ExpectColumnValuesToNotBeNull, f"{name} is never null.", column=name
        )
    spec.add(
        "window_start_not_after_end",
        "started_at_not_after_ended_at",
        gxe.ExpectColumnPairValuesAToBeGreaterThanB,
        "An anomaly window ends at or after its start.",
        column_A="ended_at",
        column_B="started_at",
        or_equal=True,
        ignore_row_if="either_value_is_missing",
    )
    spec.add(
        "anomaly_kind_known",
        "anomaly_kind_known",
        gxe.ExpectColumnValuesToBeInSet,
        f"anomaly_kind is one of {', '.join(params['anomaly_kinds'])}.",
        column="anomaly_kind",
        value_set=list(params["anomaly_kinds"]),
    )
    spec.add(
        "severity_known",
        "severity_known",
        gxe.ExpectColumnValuesToBeInSet,
        f"severity is one of {', '.join(params['anomaly_severities'])}.",
        column="severity",
        value_set=list(params["anomaly_severities"]),
    )
    spec.add(
        "metric_known",
        "metric_known",
        gxe.ExpectColumnValuesToBeInSet,
        "metric, when set (a data gap concerns the whole device), is a metric of the catalogue.",
        column="metric",
        value_set=list(fleet.metrics),
    )
    spec.add(
        "reading_count_not_negative",
        "reading_count_not_negative",
        gxe.ExpectColumnValuesToBeBetween,
        "reading_count is not negative (a data gap has none).",
        column="reading_count",
        min_value=0,
    )
    return spec


def health_suite(config: GateConfig) -> SuiteSpec:
    spec = SuiteSpec(HEALTH_SUITE, config, HEALTH_SAMPLE_COLUMNS)
    spec.add(
        "columns_present",
        "model_columns_present",
        gxe.ExpectTableColumnsToMatchSet,
        "gold_device_health has every documented column (extra columns are allowed).",
        column_set=list(HEALTH_COLUMNS),
        exact_match=False,
    )
    spec.add(
        "device_id_unique",
        "device_id_unique",
        gxe.ExpectColumnValuesToBeUnique,
        "One row per device.",
        column="device_id",
    )
    spec.add(
        "device_id_unique",
        "device_id_not_null",
        gxe.ExpectColumnValuesToNotBeNull,
        "device_id is never null.",
        column="device_id",
    )
    spec.add(
        "device_in_registry",
        "device_in_registry",
        gxe.ExpectColumnValuesToBeNull,
        "Every device is in the catalogue (`lakehouse catalog list`); the check column holds the ids it lacks.",
        column=UNREGISTERED_DEVICE,
        column_label="device_id, where not in the catalogue",
    )
    statuses = list(config.parameters["health_statuses"])
    spec.add(
        "health_status_known",
        "health_status_known",
        gxe.ExpectColumnValuesToBeInSet,
        f"health_status is one of {', '.join(statuses)}.",
        column="health_status",
        value_set=statuses,
    )
    spec.add(
        "completeness_between_0_and_1",
        "completeness_24h_between_0_and_1",
        gxe.ExpectColumnValuesToBeBetween,
        "completeness_24h lies in [0, 1].",
        column="completeness_24h",
        min_value=0,
        max_value=1,
    )
    spec.add(
        "battery_between_0_and_100",
        "battery_pct_between_0_and_100",
        gxe.ExpectColumnValuesToBeBetween,
        "battery_pct lies in [0, 100].",
        column="battery_pct",
        min_value=0,
        max_value=100,
    )
    for column in ("readings_24h", "open_anomalies"):
        spec.add(
            "counts_not_negative",
            f"{column}_not_negative",
            gxe.ExpectColumnValuesToBeBetween,
            f"{column} is not negative.",
            column=column,
            min_value=0,
        )
    return spec
