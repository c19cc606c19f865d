"""Pure, contract-driven transformations from a source's landing lines to bronze and quarantine rows.

The same shape as :mod:`spark.transform` (readings), for any :class:`lakehouse.source_contracts.SourceContract`:
input is a DataFrame of ``raw_line`` and ``_source_file``; every line leaves as exactly one row, a bronze
row or a quarantine row with a reason code (see :mod:`lakehouse.source_contracts` for the codes and types).

How a line is read:

- ``from_json`` in PERMISSIVE mode with an explicit schema from the contract and the corrupt-record
  column. Numbers that may come as integers or floats (``double`` and ``epoch_ms`` keys) are parsed as
  ``double``; epoch milliseconds are then cast to ``bigint`` with ``try_cast``, so a value no ``bigint``
  holds is a type mismatch instead of a failed batch.
- ``json_object_keys`` tells a JSON object from anything else (null for broken JSON), because since
  Spark 3 a broken line parses to a row of nulls and a null check cannot tell it from a sparse line.
- A second, loose parse into ``map<string,string>`` runs only on lines that need it (a corrupt record or
  keys the contract does not know): it names the key of a type mismatch and fills ``_rescued_data``.
- Alias spellings of a key (``timeStamp`` for ``timestamp``) are parsed on their own, only on lines that
  have one: Spark resolves struct fields case-insensitively, so both cannot sit in one schema.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.source_contracts import EARLIEST_EVENT_MS, LATEST_EVENT_MS, SourceContract, SourceField
from spark.schemas import CORRUPT_RECORD, LOOSE_SCHEMA

REASON = "_reason"
_JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD}
_PARSE_TYPES = {"string": T.StringType(), "double": T.DoubleType(), "epoch_ms": T.DoubleType()}
_MS_PER_DAY = 86_400_000


def parse_schema(contract: SourceContract) -> T.StructType:
    """What ``from_json`` parses a landing line into: every key (as sent) plus the corrupt-record column."""
    return T.StructType(
        [T.StructField(f.key, _PARSE_TYPES[f.type]) for f in contract.fields]
        + [T.StructField(CORRUPT_RECORD, T.StringType())]
    )


def alias_schema(contract: SourceContract) -> T.StructType | None:
    """The schema of the alias spellings, parsed apart (None when the contract has no aliases)."""
    fields = [T.StructField(alias, _PARSE_TYPES[f.type]) for f in contract.fields for alias in f.aliases]
    if not fields:
        return None
    return T.StructType(fields + [T.StructField(CORRUPT_RECORD, T.StringType())])


def _first_reason(candidates: list[tuple[Column, Column]]) -> Column:
    expr = None
    for condition, reason in candidates:
        expr = F.when(condition, reason) if expr is None else expr.when(condition, reason)
    return expr


def _coalesce(columns: list[Column]) -> Column:
    return columns[0] if len(columns) == 1 else F.coalesce(*columns)


def parse_source_lines(lines: DataFrame, contract: SourceContract) -> DataFrame:
    """Parse each landing line of ``contract``'s source and decide its fate.

    Returns one row per input line: ``raw_line``, ``_source_file``, every contract column (typed as in
    bronze), ``_rescued_data`` and ``_reason`` (null for a bronze row, a reason code for quarantine).
    """
    keys = F.json_object_keys("raw_line")
    known = F.array(*[F.lit(k) for k in contract.keys])
    frame = lines.select(
        "*", F.from_json("raw_line", parse_schema(contract), _JSON_OPTIONS).alias("_parsed"), keys.alias("_keys")
    )
    p, k = F.col("_parsed"), F.col("_keys")
    aliases = alias_schema(contract)
    if aliases is not None:
        has_alias = F.arrays_overlap(k, F.array(*[F.lit(a) for f in contract.fields for a in f.aliases]))
        frame = frame.withColumn("_aliased", F.when(has_alias, F.from_json("raw_line", aliases, _JSON_OPTIONS)))
        a = F.col("_aliased")
        corrupt = p[CORRUPT_RECORD].isNotNull() | a[CORRUPT_RECORD].isNotNull()
    else:
        a = None
        corrupt = p[CORRUPT_RECORD].isNotNull()
    unknown_keys = F.size(F.array_except(k, known)) > 0
    frame = frame.withColumn(
        "_loose", F.when(corrupt | unknown_keys, F.from_json("raw_line", LOOSE_SCHEMA, _JSON_OPTIONS))
    )
    m = F.col("_loose")

    def typed(f: SourceField) -> Column:
        return _coalesce([p[f.key]] + [a[alias] for alias in f.aliases])

    def loose(f: SourceField) -> Column:
        return _coalesce([m[key] for key in f.keys])

    def value(f: SourceField) -> Column:
        return typed(f).try_cast("bigint") if f.type == "epoch_ms" else typed(f)

    event = contract.event_field
    candidates: list[tuple[Column, Column]] = [
        (F.trim(F.col("raw_line")) == "", F.lit("empty_line")),
        (k.isNull(), F.lit("malformed_json")),
    ]
    required = [f for f in contract.fields if f.required]
    candidates += [(typed(f).isNull() & loose(f).isNull(), F.lit(f"missing_required:{f.key}")) for f in required]
    candidates += [
        (corrupt & typed(f).isNull() & loose(f).isNotNull(), F.lit(f"type_mismatch:{f.key}")) for f in contract.fields
    ]
    candidates += [(typed(f).isNull(), F.lit(f"missing_required:{f.key}")) for f in required]
    candidates.append((corrupt, F.lit("malformed_json")))
    # A number no bigint holds (1e300, NaN, Infinity) where epoch milliseconds belong.
    candidates += [
        (typed(f).isNotNull() & value(f).isNull(), F.lit(f"type_mismatch:{f.key}"))
        for f in contract.fields
        if f.type == "epoch_ms"
    ]
    candidates.append(
        (
            (value(event) < F.lit(EARLIEST_EVENT_MS)) | (value(event) >= F.lit(LATEST_EVENT_MS)),
            F.lit(f"impossible_timestamp:{event.key}"),
        )
    )
    rescued = F.when(unknown_keys, F.to_json(F.map_filter(m, lambda key, _v: ~F.array_contains(known, key))))
    return frame.select(
        "raw_line",
        "_source_file",
        *[value(f).cast(f.bronze_type).alias(f.column) for f in contract.fields],
        rescued.alias("_rescued_data"),
        _first_reason(candidates).alias(REASON),
    )


def event_date(contract: SourceContract) -> Column:
    """The UTC date of the event key's epoch milliseconds (arithmetic, whatever the session time zone)."""
    ms = F.col(contract.event_field.column)
    return F.date_from_unix_date(F.floor(ms / F.lit(_MS_PER_DAY)).cast("int"))


