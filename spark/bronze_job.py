"""The bronze job: landing JSON -> bronze Parquet + quarantine, with Spark Structured Streaming.

Guarantee for readers that ignore Spark's logs (DuckDB, Athena): **every micro-batch is published under
file names addressed by its batch id, and a retried batch replaces its own files.** The job writes a
batch into a staging folder, then moves each file to
``bronze/readings/event_date=D/part-b<batch:010d>-<n:05d>.parquet`` (replacing a file of that name), then
writes the batch manifest. Spark's checkpoint fixes which landing files make up batch N before the batch
runs, so a batch re-run after a crash reads the same lines and publishes the same names: nothing is
doubled. Files of a batch whose publish was cut short are replaced when the batch re-runs. Silver also
de-duplicates on the event key, so a reader that catches a batch half-published still ends up exact.

Other sources (``lakehouse/source_contracts.py``: customer, accelerometer, step_trainer) go through the same
publisher, one streaming query each with its own checkpoint (``_checkpoints/bronze_<source>/``), files
under ``bronze/<source>/`` and manifests under ``_manifests/bronze_<source>/``; a source without a
landing folder is skipped.

Run locally with ``lakehouse bronze --once``; on a cluster with ``spark-submit spark/bronze_job.py``
(see the README): the module is its own entry point.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Settings
from lakehouse.lake import Lake
from lakehouse.source_contracts import SOURCES, SourceContract
from spark.hadoop_fs import HadoopFS
from spark.transform import (
    BRONZE_FATE,
    FATE,
    QUARANTINE_FATE,
    REASON,
    parse_lines,
    quarantine_from_staged,
    to_bronze,
    to_quarantine,
    to_staged,
)

JOB = "bronze_readings"
# Landing files sit four folders deep (YYYY/MM/DD/HH); names starting with "." or "_" are ignored by
# Spark, which keeps the producers' half-written temporary files out.
LANDING_GLOB = "*/*/*/*/*.json"


@dataclass(frozen=True)
class Flow:
    """What one streaming query lands: a landing folder, parsed into bronze and quarantine folders."""

    job: str  # names the checkpoint, the manifests and the staging folder
    landing: str
    bronze: str
    quarantine: str
    parse: Callable[[DataFrame], DataFrame]
    to_bronze: Callable[[DataFrame, int, Column], DataFrame]
    to_quarantine: Callable[[DataFrame, int, Column], DataFrame]
    landing_glob: str | None = LANDING_GLOB  # None: every *.json in any sub-folder
    # One-pass write (readings): every parsed row shaped for one Parquet write partitioned by
    # (_fate, event_date), and the staged quarantine rows turned back into quarantine rows. Without them
    # the publisher caches the parsed batch and writes bronze and quarantine from the cache.
    stage: Callable[[DataFrame, int, Column], DataFrame] | None = None
    unstage_quarantine: Callable[[DataFrame], DataFrame] | None = None


def readings_flow(lake: Lake) -> Flow:
    return Flow(
        JOB,
        lake.landing_readings,
        lake.bronze_readings,
        lake.quarantine_readings,
        parse_lines,
        to_bronze,
        to_quarantine,
        stage=to_staged,
        unstage_quarantine=quarantine_from_staged,
    )


def source_flow(lake: Lake, contract: SourceContract) -> Flow:
    from spark.source_transform import parse_source_lines, to_source_bronze, to_source_quarantine

    return Flow(
        contract.job,
        lake.landing(contract.name),
        lake.bronze(contract.name),
        lake.quarantine(contract.name),
        partial(parse_source_lines, contract=contract),
        lambda parsed, batch_id, ingested_at: to_source_bronze(parsed, contract, batch_id, ingested_at),
        lambda parsed, batch_id, ingested_at: to_source_quarantine(parsed, contract, batch_id, ingested_at),
        landing_glob=None,
    )


@dataclass
class BatchManifest:
    batch_id: int
    started_at: str
    finished_at: str
    source_files: list[str]
    lines: int
    bronze_rows: int
    quarantine_rows: int
    event_dates: list[str]
    quarantine_reasons: dict[str, int]
    bronze_files: list[str] = field(default_factory=list)


@dataclass
class BronzeReport:
    batches: list[BatchManifest]  # the readings' batches; the counts below are of readings
    seconds: float
    sources: dict[str, list[BatchManifest]] = field(default_factory=dict)  # other sources' batches, by name

    @property
    def lines(self) -> int:
        return sum(b.lines for b in self.batches)

    @property
    def bronze_rows(self) -> int:
        return sum(b.bronze_rows for b in self.batches)

    @property
    def quarantine_rows(self) -> int:
        return sum(b.quarantine_rows for b in self.batches)

    @property
    def batch_ids(self) -> list[int]:
        return [b.batch_id for b in self.batches]

    def quarantine_reasons(self) -> Counter:
        total: Counter = Counter()
        for b in self.batches:
            total.update(b.quarantine_reasons)
        return total


def batch_file_prefix(batch_id: int) -> str:
    return f"part-b{batch_id:010d}-"


class BatchPublisher:
    """The ``foreachBatch`` function: parse, stage, publish under batch-addressed names, write the manifest."""

    def __init__(
        self, spark: SparkSession, lake: Lake, settings: Settings, on_batch=None, flow: Flow | None = None
    ) -> None:
        self.spark = spark
        self.lake = lake
        self.flow = flow or readings_flow(lake)
        self.settings = settings
        self.fs = HadoopFS(spark, lake.root)
        self.manifests: list[BatchManifest] = []
        self.on_batch = on_batch

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        started = datetime.now(UTC)
        ingested_at = F.lit(started.replace(tzinfo=None)).cast("timestamp")
        if self.flow.stage is not None:
            self._publish_in_one_pass(batch, batch_id, started, ingested_at)
            return
        parsed = self.flow.parse(batch).persist()
        try:
            counts = parsed.groupBy("_source_file", REASON).count().collect()
            if not counts:
                return
            bronze_stage = self.lake.uri("_staging", self.flow.job, f"batch-{batch_id:010d}", "bronze")
            quarantine_stage = self.lake.uri("_staging", self.flow.job, f"batch-{batch_id:010d}", "quarantine")
            self.fs.delete(self.lake.uri("_staging", self.flow.job, f"batch-{batch_id:010d}"))

            bronze_rows = sum(r["count"] for r in counts if r[REASON] is None)
            quarantine_rows = sum(r["count"] for r in counts if r[REASON] is not None)
            if bronze_rows:
                bronze = self.flow.to_bronze(parsed, batch_id, ingested_at)
                files = max(1, self.settings.bronze_files_per_partition)
                # One shuffle puts each event date's rows in `files` tasks, so a partition gets few files.
                (
                    bronze.repartition(files * 4, "event_date")
                    .write.mode("overwrite")
                    .partitionBy("event_date")
                    .parquet(bronze_stage)
                )
            if quarantine_rows:
                self.flow.to_quarantine(parsed, batch_id, ingested_at).coalesce(1).write.mode("overwrite").partitionBy(
                    "ingest_date"
                ).parquet(quarantine_stage)

            published = self._publish(bronze_stage, self.flow.bronze, batch_id)
            self._publish(quarantine_stage, self.flow.quarantine, batch_id)
            reasons = Counter()
            for r in counts:
                if r[REASON] is not None:
                    reasons[r[REASON]] += r["count"]
            manifest = BatchManifest(
                batch_id=batch_id,
                started_at=started.isoformat(),
                finished_at=datetime.now(UTC).isoformat(),
                source_files=sorted({r["_source_file"] for r in counts}),
                lines=bronze_rows + quarantine_rows,
                bronze_rows=bronze_rows,
                quarantine_rows=quarantine_rows,
                event_dates=sorted({p.split("=", 1)[1] for p, _ in published}),
                quarantine_reasons=dict(sorted(reasons.items())),
                bronze_files=sorted(f"{p}/{name}" for p, name in published),
            )
            self.fs.write_text(
                f"{self.lake.manifests(self.flow.job)}/batch-{batch_id:010d}.json",
                json.dumps(asdict(manifest), indent=1),
            )
            self.fs.delete(self.lake.uri("_staging", self.flow.job, f"batch-{batch_id:010d}"))
            self.manifests.append(manifest)
            if self.on_batch:
                self.on_batch(manifest)
        finally:
            parsed.unpersist()

    def _publish_in_one_pass(self, batch: DataFrame, batch_id: int, started: datetime, ingested_at: Column) -> None:
        """Parse the batch once and write it once (``Flow.stage``), counting lines on the way through.

        No cache and no counting pass: the counts are observed metrics of the write itself. Without a
        filter between parse and write, Spark cannot push a filter into the parse and run it once per
        reference (which it does for ``to_bronze(parse_lines(...))``). The quarantine rows, few, are read
        back from the staged files and rewritten with the quarantine columns.
        """
        batch_stage = self.lake.uri("_staging", self.flow.job, f"batch-{batch_id:010d}")
        staged_uri, quarantine_stage = f"{batch_stage}/staged", f"{batch_stage}/quarantine"
        self.fs.delete(batch_stage)
        observed = Observation(f"{self.flow.job}-batch-{batch_id}")
        staged = self.flow.stage(self.flow.parse(batch), batch_id, ingested_at).observe(
            observed,
            F.count(F.lit(1)).alias("lines"),
            F.count_if(F.col(FATE) == QUARANTINE_FATE).alias("quarantine_rows"),
            F.collect_set("_source_file").alias("source_files"),
        )
        files = self.settings.bronze_files_per_partition
        if files > 0:
            # Few files per event date and batch, at the price of a shuffle.
            staged = staged.repartition(files * 4, FATE, "event_date")
        staged.write.mode("overwrite").partitionBy(FATE, "event_date").parquet(staged_uri)
        counts = observed.get
        if not counts["lines"]:
            self.fs.delete(batch_stage)
            return
        quarantine_rows = counts["quarantine_rows"]
        reasons: Counter = Counter()
        if quarantine_rows:
            quarantine = self.flow.unstage_quarantine(self.spark.read.parquet(f"{staged_uri}/{FATE}={QUARANTINE_FATE}"))
            reasons.update({r["reason"]: r["count"] for r in quarantine.groupBy("reason").count().collect()})
            quarantine.coalesce(1).write.mode("overwrite").partitionBy("ingest_date").parquet(quarantine_stage)
        published = self._publish(f"{staged_uri}/{FATE}={BRONZE_FATE}", self.flow.bronze, batch_id)
        self._publish(quarantine_stage, self.flow.quarantine, batch_id)
        manifest = BatchManifest(
            batch_id=batch_id,
            started_at=started.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            source_files=sorted(counts["source_files"]),
            lines=counts["lines"],
            bronze_rows=counts["lines"] - quarantine_rows,
            quarantine_rows=quarantine_rows,
            event_dates=sorted({p.split("=", 1)[1] for p, _ in published}),
            quarantine_reasons=dict(sorted(reasons.items())),
            bronze_files=sorted(f"{p}/{name}" for p, name in published),
        )
        self.fs.write_text(
            f"{self.lake.manifests(self.flow.job)}/batch-{batch_id:010d}.json", json.dumps(asdict(manifest), indent=1)
        )
        self.fs.delete(batch_stage)
        self.manifests.append(manifest)
        if self.on_batch:
            self.on_batch(manifest)

    def _publish(self, stage: str, target: str, batch_id: int) -> list[tuple[str, str]]:
        """Move staged files to their batch-addressed names; returns (partition, file name) pairs."""
        prefix = batch_file_prefix(batch_id)
        published = []
        for partition in self.fs.list_dirs(stage):
            if "=" not in partition:
                continue
            # A previous attempt of this batch may have published more files than this one: drop them all.
            for stale in self.fs.list_files(f"{target}/{partition}", ".parquet"):
                if stale.startswith(prefix):
                    self.fs.delete(f"{target}/{partition}/{stale}", recursive=False)
            staged = [f for f in self.fs.list_files(f"{stage}/{partition}", ".parquet") if f.startswith("part-")]
            for n, name in enumerate(staged):
                final = f"{prefix}{n:05d}.parquet"
                self.fs.rename(f"{stage}/{partition}/{name}", f"{target}/{partition}/{final}")
                published.append((partition, final))
        return published


def read_landing(spark: SparkSession, lake: Lake, settings: Settings, flow: Flow | None = None) -> DataFrame:
    flow = flow or readings_flow(lake)
    reader = spark.readStream.format("text")
    if settings.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", settings.max_files_per_trigger)
    if flow.landing_glob is None:
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.json")
    path = flow.landing if flow.landing_glob is None else f"{flow.landing}/{flow.landing_glob}"
    return reader.load(path).select(
        F.col("value").alias("raw_line"), F.col("_metadata.file_path").alias("_source_file")
    )


def run_bronze(
    settings: Settings,
    *,
    continuous: bool = False,
    interval: str = "10 seconds",
    spark: SparkSession | None = None,
    on_batch=None,
    on_source_batch: Callable[[str, BatchManifest], None] | None = None,
) -> BronzeReport:
    """Land what is in the landing zone (``continuous=False``: trigger availableNow, then stop) or keep
    landing new files every ``interval`` until stopped (SIGTERM or Ctrl-C finish the current batch).

    Readings always; each source of ``lakehouse.source_contracts.SOURCES`` whose landing folder exists in its own
    query (``on_source_batch(source, manifest)`` hears of its batches)."""
    from spark.session import build_session

    lake = settings.lake_root
    spark = spark or build_session(settings)
    fs = HadoopFS(spark, lake.root)
    fs.mkdirs(lake.landing_readings)
    publisher = BatchPublisher(spark, lake, settings, on_batch=on_batch)
    publishers = {JOB: publisher}
    for name, contract in SOURCES.items():
        if fs.exists(lake.landing(name)):
            hear = partial(on_source_batch, name) if on_source_batch else None
            publishers[name] = BatchPublisher(spark, lake, settings, on_batch=hear, flow=source_flow(lake, contract))
    started = time.monotonic()
    queries = []
    try:
        for each in publishers.values():
            writer = (
                read_landing(spark, lake, settings, each.flow)
                .writeStream.queryName(each.flow.job)
                .foreachBatch(each)
                .option("checkpointLocation", lake.checkpoint(each.flow.job))
            )
            writer = writer.trigger(processingTime=interval) if continuous else writer.trigger(availableNow=True)
            queries.append(writer.start())
        if continuous:
            _stop_on_signal(*queries)
        for query in queries:
            query.awaitTermination()
    finally:
        for query in queries:  # one query failed: do not leave the others running
            if query.isActive:
                query.stop()
    return BronzeReport(
        batches=publisher.manifests,
        seconds=time.monotonic() - started,
        sources={name: p.manifests for name, p in publishers.items() if name != JOB},
    )


def _stop_on_signal(*queries) -> None:
    def stop_all() -> None:
        for query in queries:
            query.stop()

    def stop(signum, _frame):
        print(f"bronze: signal {signum}, stopping after the current batch", file=sys.stderr)
        # The handler runs on the main thread, which is inside a py4j call (awaitTermination): calling
        # Spark from here would re-enter that connection, so another thread stops the queries.
        threading.Thread(target=stop_all, name="bronze-stop", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``spark-submit``: the master and resources come from the submit command."""
    parser = argparse.ArgumentParser(prog="bronze_job.py", description="Land bronze from the landing zone.")
    parser.add_argument("--lake", required=True, help="lake root, e.g. s3://bucket/lake or /data/lake")
    parser.add_argument("--continuous", action="store_true", help="keep running with a processing-time trigger")
    parser.add_argument("--interval", default="10 seconds", help="trigger interval in continuous mode")
    parser.add_argument("--max-files-per-trigger", type=int, default=None)
    args = parser.parse_args(argv)
    settings = Settings(lake=args.lake, spark_master="", max_files_per_trigger=args.max_files_per_trigger)
    report = run_bronze(settings, continuous=args.continuous, interval=args.interval)
    import lakehouse

    print(
        json.dumps(
            {
                "code_from": lakehouse.__file__,
                "batches": report.batch_ids,
                "lines": report.lines,
                "bronze_rows": report.bronze_rows,
                "quarantine_rows": report.quarantine_rows,
                "seconds": round(report.seconds, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
