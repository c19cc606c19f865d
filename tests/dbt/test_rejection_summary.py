"""Say what was rejected and why: when silver rejects a large share of the readings, the silver gate names
the top reasons with a count, an example row and the fix, and the gold gate blames silver, never "build
gold first" (issue 15: a real 2013 series replayed as a device the catalogue installs in 2024)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from expectations.runner import run_gate
from lakehouse.errors import LakehouseError
from lakehouse.rejections import summarise

REFERENCE = {"reference_time": "2026-03-02 00:00:00"}


def test_the_summary_counts_each_reason_with_an_example_and_the_fix():
    con = duckdb.connect()
    con.execute(
        "create table accepted as select 'env-00001' as device_id, 1 as batch_id from range(90);"
        "create table rejected as select * from (values "
        "('mch-00002', 'machine', timestamp '2013-07-04 00:00:00', 1, 'before_install', null, 'a.json', 1, 70.1),"
        "('mch-00002', 'machine', timestamp '2013-07-04 01:00:00', 2, 'before_install', null, 'a.json', 1, 70.3),"
        "('env-00001', 'environmental', timestamp '2026-03-01 10:00:00', 9, 'out_of_range', 'temperature_c',"
        " 'b.json', 1, 130.0)"
        ") as t(device_id, device_type, event_at, seq, rejection_reason, rejected_metric, source_file, batch_id,"
        " temperature_c)"
    )

    summary = summarise(lambda sql: con.execute(sql).fetchall(), "accepted", "rejected", "batch_id = 1")

    assert (summary.readings, summary.rejected, [r.reason for r in summary.reasons]) == (
        93,
        3,
        ["before_install", "out_of_range"],
    )
    text = summary.format()
    assert text.startswith("silver rejected 3 of 93 readings (3.2%); top reasons:")
    assert "before_install: 2 (e.g. device_id=mch-00002, device_type=machine, event_at=2013-07-04 00:00:00" in text
    assert "fix: the readings are older than the device's installed_at in the catalogue" in text
    assert "out_of_range: 1 (e.g. device_id=env-00001" in text and "rejected_metric=temperature_c" in text
    assert "value=130.0" in text
    assert not summary.is_large  # 3 % is below the share that calls for a summary


def test_when_silver_rejects_everything_the_gates_say_why_and_gold_blames_silver(tmp_path, bronze, lake_builder):
    lake = tmp_path / "lake"
    # A real-looking 2013 series sent as the default catalogue's mch-00002, installed in 2024.
    rows = bronze.series(2, datetime(2013, 7, 4), 48, 3600)
    bronze.write(lake, rows, batch_id=0, ingested_at=datetime(2026, 3, 1))
    built = lake_builder(lake, vars=REFERENCE)
    assert built.result.success, built.result.failures

    silver_gate = run_gate(built.settings, "silver", run_id="test-silver")
    report = silver_gate.format_report()
    assert "silver rejected 48 of 48 readings (100.0%); top reasons:" in report
    assert "before_install: 48 (e.g. device_id=mch-00002, device_type=machine, event_at=2013-07-04 00:00:00" in report
    assert "fix: the readings are older than the device's installed_at in the catalogue" in report

    with pytest.raises(LakehouseError) as gold_refusal:
        run_gate(built.settings, "gold", run_id="test-gold")
    message = str(gold_refusal.value)
    assert "build gold first" not in message
    assert "silver accepted none of the readings" in message and "before_install: 48" in message
