"""Bronze gate: the readings a bronze increment wrote, and the increment's manifests.

Two suites:

- ``bronze__readings``, validated one event-date partition at a time: the contract's columns with their
  types, required fields and bronze metadata not null, ``device_id`` matching the contract's pattern,
  known device types and schema versions, rows in the partition of their own event date, event times not
  further than ``Settings.future_tolerance_s`` ahead of their ingestion.
- ``bronze__increment``, one row for the whole increment, from the manifests of its batches: the share
  of landing lines quarantined below ``Settings.max_quarantine_share``, the rows found in bronze equal to
  the rows the manifests say were written, and the row volume against recent cycles.

Bronze keeps duplicates, unknown devices, out-of-range values and clock skew on purpose (silver sorts them
out), so this gate checks structure, not values.
"""

from __future__ import annotations

from dataclasses import dataclass

import great_expectations.expectations as gxe
import pandas as pd

from expectations.config import GateConfig
from expectations.suites import SuiteSpec
from lakehouse.config import Settings
from lakehouse.contract import (
    BRONZE_METADATA_COLUMNS,
    BRONZE_PARTITION_COLUMN,
    DEVICE_ID_PATTERN,
    DEVICE_TYPES,
    FIELDS,
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
)

READINGS_SUITE = "bronze__readings"
INCREMENT_SUITE = "bronze__increment"

# Pandas dtypes a column of each contract type may have after reading Parquet. Strings are Python str
# values (checked value by value); timestamps are timezone-naive UTC, as the contract stores them.
PANDAS_TYPES = {
    "string": ["str"],
    "long": ["int64"],
    "double": ["float64"],
    "timestamp": ["datetime64[us]", "datetime64[ns]"],
    "int": ["int32", "int64"],
}
METADATA_TYPES = {
    "_rescued_data": "string",
    "_ingested_at": "timestamp",
    "_source_file": "string",
    "_batch_id": "long",
    "_schema_version": "int",
}

# Columns prepare_readings() adds for the checks that compare two values.
OUTSIDE_PARTITION = "chk_event_time_outside_partition"  # event_time, where its day is not the partition's
EVENT_LEAD_S = "chk_event_lead_s"  # seconds event_time lies ahead of _ingested_at (negative: behind)

READINGS_SAMPLE_COLUMNS = ("device_id", "event_time", "seq", "_batch_id", "_source_file")


def prepare_readings(frame: pd.DataFrame, partition: str) -> pd.DataFrame:
    """Add the derived columns the readings suite checks; the frame is one event-date partition."""
    event_time = _naive(frame["event_time"]) if "event_time" in frame else None
    ingested_at = _naive(frame["_ingested_at"]) if "_ingested_at" in frame else None
    frame[BRONZE_PARTITION_COLUMN] = partition
    if event_time is not None:
        frame[OUTSIDE_PARTITION] = event_time.where(event_time.dt.floor("D") != pd.Timestamp(partition))
        if ingested_at is not None:
            frame[EVENT_LEAD_S] = (event_time - ingested_at).dt.total_seconds()
    return frame


def _naive(column: pd.Series) -> pd.Series:
    """A timestamp column as naive UTC for arithmetic (the type check still reports a tz-aware column)."""
    if not pd.api.types.is_datetime64_any_dtype(column):
        return pd.to_datetime(column, errors="coerce", utc=True).dt.tz_localize(None)
    if getattr(column.dt, "tz", None) is not None:
        return column.dt.tz_convert("UTC").dt.tz_localize(None)
    return column


# The same contract types as SQLAlchemy type names, for GX's SQL engine (Athena through pyathena).
SQL_TYPES = {
    "string": ["String", "VARCHAR"],
    "long": ["BIGINT", "BigInteger"],
    "double": ["DOUBLE", "Float"],
    "timestamp": ["TIMESTAMP", "DateTime"],
    "int": ["INTEGER", "Integer"],
}


def readings_sql(table: str, partition: str, batch_ids: list[int] | None, event_date_literal: str) -> str:
    """The SQL twin of ``prepare_readings`` for a bronze table in a SQL engine (Athena's Glue table).

    ``event_date_literal`` is the partition value as the table types it (``date '2026-03-01'`` or
    ``'2026-03-01'``). Metadata columns start with "_", which Athena wants double-quoted.
    """
    batches = f' and "_batch_id" in ({", ".join(str(b) for b in batch_ids) or "null"})' if batch_ids is not None else ""
    return (
        f"select *, case when cast(event_time as date) <> date '{partition}' then event_time end "
        f"as {OUTSIDE_PARTITION}, "
        f"date_diff('second', \"_ingested_at\", event_time) as {EVENT_LEAD_S} "
        f"from {table} where event_date = {event_date_literal}{batches}"
    )


