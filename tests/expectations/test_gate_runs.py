"""How a gate run behaves: clean layers pass, increments are what they say, outcomes are recorded,
unusable input is refused with a message that names it, and nothing is ever deleted."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from expectations.runner import run_gate
from lakehouse import ops
from lakehouse.errors import LakehouseError


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_every_suite_passes_on_clean_simulated_data(gate_lake):
    bronze = gate_lake.clean_readings()
    gate_lake.write_bronze(bronze, batch_id=0)
    gate_lake.write_warehouse(gate_lake.silver_from(bronze))

    results = {layer: run_gate(gate_lake.settings, layer, run_id="clean") for layer in ("bronze", "silver", "gold")}

    for layer, result in results.items():
        assert result.success, result.format_report()
        assert result.failures == [], layer
        assert all(o.success for o in result.results)
    assert results["bronze"].suite_names == ["bronze__readings", "bronze__increment"]
    assert results["silver"].suite_names == ["silver__readings", "silver__rejected_readings"]
    assert results["gold"].suite_names == ["gold__sensor_metrics_hourly", "gold__anomalies", "gold__device_health"]
    assert results["bronze"].rows == len(bronze)
    assert results["silver"].rows == len(bronze)


def test_every_outcome_is_recorded_in_ops_gate_results(gate_lake):
    bronze = gate_lake.clean_readings()
    gate_lake.write_bronze(bronze, batch_id=0)

    result = run_gate(gate_lake.settings, "bronze", run_id="run-42", batch_ids=[0])

    records = ops.read(gate_lake.lake, "ops_gate_results")
    assert len(records) == len(result.results)
    record = next(r for r in records if r["expectation"] == "device_id_matches_pattern")
    assert record["run_id"] == "run-42"
    assert record["layer"] == "bronze"
    assert record["suite"] == "bronze__readings"
    assert record["severity"] == "error"
    assert record["success"] is True
    assert record["element_count"] == len(bronze)
    assert record["unexpected_count"] == 0
    assert record["partition"] == gate_lake.day
    assert record["scope"] == "batches"
    assert record["validated_at"].startswith("20")


def test_a_batch_increment_reads_only_the_rows_of_its_batches(gate_lake):
    first = gate_lake.clean_readings(batch_id=0)
    later = gate_lake.clean_readings(devices=2, per_device=5, batch_id=1, seq_start=100)
    gate_lake.write_bronze(first, batch_id=0)
    later.loc[0, "device_id"] = "not a device"  # a defect in batch 1 only
    gate_lake.write_bronze(later, batch_id=1)

    only_first = run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[0])
    only_later = run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[1])

    assert only_first.success and only_first.rows == len(first)
    assert not only_later.success and only_later.rows == len(later)
    pattern = next(o for o in only_later.failures if o.expectation == "device_id_matches_pattern")
    assert pattern.unexpected_count == 1 and pattern.element_count == len(later)


def test_an_increment_of_many_event_dates_is_validated_in_one_batch_per_suite(gate_lake):
    # 24 readings 4 h apart from 2026-02-26: 4 event dates, all before their ingestion on 2026-03-02
    readings = gate_lake.clean_readings(start=datetime(2026, 2, 26), step=timedelta(hours=4))
    bronze = readings.copy()
    bronze.loc[[3, 150], "device_id"] = "bad id"  # on two different days
    gate_lake.write_bronze(bronze, batch_id=0)
    silver = gate_lake.silver_from(readings)
    gate_lake.write_warehouse(pd.concat([silver, silver.iloc[[10, 150]]]))  # two duplicate keys, two days

    bronze_result = run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[0])
    silver_result = run_gate(gate_lake.settings, "silver", run_id="r")

    assert bronze_result.partitions == ["2026-02-26", "2026-02-27", "2026-02-28", "2026-03-01"]
    for result in (bronze_result, silver_result):
        names = [(o.suite, o.expectation) for o in result.results]
        assert len(names) == len(set(names))  # one outcome per expectation, not one per date
        assert {o.partition for o in result.results} == {None}  # several dates: the result lists them
    pattern = next(o for o in bronze_result.results if o.expectation == "device_id_matches_pattern")
    assert (pattern.element_count, pattern.unexpected_count) == (len(bronze), 2)
    assert {row["device_id"] for row in pattern.sample_rows} == {"bad id"}
    unique = next(o for o in silver_result.results if o.expectation == "event_key_unique")
    assert (unique.element_count, unique.unexpected_count) == (len(silver) + 2, 4)  # both rows of each key
    assert {o.expectation for o in silver_result.failures} == {"event_key_unique"}


def test_a_failed_gate_deletes_nothing_and_changes_no_table(gate_lake):
    bronze = gate_lake.clean_readings()
    bronze.loc[0, "device_type"] = "toaster"
    gate_lake.write_bronze(bronze, batch_id=0)
    silver = gate_lake.silver_from(gate_lake.clean_readings())
    gate_lake.write_warehouse(pd.concat([silver, silver.iloc[[0]]]))
    before = _files(Path(gate_lake.lake.root) / "bronze") | _files(Path(gate_lake.lake.root) / "_manifests")
    gold_before = gate_lake.query("select * from gold.gold_sensor_metrics_hourly order by all")

    bronze_result = run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[0])
    silver_result = run_gate(gate_lake.settings, "silver", run_id="r")

    assert not bronze_result.success and not silver_result.success
    after = _files(Path(gate_lake.lake.root) / "bronze") | _files(Path(gate_lake.lake.root) / "_manifests")
    assert after == before
    pd.testing.assert_frame_equal(
        gate_lake.query("select * from gold.gold_sensor_metrics_hourly order by all"), gold_before
    )
    assert len(gate_lake.query("select * from silver.silver_readings")) == len(silver) + 1


def test_the_warehouse_is_closed_after_a_gate_so_a_writer_can_open_it(gate_lake):
    gate_lake.write_warehouse(gate_lake.silver_from(gate_lake.clean_readings()))

    run_gate(gate_lake.settings, "silver", run_id="r")
    gate_lake.execute("create table silver.after_gate as select 1 as x")  # needs the single writer lock

    assert gate_lake.query("select x from silver.after_gate")["x"].tolist() == [1]


def test_the_report_names_each_failed_expectation_with_counts_and_sample_rows(gate_lake):
    silver = gate_lake.silver_from(gate_lake.clean_readings())
    silver.loc[silver["device_id"] == "env-00001", "temperature_c"] = 130.0
    gate_lake.write_warehouse(silver)

    result = run_gate(gate_lake.settings, "silver", run_id="r")
    report = result.format_report()

    assert report.startswith("gate silver FAILED: 1 error(s), 0 warning(s)")
    expectation = "temperature_c_in_valid_range_for_environmental (temperature_c of environmental rows)"
    assert f"ERROR   silver__readings :: {expectation}" in report
    assert "24 of 48 checked rows unexpected (50%)" in report  # 2 environmental devices x 24 readings
    assert f"in {gate_lake.day}" in report
    assert "chk_temperature_c__environmental=130  device_id=env-00001  device_type=environmental" in report


def test_data_docs_are_built_under_the_lake_when_asked(gate_lake):
    bronze = gate_lake.clean_readings()
    bronze.loc[0, "seq"] = 1  # harmless: bronze keeps duplicates
    gate_lake.write_bronze(bronze, batch_id=0)

    result = run_gate(gate_lake.settings, "bronze", run_id="docs-run", batch_ids=[0], docs=True)

    index = Path(gate_lake.lake.root) / "gx" / "data_docs" / "index.html"
    assert result.docs_path == f"file://{index}"
    assert index.exists()
    pages = list((index.parent / "validations").rglob("*.html"))
    assert {p.relative_to(index.parent / "validations").parts[0] for p in pages} == {
        "bronze__readings",
        "bronze__increment",
    }
    assert "device_id" in pages[0].read_text() or "quarantine_share" in pages[0].read_text()
    assert f"Data Docs: file://{index}" in result.format_report()


@pytest.mark.parametrize(
    ("layer", "kwargs", "message"),
    [
        ("bronze", {}, "has no partitions yet"),
        ("silver", {}, "warehouse.duckdb does not exist"),
        ("gold", {"partitions": ["2026-03-01"]}, "warehouse.duckdb does not exist"),
    ],
)
def test_an_empty_lake_is_refused_with_what_to_build_first(gate_lake, layer, kwargs, message):
    with pytest.raises(LakehouseError, match=message):
        run_gate(gate_lake.settings, layer, run_id="r", **kwargs)


def test_a_batch_without_a_manifest_is_refused(gate_lake):
    gate_lake.write_bronze(gate_lake.clean_readings(), batch_id=0)

    with pytest.raises(LakehouseError, match=r"no manifest for bronze batch\(es\) \[7\] under .*_manifests"):
        run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[7])


def test_a_missing_bronze_partition_is_refused_with_the_partitions_there_are(gate_lake):
    gate_lake.write_bronze(gate_lake.clean_readings(), batch_id=0)

    with pytest.raises(LakehouseError, match="no partition event_date=2026-04-01 .* it holds 2026-03-01"):
        run_gate(gate_lake.settings, "bronze", run_id="r", partitions=["2026-04-01"])


def test_a_missing_silver_partition_is_refused(gate_lake):
    gate_lake.write_warehouse(gate_lake.silver_from(gate_lake.clean_readings()))

    with pytest.raises(LakehouseError, match="silver has no rows for event date.s. 2026-05-05"):
        run_gate(gate_lake.settings, "silver", run_id="r", partitions=["2026-05-05"])


def test_a_missing_table_is_refused_with_the_command_that_builds_it(gate_lake):
    gate_lake.write_warehouse(gate_lake.silver_from(gate_lake.clean_readings()), skip=("gold_anomalies",))

    with pytest.raises(LakehouseError, match=r"table gold.gold_anomalies does not exist .*lakehouse transform gold"):
        run_gate(gate_lake.settings, "gold", run_id="r")


def test_a_partition_that_is_not_a_date_is_refused(gate_lake):
    with pytest.raises(LakehouseError, match="partition '03/01/2026' is not an event date; write it as YYYY-MM-DD"):
        run_gate(gate_lake.settings, "silver", run_id="r", partitions=["03/01/2026"])


def test_a_partition_of_only_rejected_rows_is_still_gated(gate_lake):
    silver = gate_lake.silver_from(gate_lake.clean_readings())
    future = silver.iloc[[0]].assign(
        event_at=pd.Timestamp("2026-03-09 10:00"),
        event_date=pd.Timestamp("2026-03-09").date(),
        rejection_reason="future_event",
        rejected_metric=None,
    )
    gate_lake.write_warehouse(silver, rejected=future)

    result = run_gate(gate_lake.settings, "silver", run_id="r", partitions=["2026-03-09"])

    assert result.success
    assert {o.suite for o in result.results} == {"silver__rejected_readings"}


def test_a_manifest_that_cannot_be_read_is_named(gate_lake):
    gate_lake.write_bronze(gate_lake.clean_readings(), batch_id=0)
    manifest = Path(gate_lake.lake.root) / "_manifests" / "bronze_readings" / "batch-0000000000.json"
    manifest.write_text(json.dumps({"batch_id": 0}))

    with pytest.raises(LakehouseError, match="batch-0000000000.json cannot be read"):
        run_gate(gate_lake.settings, "bronze", run_id="r", batch_ids=[0])
