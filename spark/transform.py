"""Pure transformations from landing lines to bronze rows and quarantine rows.

Input: a DataFrame with ``raw_line`` (one landing line) and ``_source_file``. Every line leaves as exactly
one row: a bronze row, or a quarantine row carrying a reason code from ``contract.QUARANTINE_REASONS``.

Why not ``from_json(...) is null``: since Spark 3, malformed JSON parses to a row of nulls in PERMISSIVE
mode, so a null check cannot tell a broken line from a sparse one. We ask ``json_object_keys`` (null for
anything that is not a JSON object) and the corrupt-record column instead.

Speed: the typed parse runs on every line; the key list and the map parse (a second and third pass over
the text) run only on lines that are not *plainly good* (see :func:`plainly_good`), which is almost none
of a healthy stream. A plainly good line gets exactly the answer the full check would give it.
"""

from __future__ import annotations

from functools import reduce

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
_PLAIN = "_plain"
_KEYS = "_keys"
_LOOSE = "_loose"
_EVENT_TIME = "_event_time"
# Where a staged row goes (see to_staged).
FATE = "_fate"
BRONZE_FATE = "bronze"
QUARANTINE_FATE = "quarantine"
CONTRACT_KEYS = tuple(f.name for f in FIELDS)
_JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD}
# A line holding a single quote is never plainly good (Spark's JSON reader accepts single-quoted keys,
# which leave no '":'), nor one with a quote followed by JSON whitespace (a key written as "key" : value).
_NOT_PLAIN_AFTER_QUOTE = (" ", "\t", "\r", "\n")


def _first_reason(candidates: list[tuple[Column, Column]]) -> Column:
    expr = None
    for condition, reason in candidates:
        expr = F.when(condition, reason) if expr is None else expr.when(condition, reason)
    return expr


def plainly_good(raw_line: Column, parsed: Column) -> Column:
    """True for a line that parsed cleanly, has every required field and no key outside the contract.

    Proof sketch: Spark's JSON reader takes a key as a double-quoted string (unquoted names are refused;
    single quotes are ruled out here), and with no whitespace between a quote and a colon each key's
    closing quote is followed by its colon: every key produces its own ``":``. Each contract field with a
    non-null typed value has its key at the top level, so ``count('":') >= non-null contract fields +
    unknown keys`` (an escaped quote in a string can only add tokens); equality rules unknown keys out.
    A line that fails the test is not judged here: it takes the full check.

    Speed: one scan of the line per test. A quote followed by whitespace is looked for only in a line
    that holds the whitespace at all (a scan for one byte costs a fraction of one for two bytes).
    """
    key_tokens = F.octet_length(raw_line) - F.octet_length(F.replace(raw_line, F.lit('":'), F.lit("")))
    non_null = reduce(lambda a, b: a + b, [parsed[name].isNotNull().cast("int") for name in CONTRACT_KEYS])
    no_markers = reduce(
        lambda a, b: a & b,
        [~raw_line.contains("'")]
        + [~(raw_line.contains(ws) & raw_line.contains('"' + ws)) for ws in _NOT_PLAIN_AFTER_QUOTE],
    )
    required = reduce(lambda a, b: a & b, [parsed[name].isNotNull() for name in REQUIRED_FIELDS])
    return parsed[CORRUPT_RECORD].isNull() & required & no_markers & (key_tokens == 2 * non_null)


