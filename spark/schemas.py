"""Spark schemas derived from the reading contract (never written by hand a second time)."""

from __future__ import annotations

from pyspark.sql import types as T

from lakehouse.contract import FIELDS, Field

CORRUPT_RECORD = "_corrupt_record"

_PARSE_TYPES = {
    "string": T.StringType(),
    "long": T.LongType(),
    "double": T.DoubleType(),
    # Parsed as text, then converted, so a bad timestamp gets its own reason instead of a type mismatch.
    "timestamp": T.StringType(),
}


def parse_type(field: Field) -> T.DataType:
    return _PARSE_TYPES[field.type]


# What from_json parses a landing line into: every contract field plus Spark's corrupt-record column.
LANDING_PARSE_SCHEMA = T.StructType(
    [T.StructField(f.name, parse_type(f), nullable=True) for f in FIELDS]
    + [T.StructField(CORRUPT_RECORD, T.StringType(), nullable=True)]
)

# Every key of a line with its value as text: used to name the field of a type mismatch and to rescue
# fields the contract does not know.
LOOSE_SCHEMA = T.MapType(T.StringType(), T.StringType())
