"""Specification of the landing-line parser: every line becomes a bronze row or a quarantine row."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from lakehouse.contract import BRONZE_METADATA_COLUMNS, FIELDS, QUARANTINE_COLUMNS, SCHEMA_VERSION
from spark.transform import (
    BRONZE_FATE,
    FATE,
    QUARANTINE_FATE,
    parse_lines,
    quarantine_from_staged,
    to_bronze,
    to_quarantine,
    to_staged,
)

GOOD = {
    "device_id": "env-00001",
    "device_type": "environmental",
    "site_id": "site-01",
    "event_time": "2026-11-23T10:15:30.123Z",
    "seq": 7,
    "temperature_c": 21.5,
    "humidity_pct": 40.0,
    "pressure_hpa": 1012.0,
    "battery_pct": 88.0,
    "firmware": "2.4.1",
}


def line(**changes) -> str:
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...})


def parse(spark, *lines: str):
    frame = spark.createDataFrame([(text, "landing/f.json") for text in lines], "raw_line string, _source_file string")
    return parse_lines(frame)


def reasons(spark, *lines: str) -> list[str | None]:
    return [row["_reason"] for row in parse(spark, *lines).collect()]


def test_a_contract_reading_is_accepted_with_its_values_and_a_utc_millisecond_timestamp(spark):
    row = parse(spark, line()).collect()[0]
    assert row["_reason"] is None
    assert row["temperature_c"] == 21.5
    assert row["event_time"].isoformat() == "2026-11-23T10:15:30.123000"
    assert row["_rescued_data"] is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty_line"),
        ("   ", "empty_line"),
        ('{"device_id": "env-00001", "device_ty', "malformed_json"),
        ("[1, 2, 3]", "malformed_json"),
        ("\u00ff\u00fe\u0000 junk", "malformed_json"),
        (line(device_id=...), "missing_required:device_id"),
        (line(device_id=None), "missing_required:device_id"),
        (line(seq=...), "missing_required:seq"),
        (line(event_time=...), "missing_required:event_time"),
        (line(temperature_c="hot"), "type_mismatch:temperature_c"),
        (line(seq="seven"), "type_mismatch:seq"),
        (line(event_time="yesterday"), "invalid_timestamp"),
        (line(event_time="1970-01-01T00:00:00.000Z"), "impossible_timestamp"),
        (line(event_time="2150-01-01T00:00:00.000Z"), "impossible_timestamp"),
    ],
)
def test_each_kind_of_bad_line_is_quarantined_with_its_reason(spark, text, reason):
    assert reasons(spark, text) == [reason]


def test_unknown_fields_are_kept_in_rescued_data_and_the_reading_is_accepted(spark):
    row = parse(spark, line(rssi_dbm=-67, tags={"zone": "a"})).collect()[0]
    assert row["_reason"] is None
    assert json.loads(row["_rescued_data"]) == {"rssi_dbm": "-67", "tags": '{"zone":"a"}'}


def test_a_future_timestamp_is_not_a_parse_failure(spark):
    # Clock skew is judged by silver and the bronze gate against a tolerance, not by the parser.
    assert reasons(spark, line(event_time="2031-01-01T00:00:00.000Z")) == [None]


def test_every_line_leaves_as_exactly_one_bronze_or_quarantine_row(spark):
    lines = [line(seq=i) for i in range(20)] + ["{oops", "", line(seq=...), line(temperature_c="x")]
    parsed = parse(spark, *lines)
    bronze = to_bronze(parsed, batch_id=3)
    quarantine = to_quarantine(parsed, batch_id=3)
    assert bronze.count() == 20
    assert quarantine.count() == 4
    assert bronze.count() + quarantine.count() == len(lines)


def test_bronze_rows_carry_metadata_and_the_event_date_partition(spark):
    bronze = to_bronze(parse(spark, line(), line(event_time="2026-11-24T00:00:00.000Z", seq=8)), batch_id=5)
    assert bronze.columns == [f.name for f in FIELDS] + list(BRONZE_METADATA_COLUMNS) + ["event_date"]
    rows = bronze.orderBy("seq").collect()
    assert [str(r["event_date"]) for r in rows] == ["2026-11-23", "2026-11-24"]
    assert {r["_batch_id"] for r in rows} == {5}
    assert {r["_schema_version"] for r in rows} == {SCHEMA_VERSION}
    assert dict(bronze.dtypes)["event_time"] == "timestamp_ntz"


def test_quarantine_rows_keep_the_raw_line_source_file_and_reason(spark):
    quarantine = to_quarantine(parse(spark, "{oops"), batch_id=9)
    assert quarantine.columns == list(QUARANTINE_COLUMNS) + ["ingest_date"]
    row = quarantine.where(F.col("reason") == "malformed_json").collect()[0]
    assert (row["raw_line"], row["_source_file"], row["_batch_id"]) == ("{oops", "landing/f.json", 9)


# Lines that the cheap "plainly good" test must leave to the full check; each gets the full check's answer.
@pytest.mark.parametrize(
    ("text", "reason", "rescued"),
    [
        (line()[:-1] + ', "rssi_dbm" : -67}', None, {"rssi_dbm": "-67"}),
        (line()[:-1] + ',\t"rssi_dbm"\t:-67}', None, {"rssi_dbm": "-67"}),
        (line()[:-1] + ", 'rssi_dbm': -67}", None, {"rssi_dbm": "-67"}),
        (line()[:-1] + ', "\\"seq": 8}', None, {'"seq': "8"}),
        (line(battery_pct=None), None, None),
        (line(firmware='say "hi": 2'), None, None),
        (line(seq=...)[:-1] + ', "tags": {"seq": 7}}', "missing_required:seq", None),
        (line()[:-1] + ',"rssi_dbm"\n:-67}', None, {"rssi_dbm": "-67"}),
    ],
)
def test_lines_that_are_not_plainly_good_get_the_full_check(spark, text, reason, rescued):
    row = parse(spark, text).collect()[0]
    assert row["_reason"] == reason
    if reason is None:
        assert (json.loads(row["_rescued_data"]) if row["_rescued_data"] else None) == rescued


def test_a_compact_line_with_escaped_quotes_is_accepted_with_its_values(spark):
    text = json.dumps({**GOOD, "firmware": 'say "hi"'}, separators=(",", ":"))
    row = parse(spark, text).collect()[0]
    assert (row["_reason"], row["firmware"], row["_rescued_data"]) == (None, 'say "hi"', None)


def test_the_staged_write_holds_exactly_the_bronze_rows_and_the_quarantine_rows(spark):
    lines = [line(seq=i) for i in range(5)] + ["{oops", "", line(seq=...), "\u00ff junk", line(rssi=-1)]
    parsed = parse(spark, *lines)
    ingested_at = F.lit("2026-11-23 10:00:00").cast("timestamp")
    staged = to_staged(parsed, batch_id=4, ingested_at=ingested_at)

    staged_bronze = staged.where(F.col(FATE) == BRONZE_FATE).drop(FATE)
    staged_quarantine = staged.where(F.col(FATE) == QUARANTINE_FATE).drop(FATE, "event_date")
    assertDataFrameEqual(staged_bronze, to_bronze(parsed, batch_id=4, ingested_at=ingested_at))
    assertDataFrameEqual(
        quarantine_from_staged(staged_quarantine), to_quarantine(parsed, batch_id=4, ingested_at=ingested_at)
    )
    assert staged.where(F.col(FATE) == QUARANTINE_FATE).where(F.col("event_date").isNotNull()).count() == 0
