"""The bronze gate, one defect at a time: each defect fails its expectation (and only the ones that must
fail with it), with the severity gates.toml gives."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pytest

from expectations.runner import run_gate


def _failed(result) -> dict[str, str]:
    return {o.expectation: o.severity for o in result.failures}


def _drop_firmware(lake, rows):
    schema = pa.schema([f for f in lake.bronze_schema if f.name != "firmware"])
    lake.write_bronze(rows.drop(columns=["firmware"]), batch_id=0, schema=schema)


def _seq_as_text(lake, rows):
    schema = pa.schema([pa.field("seq", pa.string()) if f.name == "seq" else f for f in lake.bronze_schema])
    lake.write_bronze(rows.assign(seq=rows["seq"].astype(str)), batch_id=0, schema=schema)


def _set(column, value, rows=(0,)):
    def spoil(lake, readings):
        readings[column] = readings[column].astype(object) if value is None else readings[column]
        readings.loc[list(rows), column] = value
        lake.write_bronze(readings, batch_id=0)

    return spoil


def _in_wrong_partition(lake, readings):
    partition_of = pd.Series([lake.day] * len(readings))
    readings.loc[0, "event_time"] = pd.Timestamp(f"{lake.day} 00:00") + timedelta(days=1, hours=1)
    lake.write_bronze(readings, batch_id=0, partition_of=partition_of)


def _clock_skew(share):
    def spoil(lake, readings):
        count = max(1, int(len(readings) * share))
        readings.loc[: count - 1, "event_time"] = readings.loc[: count - 1, "_ingested_at"] + timedelta(hours=2)
        lake.write_bronze(readings, batch_id=0)

    return spoil


def _quarantined(share):
    def spoil(lake, readings):
        quarantined = round(len(readings) * share / (1 - share))
        lake.write_bronze(readings, batch_id=0, quarantine_rows=quarantined)

    return spoil


def _manifest_claims_more_rows(lake, readings):
    lake.write_bronze(readings, batch_id=0, manifest=False)
    lake.write_manifest(0, bronze_rows=len(readings) + 8, quarantine_rows=0, event_dates=[lake.day])


BRONZE_DEFECTS = [
    pytest.param(
        _drop_firmware,
        {"contract_columns_present": "error", "firmware_has_type_string": "error"},
        id="a contract column is missing",
    ),
    pytest.param(_seq_as_text, {"seq_has_type_long": "error"}, id="seq written as text"),
    pytest.param(_set("device_id", None), {"device_id_not_null": "error"}, id="a null device_id"),
    pytest.param(_set("event_time", None), {"event_time_not_null": "error"}, id="a null event_time"),
    pytest.param(_set("_source_file", None), {"_source_file_not_null": "error"}, id="a row without its source file"),
    pytest.param(_set("device_id", "ENV 1"), {"device_id_matches_pattern": "error"}, id="a malformed device id"),
    pytest.param(_set("device_type", "toaster"), {"device_type_known": "error"}, id="an unknown device type"),
    pytest.param(
        _set("_schema_version", 99), {"schema_version_known": "error"}, id="a contract version from the future"
    ),
    pytest.param(
        _in_wrong_partition, {"event_time_in_its_event_date_partition": "error"}, id="a row in another day's partition"
    ),
    pytest.param(
        _clock_skew(0.05), {"event_time_not_ahead_of_ingestion": "warning"}, id="clock skew on 5% of readings"
    ),
    pytest.param(_quarantined(0.08), {"quarantine_share_below_threshold": "error"}, id="8% of lines quarantined"),
    pytest.param(_manifest_claims_more_rows, {"bronze_rows_match_manifests": "error"}, id="rows missing from bronze"),
]


@pytest.mark.parametrize(("spoil", "expected"), BRONZE_DEFECTS)
def test_each_bronze_defect_fails_its_expectation_with_its_severity(gate_lake, spoil, expected):
    spoil(gate_lake, gate_lake.clean_readings())

    result = run_gate(gate_lake.settings, "bronze", run_id="defect", batch_ids=[0])

    assert _failed(result) == expected, result.format_report()
    assert result.success == ("error" not in expected.values())


def test_bronze_passes_with_the_defects_bronze_keeps_on_purpose(gate_lake):
    readings = gate_lake.clean_readings()
    duplicates = readings.iloc[:5]
    unknown = readings.iloc[:3].assign(device_id="env-09001")
    out_of_range = readings.iloc[:2].assign(temperature_c=900.0)
    late = readings.iloc[:2].assign(event_time=readings["event_time"].iloc[0] - timedelta(hours=6))
    gate_lake.write_bronze(pd.concat([readings, duplicates, unknown, out_of_range, late], ignore_index=True), 0)

    result = run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[0])

    assert result.success and result.failures == [], result.format_report()


def test_a_little_clock_skew_stays_under_the_mostly_threshold(gate_lake):
    _clock_skew(0.005)(gate_lake, gate_lake.clean_readings())  # one reading in 192

    result = run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[0])

    (skew,) = [o for o in result.results if o.expectation == "event_time_not_ahead_of_ingestion"]
    assert skew.success and skew.element_count == 192  # judged once, over the whole increment
    # (a passed `mostly` rule's unexpected count is not computed: it would cost GX a scan of its own)


def test_quarantine_share_at_the_threshold_passes_and_above_it_fails(gate_lake):
    readings = gate_lake.clean_readings(per_device=19)  # 152 rows
    gate_lake.write_bronze(readings, batch_id=0, quarantine_rows=8)  # 8 / 160 = 5%
    gate_lake.write_bronze(readings.assign(seq=readings["seq"] + 100), batch_id=1, quarantine_rows=9)

    at = run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[0])
    above = run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[1])

    assert at.success
    share = next(o for o in above.failures if o.expectation == "quarantine_share_below_threshold")
    assert share.observed_value == pytest.approx(9 / 161)
    assert "observed: 0.0559" in above.format_report()


def test_the_quarantine_threshold_comes_from_the_settings(gate_lake):
    gate_lake.write_bronze(gate_lake.clean_readings(), batch_id=0, quarantine_rows=15)  # 7.2%

    strict = run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[0])
    lenient = run_gate(gate_lake.settings.with_overrides(max_quarantine_share=0.1), "bronze", run_id="r", batch_ids=[0])

    assert not strict.success and lenient.success


def test_a_sudden_drop_in_row_volume_against_recent_cycles_is_a_warning(gate_lake):
    for batch in range(3):
        gate_lake.write_bronze(gate_lake.clean_readings(batch_id=batch, seq_start=1 + 100 * batch), batch_id=batch)
        assert run_gate(gate_lake.settings, "bronze", run_id=f"cycle-{batch}", batch_ids=[batch]).success
    gate_lake.write_bronze(gate_lake.clean_readings(devices=2, per_device=10, seq_start=900), batch_id=3)

    result = run_gate(gate_lake.settings, "bronze", run_id="cycle-3", batch_ids=[3])

    assert _failed(result) == {"row_volume_within_recent_range": "warning"}
    assert result.success
    assert "row volume: 20 rows against a median of 192 over the last 3 cycles (allowed 96..384)" in result.notes


def test_a_spike_in_row_volume_is_a_warning_too(gate_lake):
    for batch in range(3):
        gate_lake.write_bronze(gate_lake.clean_readings(devices=2, seq_start=1 + 100 * batch), batch_id=batch)
        run_gate(gate_lake.settings, "bronze", run_id=f"cycle-{batch}", batch_ids=[batch])
    gate_lake.write_bronze(gate_lake.clean_readings(devices=8, seq_start=900), batch_id=3)

    result = run_gate(gate_lake.settings, "bronze", run_id="cycle-3", batch_ids=[3])

    assert _failed(result) == {"row_volume_within_recent_range": "warning"}


def test_row_volume_has_no_bound_until_enough_cycles_are_on_record(gate_lake):
    gate_lake.write_bronze(gate_lake.clean_readings(), batch_id=0)
    run_gate(gate_lake.settings, "bronze", run_id="cycle-0", batch_ids=[0])
    gate_lake.write_bronze(gate_lake.clean_readings(devices=1, per_device=2, seq_start=500), batch_id=1)

    result = run_gate(gate_lake.settings, "bronze", run_id="cycle-1", batch_ids=[1])

    assert result.failures == []
    assert result.notes == [
        "row volume: 1 earlier cycle(s) on record, 3 needed for a bound; 2 rows recorded for the next cycles"
    ]
