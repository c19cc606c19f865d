"""Compaction: rewrite one bronze event-date partition's many small files into a few large ones.

Rows are neither lost nor doubled, including across a crash:
1. only files of *committed* batches are taken (a batch that may still be retried keeps its own files);
2. the new files are written to a staging folder, and an intent file records old and new names;
3. the new files are moved in, then the old ones deleted, then the intent removed.
If a crash interrupts steps 3, the next compaction finishes the recorded intent first. Between the move
and the delete a reader could see a row twice; silver de-duplicates on the event key, so what reaches
silver is exact at every moment.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from spark.bronze_job import JOB
from spark.hadoop_fs import HadoopFS

_BATCH_FILE = re.compile(r"^part-b(\d{10})-\d{5}\.parquet$")


@dataclass
class CompactionResult:
    day: date
    rows: int
    files_before: int
    files_after: int
    seconds: float


def last_committed_batch(fs: HadoopFS, checkpoint: str) -> int:
    commits = [int(name) for name in fs.list_files(f"{checkpoint}/commits") if name.isdigit()]
    return max(commits, default=-1)


def compact_partition(settings: Settings, day: date, spark=None, target_files: int = 1) -> CompactionResult:
    from spark.session import build_session

    started = time.monotonic()
    lake = settings.lake_root
    spark = spark or build_session(settings)
    fs = HadoopFS(spark, lake.root)
    partition = f"{lake.bronze_readings}/event_date={day.isoformat()}"
    intent_uri = f"{lake.manifests(JOB)}/compaction-{day.isoformat()}.json"
    if fs.exists(intent_uri):
        _finish(fs, partition, json.loads(fs.read_text(intent_uri)))
        fs.delete(intent_uri)
    if not fs.exists(partition):
        raise LakehouseError(f"no bronze partition for {day}: {partition} does not exist")

    committed = last_committed_batch(fs, lake.checkpoint(JOB))
    old_files = []
    for name in fs.list_files(partition, ".parquet"):
        match = _BATCH_FILE.match(name)
        if match is None or int(match.group(1)) <= committed:
            old_files.append(name)
    if len(old_files) <= target_files:
        rows = spark.read.parquet(*[f"{partition}/{n}" for n in old_files]).count() if old_files else 0
        return CompactionResult(day, rows, len(old_files), len(old_files), time.monotonic() - started)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    stage = lake.uri("_staging", "compaction", f"{day.isoformat()}-{stamp}")
    frame = spark.read.parquet(*[f"{partition}/{n}" for n in old_files])
    rows = frame.count()
    frame.coalesce(target_files).write.mode("overwrite").parquet(stage)
    staged = [n for n in fs.list_files(stage, ".parquet") if n.startswith("part-")]
    new_files = [f"part-c{stamp}-{i:05d}.parquet" for i in range(len(staged))]
    intent = {"stage": stage, "moves": list(zip(staged, new_files, strict=True)), "delete": old_files}
    fs.write_text(intent_uri, json.dumps(intent))
    _finish(fs, partition, intent)
    fs.delete(intent_uri)
    return CompactionResult(day, rows, len(old_files), len(new_files), time.monotonic() - started)


def _finish(fs: HadoopFS, partition: str, intent: dict) -> None:
    for staged, final in intent["moves"]:
        if fs.exists(f"{intent['stage']}/{staged}"):
            fs.rename(f"{intent['stage']}/{staged}", f"{partition}/{final}")
    for name in intent["delete"]:
        fs.delete(f"{partition}/{name}", recursive=False)
    fs.delete(intent["stage"])
