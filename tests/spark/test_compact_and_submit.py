"""Compaction keeps a partition's rows; the packaged job runs through spark-submit unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb

from spark.bronze_job import run_bronze
from spark.compact import compact_partition
from spark.package import build_job_package

LINE = (
    '{{"device_id":"mch-{d:05d}","device_type":"machine","site_id":"site-02",'
    '"event_time":"2026-11-23T{h:02d}:00:{s:02d}.000Z","seq":{i},"vibration_mm_s":{v}}}'
)


def land(lake_root: str, name: str, start: int, count: int) -> None:
    folder = Path(lake_root) / "landing" / "readings" / "2026" / "11" / "23" / "10"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [LINE.format(d=i % 7 + 2, h=i % 24, s=i % 60, i=i, v=i / 10) for i in range(start, start + count)]
    (folder / name).write_text("\n".join(lines) + "\n")


def partition_rows(partition: Path) -> Counter:
    rows = (
        duckdb.connect()
        .execute(
            f"select device_id, event_time, seq, vibration_mm_s, _batch_id from read_parquet('{partition}/*.parquet')"
        )
        .fetchall()
    )
    return Counter(rows)


def test_compaction_keeps_the_partitions_rows_identical_with_fewer_files(spark, lake_settings):
    lake = lake_settings.lake_root
    for n in range(4):
        land(lake.root, f"f{n}.json", n * 50, 50)
        run_bronze(lake_settings, spark=spark)  # one batch per file: four small files
    partition = Path(lake.bronze_readings) / "event_date=2026-11-23"
    before = partition_rows(partition)

    result = compact_partition(lake_settings, date(2026, 11, 23), spark=spark)

    assert (result.files_before, result.files_after, result.rows) == (4, 1, 200)
    assert len(list(partition.glob("*.parquet"))) == 1
    assert partition_rows(partition) == before


def test_the_packaged_job_runs_through_spark_submit_with_a_local_master(tmp_path):
    archive, entry = build_job_package(tmp_path / "dist")
    lake = tmp_path / "lake"
    land(str(lake), "a.json", 0, 30)
    spark_submit = Path(sys.executable).parent / "spark-submit"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)  # the job must find our code in the zip, not in the checkout

    done = subprocess.run(
        [
            str(spark_submit),
            "--master",
            "local[1]",
            "--conf",
            "spark.ui.enabled=false",
            "--py-files",
            str(archive),
            str(entry),
            "--lake",
            str(lake),
        ],
        capture_output=True,
        text=True,
        timeout=900,  # a JVM start and a batch on a busy shared machine
        env=env,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["bronze_rows"] == 30
    assert "lakehouse_job.zip" in summary["code_from"], "the job must run from the packaged zip"
    assert partition_rows(lake / "bronze" / "readings" / "event_date=2026-11-23").total() == 30
