"""Crash safety, for real: kill -9 the bronze job in the middle of a batch, restart it, and find every
landing line exactly once in bronze or quarantine, as DuckDB (which ignores Spark's logs) reads them.

Two landing layouts: a few large files, one a batch; and many small files (as Firehose cuts them), a few
hundred a batch, so that a batch's files are listed and packed into few read tasks (spark/session.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

# (files, lines per file, files per batch)
LARGE_FILES = (4, 2000, 1)
SMALL_FILES = (800, 10, 200)
LINE = (
    '{{"device_id":"env-{d:05d}","device_type":"environmental","site_id":"site-01",'
    '"event_time":"2026-11-2{day}T{h:02d}:{m:02d}:00.000Z","seq":{i},"temperature_c":21.0}}'
)


def land_files(lake: Path, files: int, lines_per_file: int) -> int:
    expected = 0
    for f in range(files):
        folder = lake / "landing" / "readings" / "2026" / "11" / "23" / f"{10 + f % 4:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for k in range(lines_per_file):
            i = f * lines_per_file + k
            lines.append(LINE.format(d=i % 40 + 1, day=2 + i % 2, h=i % 24, m=i % 60, i=i))
        lines.append("{not json")  # one quarantined line per file
        expected += len(lines)
        (folder / f"part-{f}.json").write_text("\n".join(lines) + "\n")
    return expected


def start_job(lake: Path, files_per_batch: int) -> subprocess.Popen:
    lakehouse = Path(sys.executable).parent / "lakehouse"
    return subprocess.Popen(
        [str(lakehouse), "--lake", str(lake), "bronze", "--once", "--max-files-per-trigger", str(files_per_batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.parametrize("layout", [LARGE_FILES, SMALL_FILES], ids=["few_large_files", "many_small_files"])
def test_kill_9_in_the_middle_of_a_batch_then_restart_loses_and_doubles_nothing(tmp_path, layout):
    files, lines_per_file, files_per_batch = layout
    lake = tmp_path / "lake"
    expected_lines = land_files(lake, files, lines_per_file)
    staging = lake / "_staging" / "bronze_readings"

    job = start_job(lake, files_per_batch)
    deadline = time.monotonic() + 600  # a JVM start on a busy machine
    killed_in_batch = None
    while time.monotonic() < deadline and job.poll() is None:
        # A batch is mid-flight while its staging folder exists: batch 0 has published, batch >= 1 is writing.
        batches = sorted(p.name for p in staging.glob("batch-*")) if staging.exists() else []
        if batches and batches[-1] != "batch-0000000000":
            os.killpg(job.pid, signal.SIGKILL)
            killed_in_batch = batches[-1]
            break
        time.sleep(0.005)
    if killed_in_batch is None and job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)  # never leave the job behind
    job.wait(timeout=60)
    assert killed_in_batch is not None, "the job finished before it could be killed mid-batch"

    restarted = start_job(lake, files_per_batch)
    output, _ = restarted.communicate(timeout=900)
    assert restarted.returncode == 0, output

    bronze = f"read_parquet('{lake}/bronze/readings/*/*.parquet', hive_partitioning=true)"
    quarantine = f"read_parquet('{lake}/quarantine/readings/*/*.parquet')"
    rows, distinct_keys = (
        duckdb.connect()
        .execute(f"select count(*), count(distinct (device_id, event_time, seq)) from {bronze}")
        .fetchall()[0]
    )
    quarantined = duckdb.connect().execute(f"select count(*) from {quarantine}").fetchall()[0][0]
    assert rows == distinct_keys == files * lines_per_file
    assert quarantined == files
    assert rows + quarantined == expected_lines
