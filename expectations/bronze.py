"""Bronze gate: the readings a bronze increment wrote, and the increment's manifests.

Two suites:

- ``bronze__readings``, validated over the whole increment in one batch: the contract's columns with their
  types, required fields and bronze metadata not null, ``device_id`` an identifier the catalogue can hold,
  device types the catalogue knows and schema versions, rows in the partition of their own event date, event times not
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

from expectations.config import GateConfig
from expectations.suites import SuiteSpec
from lakehouse.catalogue import IDENTIFIER_PATTERN
from lakehouse.config import Settings
from lakehouse.contract import BRONZE_METADATA_COLUMNS, FIELDS, REQUIRED_FIELDS, SCHEMA_VERSION
from lakehouse.fleet import Fleet

READINGS_SUITE = "bronze__readings"
INCREMENT_SUITE = "bronze__increment"

# The type names a column of each contract type may have, as DuckDB's and Trino's ``typeof`` spell them
# (lower-cased). Timestamps are timezone-naive UTC, as the contract stores them (Trino adds a precision).
SQL_TYPES = {
    "string": ["varchar"],
    "long": ["bigint"],
    "double": ["double"],
    "timestamp": ["timestamp", "timestamp(3)", "timestamp(6)"],
    "int": ["integer"],
}
METADATA_TYPES = {
    "_rescued_data": "string",
    "_ingested_at": "timestamp",
    "_source_file": "string",
    "_batch_id": "long",
    "_schema_version": "int",
}
MISSING_TYPE = "(missing)"  # the type column of a column the table lacks

# Derived columns the SQL adds for the checks that compare two values or need a function GX lacks here.
OUTSIDE_PARTITION = "chk_event_time_outside_partition"  # event_time, where its day is not the partition's
EVENT_LEAD_S = "chk_event_lead_s"  # seconds event_time lies ahead of _ingested_at (negative: behind)
BAD_DEVICE_ID = "chk_device_id_not_matching_pattern"  # device_id, where it does not match the pattern

READINGS_SAMPLE_COLUMNS = ("device_id", "event_time", "seq", "_batch_id", "_source_file")


def type_column(column: str) -> str:
    """The derived column holding a column's SQL type name (``typeof``), lower-cased."""
    return f"chk_{column.lstrip('_')}__type"


def _quoted(column: str) -> str:
    return f'"{column}"'  # metadata columns start with "_", which Athena wants double-quoted


def readings_sql(
    table: str,
    partitions: list[str],
    batch_ids: list[int] | None,
    event_date_kind: str,
    columns: list[str],
    regexp_like: str = "regexp_like",
) -> str:
    """The bronze rows of an increment, with the derived columns the readings suite checks (DuckDB, Trino).

    ``partitions``: the increment's event-date partitions (folder values, so not always dates: a row
    without an event time lands in ``event_date=NaT``); ``event_date_kind``: the partition column's SQL
    type (``date`` on a Glue table that types it, text otherwise). ``columns``: the table's columns; a
    contract column it lacks gets the type ``(missing)`` and leaves out the checks that read it, for the
    suite to report. ``regexp_like``: the engine's name for a regex match (Trino's ``regexp_like`` is
    DuckDB's ``regexp_matches``). Type checks read ``typeof`` (DuckDB and Trino both have it): GX cannot
    reflect the column types of a query on DuckDB (its ``table.column_types`` metric yields no ``type``).
    """
    present = set(columns)
    literal = (lambda d: f"date '{d}'") if event_date_kind == "date" else (lambda d: f"'{d}'")
    derived = []
    for name in [f.name for f in FIELDS] + list(METADATA_TYPES):
        kind = f"lower(typeof({_quoted(name)}))" if name in present else f"'{MISSING_TYPE}'"
        derived.append(f"{kind} as {type_column(name)}")
    if "event_time" in present:
        derived.append(
            f"case when cast(cast(event_time as date) as varchar) <> cast(event_date as varchar) then event_time end "
            f"as {OUTSIDE_PARTITION}"
        )
        if "_ingested_at" in present:
            derived.append(f"date_diff('second', {_quoted('_ingested_at')}, event_time) as {EVENT_LEAD_S}")
    if "device_id" in present:
        pattern = IDENTIFIER_PATTERN.replace("'", "''")
        derived.append(f"case when not {regexp_like}(device_id, '{pattern}') then device_id end as {BAD_DEVICE_ID}")
    where = f"event_date in ({', '.join(literal(p) for p in partitions)})" if partitions else "false"
    if batch_ids is not None:
        where += f" and {_quoted('_batch_id')} in ({', '.join(str(b) for b in batch_ids) or 'null'})"
    return f"select *, {', '.join(derived)} from {table} where {where}"


def readings_suite(config: GateConfig, settings: Settings, fleet: Fleet) -> SuiteSpec:
    types = SQL_TYPES
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
            gxe.ExpectColumnValuesToBeInSet,
            f"{f.name} has the contract type {f.type}.",
            column=type_column(f.name),
            value_set=types[f.type],
            column_label=f"type of {f.name}",
        )
    for name, kind in METADATA_TYPES.items():
        spec.add(
            "column_types",
            f"{name}_has_type_{kind}",
            gxe.ExpectColumnValuesToBeInSet,
            f"Bronze metadata column {name} has type {kind}.",
            column=type_column(name),
            value_set=types[kind],
            column_label=f"type of {name}",
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
        gxe.ExpectColumnValuesToBeNull,
        f"device_id is an identifier the catalogue can register ({IDENTIFIER_PATTERN}; the check column holds "
        f"device_id where it is not; GX has no regex for DuckDB, so the SQL applies it with regexp_like).",
        column=BAD_DEVICE_ID,
        column_label="device_id, where not matching the pattern",
    )
    spec.add(
        "device_type_known",
        "device_type_known",
        gxe.ExpectColumnValuesToBeInSet,
        "device_type is one of the catalogue's device types (`lakehouse catalog import` declares a new one).",
        column="device_type",
        value_set=list(fleet.device_types),
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


def increment_sql(increment: Increment) -> str:
    """The increment's one summary row as a SELECT of literals (no table), for the same SQL datasource."""

    def number(value: float | int | None, kind: str) -> str:
        return f"cast({'null' if value is None else repr(value)} as {kind})"

    batches = ",".join(str(b) for b in increment.batch_ids)
    return (
        f"select '{increment.scope}' as scope, '{batches}' as batches, {number(increment.lines, 'bigint')} as lines, "
        f"{number(increment.quarantine_rows, 'bigint')} as quarantine_rows, "
        f"{number(increment.quarantine_share, 'double')} as quarantine_share, "
        f"{number(increment.manifest_bronze_rows, 'bigint')} as manifest_bronze_rows, "
        f"{number(increment.bronze_rows_read, 'bigint')} as bronze_rows_read"
    )


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
