"""Pure transformations from landing lines to bronze rows and quarantine rows.

Input: a DataFrame with ``raw_line`` (one landing line) and ``_source_file``. Every line leaves as exactly
one row: a bronze row, or a quarantine row carrying a reason code from ``contract.QUARANTINE_REASONS``.

Why not ``from_json(...) is null``: since Spark 3, malformed JSON parses to a row of nulls in PERMISSIVE
mode, so a null check cannot tell a broken line from a sparse one. We ask ``json_object_keys`` (null for
anything that is not a JSON object) and the corrupt-record column instead.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.contract import (
    EARLIEST_EVENT_TIME,
    FIELDS,
    LATEST_EVENT_TIME,
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
)
from spark.schemas import CORRUPT_RECORD, LANDING_PARSE_SCHEMA, LOOSE_SCHEMA

REASON = "_reason"
_PARSED = "_parsed"
_KEYS = "_keys"
CONTRACT_KEYS = tuple(f.name for f in FIELDS)
_JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD}


def _first_reason(candidates: list[tuple[Column, Column]]) -> Column:
    expr = None
    for condition, reason in candidates:
        expr = F.when(condition, reason) if expr is None else expr.when(condition, reason)
    return expr


def parse_lines(lines: DataFrame) -> DataFrame:
    """Parse each landing line against the contract and decide its fate.

    Returns one row per input line with every contract column (event_time as a UTC timestamp),
    ``_rescued_data`` (JSON of fields the contract does not know, or null) and ``_reason`` (null for a
    bronze row, a reason code for quarantine).
    """
    parsed = lines.select(
        "*",
        F.from_json("raw_line", LANDING_PARSE_SCHEMA, _JSON_OPTIONS).alias(_PARSED),
        F.json_object_keys("raw_line").alias(_KEYS),
    )
    p = F.col(_PARSED)
    contract_keys = F.array(*[F.lit(name) for name in CONTRACT_KEYS])
    # The map parse costs a second pass over the line, so it only runs where it is needed.
    needs_loose = p[CORRUPT_RECORD].isNotNull() | (F.size(F.array_except(F.col(_KEYS), contract_keys)) > 0)
    loose = F.when(needs_loose, F.from_json("raw_line", LOOSE_SCHEMA, _JSON_OPTIONS))
    with_loose = parsed.withColumn("_loose", loose)
    m = F.col("_loose")

    event_time = F.try_to_timestamp(p["event_time"])
    candidates: list[tuple[Column, Column]] = [
        (F.trim(F.col("raw_line")) == "", F.lit("empty_line")),
        (F.col(_KEYS).isNull(), F.lit("malformed_json")),
    ]
    candidates += [(p[name].isNull() & m[name].isNull(), F.lit(f"missing_required:{name}")) for name in REQUIRED_FIELDS]
    candidates += [
        (p[CORRUPT_RECORD].isNotNull() & p[f.name].isNull() & m[f.name].isNotNull(), F.lit(f"type_mismatch:{f.name}"))
        for f in FIELDS
    ]
    # Absent in the typed parse but present in the map: a value the parser refused (e.g. "seq": "7").
    candidates += [(p[name].isNull(), F.lit(f"missing_required:{name}")) for name in REQUIRED_FIELDS]
    candidates += [
        (p[CORRUPT_RECORD].isNotNull(), F.lit("malformed_json")),
        (event_time.isNull(), F.lit("invalid_timestamp")),
        (
            (event_time < F.lit(EARLIEST_EVENT_TIME.replace(tzinfo=None)))
            | (event_time >= F.lit(LATEST_EVENT_TIME.replace(tzinfo=None))),
            F.lit("impossible_timestamp"),
        ),
    ]
    rescued = F.when(
        F.size(F.array_except(F.col(_KEYS), contract_keys)) > 0,
        F.to_json(F.map_filter(m, lambda k, _v: ~F.array_contains(contract_keys, k))),
    )
    contract_columns = [(event_time if f.name == "event_time" else p[f.name]).alias(f.name) for f in FIELDS]
    return with_loose.select(
        "raw_line",
        "_source_file",
        *contract_columns,
        rescued.alias("_rescued_data"),
        _first_reason(candidates).alias(REASON),
    )


def to_bronze(parsed: DataFrame, batch_id: int, ingested_at: Column | None = None) -> DataFrame:
    """The bronze rows of a parsed batch, with metadata columns and the event-date partition column."""
    ingested_at = F.current_timestamp() if ingested_at is None else ingested_at
    # Stored as timezone-naive UTC (Parquet isAdjustedToUTC=false) so DuckDB and Athena read plain
    # TIMESTAMPs with the same wall-clock value Spark wrote, whatever their session time zone.
    return parsed.where(F.col(REASON).isNull()).select(
        *[
            (F.col(f.name).cast("timestamp_ntz") if f.type == "timestamp" else F.col(f.name)).alias(f.name)
            for f in FIELDS
        ],
        "_rescued_data",
        ingested_at.cast("timestamp_ntz").alias("_ingested_at"),
        "_source_file",
        F.lit(batch_id).cast("bigint").alias("_batch_id"),
        F.lit(SCHEMA_VERSION).cast("int").alias("_schema_version"),
        F.to_date("event_time").alias("event_date"),
    )


def to_quarantine(parsed: DataFrame, batch_id: int, ingested_at: Column | None = None) -> DataFrame:
    """The quarantine rows of a parsed batch: the raw line, where it came from, and why."""
    ingested_at = F.current_timestamp() if ingested_at is None else ingested_at
    return parsed.where(F.col(REASON).isNotNull()).select(
        "raw_line",
        F.col(REASON).alias("reason"),
        "_source_file",
        F.lit(batch_id).cast("bigint").alias("_batch_id"),
        ingested_at.cast("timestamp_ntz").alias("_ingested_at"),
        F.lit(SCHEMA_VERSION).cast("int").alias("_schema_version"),
        F.to_date(ingested_at).alias("ingest_date"),
    )