def to_source_bronze(
    parsed: DataFrame, contract: SourceContract, batch_id: int, ingested_at: Column | None = None
) -> DataFrame:
    """The bronze rows of a parsed batch: contract columns, metadata columns, the ``event_date`` partition."""
    ingested_at = F.current_timestamp() if ingested_at is None else ingested_at
    return parsed.where(F.col(REASON).isNull()).select(
        *contract.columns,
        "_rescued_data",
        ingested_at.cast("timestamp_ntz").alias("_ingested_at"),
        "_source_file",
        F.lit(batch_id).cast("bigint").alias("_batch_id"),
        F.lit(contract.schema_version).cast("int").alias("_schema_version"),
        event_date(contract).alias("event_date"),
    )


def to_source_quarantine(
    parsed: DataFrame, contract: SourceContract, batch_id: int, ingested_at: Column | None = None
) -> DataFrame:
    """The quarantine rows of a parsed batch, with the same columns as the readings quarantine."""
    ingested_at = F.current_timestamp() if ingested_at is None else ingested_at
    return parsed.where(F.col(REASON).isNotNull()).select(
        "raw_line",
        F.col(REASON).alias("reason"),
        "_source_file",
        F.lit(batch_id).cast("bigint").alias("_batch_id"),
        ingested_at.cast("timestamp_ntz").alias("_ingested_at"),
        F.lit(contract.schema_version).cast("int").alias("_schema_version"),
        F.to_date(ingested_at).alias("ingest_date"),
    )