def readings_suite(config: GateConfig, settings: Settings, engine: str = "pandas") -> SuiteSpec:
    """``engine``: "pandas" (local Parquet) or "sql" (Athena), which name the column types differently."""
    types = {"pandas": PANDAS_TYPES, "sql": SQL_TYPES}[engine]
    spec = SuiteSpec(READINGS_SUITE, config, READINGS_SAMPLE_COLUMNS)
    columns = [f.name for f in FIELDS] + list(BRONZE_METADATA_COLUMNS)
    spec.add(
        "columns_present",
        "contract_columns_present",
        gxe.ExpectTableColumnsToMatchSet,
        "Every contract field and bronze metadata column is present (extra columns are allowed).",
        column_set=columns,
        exact_match=False,
    )
    for f in FIELDS:
        spec.add(
            "column_types",
            f"{f.name}_has_type_{f.type}",
            gxe.ExpectColumnValuesToBeInTypeList,
            f"{f.name} has the contract type {f.type}.",
            column=f.name,
            type_list=types[f.type],
        )
    for name, kind in METADATA_TYPES.items():
        spec.add(
            "column_types",
            f"{name}_has_type_{kind}",
            gxe.ExpectColumnValuesToBeInTypeList,
            f"Bronze metadata column {name} has type {kind}.",
            column=name,
            type_list=types[kind],
        )
    for name in REQUIRED_FIELDS:
        spec.add(
            "required_not_null",
            f"{name}_not_null",
            gxe.ExpectColumnValuesToNotBeNull,
            f"Required contract field {name} is never null (bronze quarantines lines without it).",
            column=name,
        )
    for name in ("_ingested_at", "_source_file", "_batch_id", "_schema_version"):
        spec.add(
            "metadata_not_null",
            f"{name}_not_null",
            gxe.ExpectColumnValuesToNotBeNull,
            f"Bronze stamps {name} on every row.",
            column=name,
        )
    spec.add(
        "device_id_pattern",
        "device_id_matches_pattern",
        gxe.ExpectColumnValuesToMatchRegex,
        f"device_id matches the contract's pattern {DEVICE_ID_PATTERN}.",
        column="device_id",
        regex=DEVICE_ID_PATTERN,
    )
    spec.add(
        "device_type_known",
        "device_type_known",
        gxe.ExpectColumnValuesToBeInSet,
        "device_type is one of the contract's device types.",
        column="device_type",
        value_set=sorted(DEVICE_TYPES),
    )
    spec.add(
        "schema_version_known",
        "schema_version_known",
        gxe.ExpectColumnValuesToBeInSet,
        f"_schema_version is a contract version this code knows (1..{SCHEMA_VERSION}).",
        column="_schema_version",
        value_set=list(range(1, SCHEMA_VERSION + 1)),
    )
    spec.add(
        "event_date_matches_partition",
        "event_time_in_its_event_date_partition",
        gxe.ExpectColumnValuesToBeNull,
        "Each row sits in the event_date partition of its own event_time (UTC day); the check column holds "
        "event_time where it does not.",
        column=OUTSIDE_PARTITION,
        column_label="event_time, where outside its partition's day",
    )
    spec.add(
        "event_time_not_in_future",
        "event_time_not_ahead_of_ingestion",
        gxe.ExpectColumnValuesToBeBetween,
        f"event_time is at most future_tolerance_s={settings.future_tolerance_s} s after _ingested_at "
        f"(more is device clock skew; silver rejects those readings).",
        column=EVENT_LEAD_S,
        max_value=settings.future_tolerance_s,
        column_label="event_time - _ingested_at (s)",
    )
    return spec


@dataclass(frozen=True)
class Increment:
    """What the manifests say a bronze increment holds, and what was found in bronze."""

    scope: str  # "batches", "partitions" or "all"
    batch_ids: tuple[int, ...]
    partitions: tuple[str, ...]
    lines: int
    quarantine_rows: int
    manifest_bronze_rows: int | None  # None when the manifests cannot say (a partition subset)
    bronze_rows_read: int

    @property
    def quarantine_share(self) -> float | None:
        return self.quarantine_rows / self.lines if self.lines else None


def increment_frame(increment: Increment) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "scope": [increment.scope],
            "batches": [",".join(str(b) for b in increment.batch_ids)],
            "lines": [increment.lines],
            "quarantine_rows": [increment.quarantine_rows],
            "quarantine_share": [increment.quarantine_share],
            "manifest_bronze_rows": pd.array([increment.manifest_bronze_rows], dtype="Int64"),
            "bronze_rows_read": [increment.bronze_rows_read],
        }
    ).astype({"quarantine_share": "float64"})


def increment_suite(config: GateConfig, settings: Settings) -> SuiteSpec:
    spec = SuiteSpec(INCREMENT_SUITE, config, ("scope", "batches", "lines", "quarantine_rows"))
    spec.add(
        "quarantine_share_below_threshold",
        "quarantine_share_below_threshold",
        gxe.ExpectColumnValuesToBeBetween,
        f"At most max_quarantine_share={settings.max_quarantine_share} of the increment's landing lines "
        f"were quarantined (from the batch manifests).",
        column="quarantine_share",
        min_value=0,
        max_value=settings.max_quarantine_share,
    )
    spec.add(
        "rows_match_manifests",
        "bronze_rows_match_manifests",
        gxe.ExpectColumnPairValuesToBeEqual,
        "The rows found in bronze for the increment equal the bronze_rows its manifests recorded "
        "(a missing or extra Parquet file shows here).",
        column_A="bronze_rows_read",
        column_B="manifest_bronze_rows",
        ignore_row_if="either_value_is_missing",
    )
    spec.add(
        "row_volume_within_recent_range",
        "row_volume_within_recent_range",
        gxe.ExpectColumnValuesToBeBetween,
        "The increment's bronze rows lie within volume_min_ratio..volume_max_ratio of the median of recent "
        "cycles (gates.toml); with too few cycles on record there is no bound.",
        column="bronze_rows_read",
        min_value={"$PARAMETER": "volume_min_rows"},
        max_value={"$PARAMETER": "volume_max_rows"},
    )
    return spec
