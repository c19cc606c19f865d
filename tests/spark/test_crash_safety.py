"""Crash safety, for real: kill -9 the bronze job in the middle of a batch, restart it, and find every
landing line exactly once in bronze or quarantine, as DuckDB (which ignores Spark's logs) reads them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

FILES, LINES_PER_FILE = 4, 2000
LINE = (
    '{{"device_id":"env-{d:05d}","device_type":"environmental","site_id":"site-01",'
    '"event_time":"2026-11-2{day}T{h:02d}:{m:02d}:00.000Z","seq":{i},"temperature_c":21.0}}'
)


def land_files(lake: Path) -> int:
    folder = lake / "landing" / "readings" / "2026" / "11" / "23" / "10"
    folder.mkdir(parents=True)
    expected = 0
    for f in range(FILES):
        lines = []
        for k in range(LINES_PER_FILE):
            i = f * LINES_PER_FILE + k
            lines.append(LINE.format(d=i % 40 + 1, day=2 + i % 2, h=i % 24, m=i % 60, i=i))
        lines.append("{not json")  # one quarantined line per file
        expected += len(lines)
        (folder / f"part-{f}.json").write_text("\n".join(lines) + "\n")
    return expected


def start_job(lake: Path) -> subprocess.Popen:
    lakehouse = Path(sys.executable).parent / "lakehouse"
    return subprocess.Popen(
        [str(lakehouse), "--lake", str(lake), "bronze", "--once", "--max-files-per-trigger", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_kill_9_in_the_middle_of_a_batch_then_restart_loses_and_doubles_nothing(tmp_path):
    lake = tmp_path / "lake"
    expected_lines = land_files(lake)
    staging = lake / "_staging" / "bronze_readings"

    job = start_job(lake)
    deadline = time.monotonic() + 240
    killed_in_batch = None
    while time.monotonic() < deadline and job.poll() is None:
        # A batch is mid-flight while its staging folder exists: batch 0 has published, batch >= 1 is writing.
        batches = sorted(p.name for p in staging.glob("batch-*")) if staging.exists() else []
        if batches and batches[-1] != "batch-0000000000":
            os.killpg(job.pid, signal.SIGKILL)
            killed_in_batch = batches[-1]
            break
        time.sleep(0.005)
    job.wait(timeout=60)
    assert killed_in_batch is not None, "the job finished before it could be killed mid-batch"

    restarted = start_job(lake)
    output, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, output

    bronze = f"read_parquet('{lake}/bronze/readings/*/*.parquet', hive_partitioning=true)"
    quarantine = f"read_parquet('{lake}/quarantine/readings/*/*.parquet')"
    rows, distinct_keys = (
        duckdb.connect()
        .execute(f"select count(*), count(distinct (device_id, event_time, seq)) from {bronze}")
        .fetchall()[0]
    )
    quarantined = duckdb.connect().execute(f"select count(*) from {quarantine}").fetchall()[0][0]
    assert rows == distinct_keys == FILES * LINES_PER_FILE
    assert quarantined == FILES
    assert rows + quarantined == expected_lines