def parse_lines(lines: DataFrame) -> DataFrame:
    """Parse each landing line against the contract and decide its fate.

    Returns one row per input line with every contract column (event_time as a UTC timestamp),
    ``_rescued_data`` (JSON of fields the contract does not know, or null) and ``_reason`` (null for a
    bronze row, a reason code for quarantine).
    """
    raw = F.col("raw_line")
    # Few projections, each computing its expensive expressions once: Spark does not merge a projection
    # into the next when that would evaluate a parse twice. The two parses (typed, and the map parse of
    # the rare lines that need it) cannot be compiled by whole-stage codegen; everything else can, so no
    # lambda (map_filter) sits outside the map parse's projection.
    typed = lines.select("*", F.from_json(raw, LANDING_PARSE_SCHEMA, _JSON_OPTIONS).alias(_PARSED))
    p = F.col(_PARSED)
    flagged = typed.select(
        "*", plainly_good(raw, p).alias(_PLAIN), F.try_to_timestamp(p["event_time"]).alias(_EVENT_TIME)
    )
    keys = flagged.select("*", F.when(~F.col(_PLAIN), F.json_object_keys(raw)).alias(_KEYS))
    contract_keys = F.array(*[F.lit(name) for name in CONTRACT_KEYS])
    has_unknown_keys = ~F.col(_PLAIN) & (F.size(F.array_except(F.col(_KEYS), contract_keys)) > 0)
    # The map parse names the field of a type mismatch and rescues unknown fields.
    needs_loose = ~F.col(_PLAIN) & (p[CORRUPT_RECORD].isNotNull() | has_unknown_keys)
    loose = F.from_json(raw, LOOSE_SCHEMA, _JSON_OPTIONS)
    # A line with unknown keys is parsed into a map a second time here, rather than adding a projection
    # that all lines would pass through.
    rescued = F.when(
        has_unknown_keys, F.to_json(F.map_filter(loose, lambda k, _v: ~F.array_contains(contract_keys, k)))
    )
    with_loose = keys.select("*", F.when(needs_loose, loose).alias(_LOOSE), rescued.alias("_rescued_data"))
    m = F.col(_LOOSE)

    event_time = F.col(_EVENT_TIME)
    timestamp_reason = F.when(event_time.isNull(), F.lit("invalid_timestamp")).when(
        (event_time < F.lit(EARLIEST_EVENT_TIME.replace(tzinfo=None)))
        | (event_time >= F.lit(LATEST_EVENT_TIME.replace(tzinfo=None))),
        F.lit("impossible_timestamp"),
    )
    candidates: list[tuple[Column, Column]] = [
        (F.trim(raw) == "", F.lit("empty_line")),
        (F.col(_KEYS).isNull(), F.lit("malformed_json")),
    ]
    candidates += [(p[name].isNull() & m[name].isNull(), F.lit(f"missing_required:{name}")) for name in REQUIRED_FIELDS]
    candidates += [
        (p[CORRUPT_RECORD].isNotNull() & p[f.name].isNull() & m[f.name].isNotNull(), F.lit(f"type_mismatch:{f.name}"))
        for f in FIELDS
    ]
    # Absent in the typed parse but present in the map: a value the parser refused (e.g. "seq": "7").
    candidates += [(p[name].isNull(), F.lit(f"missing_required:{name}")) for name in REQUIRED_FIELDS]
    candidates += [(p[CORRUPT_RECORD].isNotNull(), F.lit("malformed_json"))]
    full_check = F.coalesce(_first_reason(candidates), timestamp_reason)
    reason = F.when(F.col(_PLAIN), timestamp_reason).otherwise(full_check)
    contract_columns = [(event_time if f.name == "event_time" else p[f.name]).alias(f.name) for f in FIELDS]
    return with_loose.select(
        "raw_line",
        "_source_file",
        *contract_columns,
        "_rescued_data",
        reason.alias(REASON),
    )


def _bronze_columns(batch_id: int, ingested_at: Column, rescued: Column) -> list[Column]:
    # Stored as timezone-naive UTC (Parquet isAdjustedToUTC=false) so DuckDB and Athena read plain
    # TIMESTAMPs with the same wall-clock value Spark wrote, whatever their session time zone.
    return [
        *[
            (F.col(f.name).cast("timestamp_ntz") if f.type == "timestamp" else F.col(f.name)).alias(f.name)
            for f in FIELDS
        ],
        rescued.alias("_rescued_data"),
        ingested_at.cast("timestamp_ntz").alias("_ingested_at"),
        "_source_file",
        F.lit(batch_id).cast("bigint").alias("_batch_id"),
        F.lit(SCHEMA_VERSION).cast("int").alias("_schema_version"),
    ]


def to_bronze(parsed: DataFrame, batch_id: int, ingested_at: Column | None = None) -> DataFrame:
    """The bronze rows of a parsed batch, with metadata columns and the event-date partition column."""
    ingested_at = F.current_timestamp() if ingested_at is None else ingested_at
    return parsed.where(F.col(REASON).isNull()).select(
        *_bronze_columns(batch_id, ingested_at, F.col("_rescued_data")),
        F.to_date("event_time").alias("event_date"),
    )


def to_staged(parsed: DataFrame, batch_id: int, ingested_at: Column | None = None) -> DataFrame:
    """Every row of a parsed batch shaped for ONE Parquet write partitioned by ``(_fate, event_date)``.

    The bronze job writes a batch in a single pass over its lines this way, instead of caching the parsed
    batch and reading it twice. Rows with ``_fate = 'bronze'`` are exactly :func:`to_bronze`'s rows. A
    Parquet write has one schema, so a quarantine row (``_fate = 'quarantine'``, null event date) has
    bronze's columns too and carries its raw line in ``_rescued_data`` and its reason in ``device_id``;
    :func:`quarantine_from_staged` turns it back into a :func:`to_quarantine` row, byte for byte.
    """
    ingested_at = F.current_timestamp() if ingested_at is None else ingested_at
    good = F.col(REASON).isNull()
    columns = _bronze_columns(batch_id, ingested_at, F.when(good, F.col("_rescued_data")).otherwise(F.col("raw_line")))
    columns[0] = F.when(good, F.col("device_id")).otherwise(F.col(REASON)).alias("device_id")
    return parsed.select(
        *columns,
        F.when(good, F.lit(BRONZE_FATE)).otherwise(F.lit(QUARANTINE_FATE)).alias(FATE),
        F.when(good, F.to_date("event_time")).alias("event_date"),
    )


def quarantine_from_staged(staged: DataFrame) -> DataFrame:
    """The quarantine rows of a batch from its staged quarantine rows (see :func:`to_staged`)."""
    return staged.select(
        F.col("_rescued_data").alias("raw_line"),
        F.col("device_id").alias("reason"),
        "_source_file",
        "_batch_id",
        "_ingested_at",
        "_schema_version",
        F.to_date("_ingested_at").alias("ingest_date"),
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
