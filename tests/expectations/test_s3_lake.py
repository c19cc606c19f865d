"""A lake on S3 (moto in server mode on 127.0.0.1): the bronze gate reads Parquet and manifests from the
bucket, records its outcomes there and builds Data Docs there."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expectations.runner import run_gate
from lakehouse import ops
from lakehouse.errors import LakehouseError


def _put_bronze(s3, readings, schema, batch_id: int, day: str) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(readings, schema=schema, preserve_index=False), buffer)
    s3.put_object(
        Bucket="gates-lake",
        Key=f"lake/bronze/readings/event_date={day}/part-b{batch_id:010d}-00000.parquet",
        Body=buffer.getvalue(),
    )
    manifest = {
        "batch_id": batch_id,
        "lines": len(readings) + 2,
        "bronze_rows": len(readings),
        "quarantine_rows": 2,
        "event_dates": [day],
        "source_files": [],
        "quarantine_reasons": {},
    }
    s3.put_object(
        Bucket="gates-lake",
        Key=f"lake/_manifests/bronze_readings/batch-{batch_id:010d}.json",
        Body=json.dumps(manifest).encode(),
    )


def test_the_bronze_gate_reads_an_s3_lake_and_writes_its_results_and_docs_there(gate_lake, s3_lake):
    settings, s3 = s3_lake
    readings = gate_lake.clean_readings()
    readings.loc[4, "device_id"] = "sensor 4"
    _put_bronze(s3, readings.assign(_batch_id=5), gate_lake.bronze_schema, batch_id=5, day=gate_lake.day)

    result = run_gate(settings, "bronze", run_id="s3-run", batch_ids=[5], docs=True)

    assert [o.expectation for o in result.failures] == ["device_id_matches_pattern"]
    assert result.rows == len(readings)
    share = next(o for o in result.results if o.expectation == "quarantine_share_below_threshold")
    assert share.success and share.observed_value == 2 / (len(readings) + 2)
    records = ops.read(settings.lake_root, "ops_gate_results")
    assert {r["run_id"] for r in records} == {"s3-run"} and len(records) == len(result.results)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="gates-lake", Prefix="lake/gx/data_docs/")["Contents"]]
    assert "lake/gx/data_docs/index.html" in keys
    assert result.docs_path == "s3://gates-lake/lake/gx/data_docs/index.html"


def test_silver_on_an_s3_lake_without_athena_is_refused_with_the_way_to_gate_it(s3_lake):
    settings, _ = s3_lake

    with pytest.raises(LakehouseError, match="is on S3, where silver and gold are Athena tables"):
        run_gate(settings, "silver", run_id="r")
