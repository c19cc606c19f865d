"""Silver gate: ``silver.silver_readings`` and ``silver.silver_rejected_readings``, the increment in one batch.

``silver__readings``: the event key (device_id, event_at, seq) unique and complete; every metric inside
the valid range of its device type (the catalogue's, through ``lakehouse.fleet``); units consistent (a
device type's columns only, and most readings inside the type's alert band, where they sit in the
catalogue's unit: a partition in Fahrenheit or m/s^2 falls outside); every device in the catalogue with
the catalogue's type and site; no reading further ahead of its ingestion than
``Settings.future_tolerance_s``; no reading that is new this cycle but older than the lookback behind what
previous cycles held.

``silver__rejected_readings``: a known reason for every rejected row, and the metric named where the
reason concerns one.

The frames are read with SQL that runs on DuckDB locally and on Athena (see ``expectations/athena.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from expectations.config import GateConfig
from expectations.suites import (
    REGISTRY_SITE_IF_DIFFERENT,
    REGISTRY_TYPE_IF_DIFFERENT,
    UNREGISTERED_DEVICE,
    SuiteSpec,
    with_registry,
)
from lakehouse.contract import EARLIEST_EVENT_TIME
from lakehouse.fleet import Fleet
from lakehouse.warehouse import SILVER_READINGS, SILVER_REJECTED

READINGS_SUITE = "silver__readings"
REJECTED_SUITE = "silver__rejected_readings"

# The columns each model documents (dbt YAML, read by lakehouse.warehouse): the gate's columns_present.
READINGS_COLUMNS = SILVER_READINGS.columns()
REJECTED_COLUMNS = SILVER_REJECTED.columns()
KEY = ("device_id", "event_at", "seq")
WRONG_EVENT_DATE = "chk_event_date_not_event_day"  # event_date, where it is not the UTC day of event_at
EVENT_LEAD_S = "chk_event_lead_s"  # seconds event_at lies ahead of ingested_at

NEW_EVENT_AT = "chk_new_event_at"  # event_at of rows new this cycle, null for the others

READINGS_SAMPLE_COLUMNS = ("device_id", "device_type", "event_at", "seq", "batch_id")
REJECTED_SAMPLE_COLUMNS = ("device_id", "event_at", "seq", "rejection_reason", "rejected_metric")


def typed_column(metric: str, device_type: str) -> str:
    """The derived column holding ``metric`` for rows of ``device_type`` only (null for other types)."""
    return f"chk_{metric}__{device_type}"


def unreported_column(metric: str) -> str:
    """The derived column holding ``metric`` for rows of types that do not report it (should be null)."""
    return f"chk_{metric}__unreported"


def readings_sql(table: str, ranges: list[tuple[str, str]] | None, lookback: Lookback, fleet: Fleet) -> str:
    """The silver readings of an increment, with derived columns: the rows of the event-date ``ranges``
    (first, last) and those without an event_date; ``ranges`` None: the whole table.

    The per-device-type checks read derived columns (a metric split by device type) rather than GX row
    conditions: GX computes each row condition as its own query, and these are aggregated in one. Portable
    SQL (DuckDB and Trino).
    """
    derived = [
        f"case when cast(event_at as date) <> event_date then cast(event_date as varchar) end as {WRONG_EVENT_DATE}",
        f"date_diff('second', ingested_at, event_at) as {EVENT_LEAD_S}",
        f"case when {lookback.new_rows_sql()} then event_at end as {NEW_EVENT_AT}",
    ]
    for device_type, metric in fleet.limits:
        column = typed_column(metric, device_type)
        derived.append(f"case when device_type = '{device_type}' then {metric} end as {column}")
    for metric in fleet.metrics:
        reporting = ", ".join(f"'{t}'" for t in fleet.reporting(metric))
        unreported = f"device_type not in ({reporting})" if reporting else "true"  # no type reports it
        derived.append(f"case when {unreported} then {metric} end as {unreported_column(metric)}")
    return with_registry(f"select *, {', '.join(derived)} from {table} where {increment_filter(ranges)}", fleet)


def rejected_sql(table: str, ranges: list[tuple[str, str]] | None) -> str:
    return f"select * from {table} where {increment_filter(ranges)}"


def increment_filter(ranges: list[tuple[str, str]] | None, undated: bool = True) -> str:
    """The rows of the event-date ranges, plus (``undated``) those without a date, which no partition
    holds; ranges None: every row."""
    if ranges is None:
        return "true"
    inside = " or ".join(
        f"event_date = date '{first}'" if first == last else f"event_date between date '{first}' and date '{last}'"
        for first, last in ranges
    )
    return f"({inside or 'false'}{' or event_date is null' if undated else ''})"


@dataclass(frozen=True)
class Lookback:
    """Which silver rows are new this cycle, and the oldest event time a new row may have."""

    floor: datetime  # naive UTC: the newest event_at of previous cycles minus the lookback
    new_batch_ids: tuple[int, ...] | None = None  # new rows: batch_id in these ...
    after_batch_id: int | None = None  # ... or batch_id greater than this (None and None: every row)
    days: float = 0.0

    @classmethod
    def everything_new(cls) -> Lookback:
        return cls(floor=EARLIEST_EVENT_TIME.replace(tzinfo=None))

    def describe(self) -> str:
        if self.new_batch_ids is not None:
            rows = f"rows of batches {list(self.new_batch_ids)}"
        elif self.after_batch_id is not None:
            rows = f"rows of batches after {self.after_batch_id} (the newest the previous silver gate saw)"
        else:
            return "no previous silver gate on record: every row is new, no lookback bound"
        return f"{rows} must have event_at >= {self.floor:%Y-%m-%d %H:%M:%S} ({self.days:g} day lookback)"

    def new_rows_sql(self) -> str:
        if self.new_batch_ids is not None:
            return f"batch_id in ({', '.join(str(b) for b in self.new_batch_ids) or 'null'})"
        if self.after_batch_id is not None:
            return f"batch_id > {self.after_batch_id}"
        return "true"


def readings_suite(config: GateConfig, fleet: Fleet, *, future_tolerance_s: int, lookback: Lookback) -> SuiteSpec:
    spec = SuiteSpec(READINGS_SUITE, config, READINGS_SAMPLE_COLUMNS)
    spec.add(
        "columns_present",
        "model_columns_present",
        gxe.ExpectTableColumnsToMatchSet,
        "silver_readings has every documented column (extra columns are allowed).",
        column_set=list(READINGS_COLUMNS),
        exact_match=False,
    )
    for name in ("device_id", "device_type", "site_id", "event_at", "event_date", "seq"):
        spec.add(
            "key_not_null",
            f"{name}_not_null",
            gxe.ExpectColumnValuesToNotBeNull,
            f"{name} is never null in silver.",
            column=name,
        )
    spec.add(
        "event_key_unique",
        "event_key_unique",
        gxe.ExpectCompoundColumnsToBeUnique,
        "The event key (device_id, event_at, seq) is unique: silver has removed retries and re-published batches.",
        column_list=list(KEY),
        ignore_row_if="never",  # null keys are key_not_null's; "never" also spares GX a copy of the frame
    )
    for (device_type, metric), limit in fleet.limits.items():
        spec.add(
            "value_in_valid_range",
            f"{metric}_in_valid_range_for_{device_type}",
            gxe.ExpectColumnValuesToBeBetween,
            f"{metric} of {device_type} devices lies in the valid range [{limit.valid_min:g}, "
            f"{limit.valid_max:g}] (the widest the catalogue ever gave it).",
            column=typed_column(metric, device_type),
            min_value=limit.valid_min,
            max_value=limit.valid_max,
            column_label=f"{metric} of {device_type} rows",
        )
    for metric in fleet.metrics:
        spec.add(
            "metric_reported_by_device_type",
            f"{metric}_null_for_types_not_reporting_it",
            gxe.ExpectColumnValuesToBeNull,
            f"{metric} is only set for device types that report it ({', '.join(fleet.reporting(metric))}); a value "
            f"in another type's row is a field mapped to the wrong column.",
            column=unreported_column(metric),
            column_label=f"{metric} of types not reporting it",
        )
    for (device_type, metric), limit in fleet.limits.items():
        low = limit.alert_min if limit.alert_min is not None else limit.valid_min
        high = limit.alert_max if limit.alert_max is not None else limit.valid_max
        spec.add(
            "unit_scale_plausible",
            f"{metric}_unit_plausible_for_{device_type}",
            gxe.ExpectColumnValuesToBeBetween,
            f"Most {metric} readings of {device_type} devices lie in the alert band [{low:g}, {high:g}] "
            f"the catalogue gives it, as they do in the catalogue's unit; a partition in another unit does not.",
            column=typed_column(metric, device_type),
            min_value=low,
            max_value=high,
            column_label=f"{metric} of {device_type} rows",
        )
    spec.add(
        "device_in_registry",
        "device_in_registry",
        gxe.ExpectColumnValuesToBeNull,
        f"Every device is one of the {len(fleet.devices)} devices of the catalogue (`lakehouse catalog list`); "
        f"silver rejects unknown devices. The check column holds the ids it lacks.",
        column=UNREGISTERED_DEVICE,
        column_label="device_id, where not in the catalogue",
    )
    spec.add(
        "device_matches_registry",
        "device_type_matches_registry",
        gxe.ExpectColumnValuesToBeNull,
        "device_type is the type the catalogue gives the device (the check column holds the catalogue's type "
        "where they differ).",
        column=REGISTRY_TYPE_IF_DIFFERENT,
        column_label="catalogue type, where device_type differs",
    )
    spec.add(
        "device_matches_registry",
        "site_id_matches_registry",
        gxe.ExpectColumnValuesToBeNull,
        "site_id is the site the catalogue gives the device (the check column holds the catalogue's site where "
        "they differ).",
        column=REGISTRY_SITE_IF_DIFFERENT,
        column_label="catalogue site, where site_id differs",
    )
    spec.add(
        "event_date_matches_event_at",
        "event_date_is_day_of_event_at",
        gxe.ExpectColumnValuesToBeNull,
        "event_date is the UTC day of event_at (the check column holds event_date where it is not).",
        column=WRONG_EVENT_DATE,
        column_label="event_date, where not the day of event_at",
    )
    spec.add(
        "event_not_in_future",
        "event_at_not_ahead_of_ingestion",
        gxe.ExpectColumnValuesToBeBetween,
        f"No reading is more than future_tolerance_s={future_tolerance_s} s ahead of its ingestion "
        f"(silver rejects clock skew as future_event).",
        column=EVENT_LEAD_S,
        max_value=future_tolerance_s,
        column_label="event_at - ingested_at (s)",
    )
    spec.add(
        "new_reading_within_lookback",
        "new_reading_within_lookback",
        gxe.ExpectColumnValuesToBeBetween,
        f"A reading new this cycle is not older than the lookback allows: {lookback.describe()}. Older "
        f"late data is in silver but incremental gold does not re-aggregate its hours.",
        column=NEW_EVENT_AT,
        min_value=lookback.floor,
        column_label="event_at of rows new this cycle",
    )
    return spec


def rejected_suite(config: GateConfig, fleet: Fleet) -> SuiteSpec:
    spec = SuiteSpec(REJECTED_SUITE, config, REJECTED_SAMPLE_COLUMNS)
    reasons = list(config.parameters["rejection_reasons"])
    spec.add(
        "columns_present",
        "model_columns_present",
        gxe.ExpectTableColumnsToMatchSet,
        "silver_rejected_readings has silver's columns plus rejection_reason and rejected_metric.",
        column_set=list(REJECTED_COLUMNS),
        exact_match=False,
    )
    spec.add(
        "rejection_reason_known",
        "rejection_reason_known",
        gxe.ExpectColumnValuesToBeInSet,
        f"Every rejected row has a documented reason ({', '.join(reasons)}; gates.toml rejection_reasons).",
        column="rejection_reason",
        value_set=reasons,
    )
    spec.add(
        "rejection_reason_known",
        "rejection_reason_not_null",
        gxe.ExpectColumnValuesToNotBeNull,
        "Every rejected row has a reason.",
        column="rejection_reason",
    )
    spec.add(
        "rejected_metric_known",
        "rejected_metric_known",
        gxe.ExpectColumnValuesToBeInSet,
        "rejected_metric, when set, names a metric of the catalogue (or battery_pct).",
        column="rejected_metric",
        value_set=[*fleet.metrics, "battery_pct"],
    )
    metric_reasons = list(config.parameters["metric_rejection_reasons"])
    spec.add(
        "metric_reasons_name_metric",
        "rejected_metric_set_for_metric_reasons",
        gxe.ExpectColumnValuesToNotBeNull,
        f"A rejection for {' or '.join(metric_reasons)} names the metric concerned in rejected_metric.",
        column="rejected_metric",
        row_condition=Column("rejection_reason").is_in(metric_reasons),
    )
    return spec
