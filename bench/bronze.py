"""Benchmark landing -> bronze: readings per second on local[2] and peak memory.

Writes N simulated readings (6 contract fields each, like the issue's naive baseline) as landing files,
then times one availableNow run of

- ``ours``: the bronze job (``spark.bronze_job.run_bronze``: reason codes, ``_rescued_data``, quarantine,
  batch-addressed publish, manifests), or
- ``naive``: the issue's baseline ``readStream.schema(...).json(...).writeStream.parquet(...)`` on the
  same files (no quarantine, no rescued fields, no exactly-once publish for non-Spark readers), or
- a ceiling, what Spark does here with no JSON parser at all: ``text``, the text source with a trivial
  projection straight into a Parquet sink; ``textpub``, the bronze job's own reading, publishing and
  manifests with the parse replaced by constant columns. No parser inside Spark can beat ``text``.

Each mode runs in its own Python process and JVM; the clock starts after the Spark session is up, so JVM
start-up is excluded, while query start (planning, listing, checkpoint) is included for both. Peak
memory is the resident memory of the Spark JVM, sampled every 0.2 s. The machine is shared: compare
modes from the same invocation (``--mode both`` alternates them) and read the load average printed with
each result. The JVM's CPU time over the same span is printed too: readings per CPU-second moves much
less with the load than readings per second (on two idle cores, readings/s is at most twice it).

    .venv/bin/python bench/bronze.py [--readings 2000000] [--files 40] [--mode both|ours,naive,text,textpub]
        [--rounds 1] [--dirty-rate 0.01] [--landing DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from bench.pipeline import PeakMemory  # noqa: E402
from lakehouse.config import Settings  # noqa: E402
from lakehouse.contract import format_event_time  # noqa: E402

LANDING = Path("landing") / "readings"
# Bad or unusual lines the --dirty-rate mixes in, in turn: three quarantined, one rescued.
DIRTY = (
    '{{"device_id":"env-00001","device_type":"environ',
    '{{"device_id":"env-{d:05d}","device_type":"environmental","site_id":"site-01","event_time":"{t}"}}',
    '{{"device_id":"env-{d:05d}","device_type":"environmental","site_id":"site-01","event_time":"soon","seq":{i}}}',
    '{{"device_id":"env-{d:05d}","device_type":"environmental","site_id":"site-01","event_time":"{t}",'
    '"seq":{i},"temperature_c":20.5,"rssi_dbm":-67}}',
)


def write_landing(lake: Path, readings: int, files: int, dirty_rate: float = 0.0) -> None:
    start = datetime(2026, 11, 23, tzinfo=UTC)
    per_file = readings // files
    dirty_every = round(1 / dirty_rate) if dirty_rate else 0
    for f in range(files):
        folder = lake / LANDING / "2026" / "11" / "23" / f"{f % 24:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for k in range(per_file):
            i = f * per_file + k
            t = format_event_time(start + timedelta(milliseconds=i * 37))
            if dirty_every and i % dirty_every == dirty_every - 1:
                lines.append(DIRTY[(i // dirty_every) % len(DIRTY)].format(d=i % 500 + 1, t=t, i=i))
                continue
            lines.append(
                f'{{"device_id":"env-{i % 500 + 1:05d}","device_type":"environmental","site_id":"site-01",'
                f'"event_time":"{t}","seq":{i},"temperature_c":{20 + i % 7 / 10}}}'
            )
        (folder / f"part-{f:05d}.json").write_text("\n".join(lines) + "\n")


def jvm_cpu_seconds() -> float:
    """User + system CPU time of this process's children (the Spark JVM) so far."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        times = child.cpu_times()
        total += times.user + times.system
    return total


def _spark_type(field):
    from spark.schemas import parse_type

    return "timestamp" if field.type == "timestamp" else parse_type(field)


def no_parse(lines):
    """Stands in for ``parse_lines`` in mode ``textpub``: its columns, constant, with no parsing."""
    from pyspark.sql import functions as F

    from lakehouse.contract import FIELDS

    constant = {"device_id": F.lit("env-00001"), "event_time": F.lit("2026-11-23 10:00:00").cast("timestamp")}
    return lines.select(
        "raw_line",
        "_source_file",
        *[constant.get(f.name, F.lit(None).cast(_spark_type(f))).alias(f.name) for f in FIELDS],
        F.lit(None).cast("string").alias("_rescued_data"),
        F.lit(None).cast("string").alias("_reason"),
    )


def run_ours(lake: Path, parse=None) -> dict:
    import spark.bronze_job as bronze_job
    from spark.bronze_job import run_bronze
    from spark.session import build_session

    if parse is not None:
        bronze_job.parse_lines = parse  # readings_flow looks it up when the job starts
    settings = Settings(lake=str(lake))
    spark = build_session(settings)
    sampler = PeakMemory()
    sampler.start()
    began, cpu_began = time.monotonic(), jvm_cpu_seconds()
    report = run_bronze(settings, spark=spark)
    seconds, cpu = time.monotonic() - began, jvm_cpu_seconds() - cpu_began
    sampler.stop()
    return {
        "lines": report.lines,
        "bronze_rows": report.bronze_rows,
        "quarantine_rows": report.quarantine_rows,
        "seconds": seconds,
        "jvm_cpu_seconds": cpu,
        "jvm_peak_mib": sampler.children_peak / 2**20,
    }


def time_parquet_sink(lake: Path, name: str, stream) -> dict:
    """Times ``stream(spark, settings)``, a streaming DataFrame, written straight into a Parquet sink
    (``<lake>/<name>/readings``, trigger availableNow): the baseline and the ceiling share this."""
    from spark.session import build_session

    settings = Settings(lake=str(lake))
    spark = build_session(settings)
    sampler = PeakMemory()
    sampler.start()
    began, cpu_began = time.monotonic(), jvm_cpu_seconds()
    query = (
        stream(spark, settings)
        .writeStream.format("parquet")
        .option("path", str(lake / name / "readings"))
        .option("checkpointLocation", str(lake / name / "_checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    seconds, cpu = time.monotonic() - began, jvm_cpu_seconds() - cpu_began
    sampler.stop()
    rows = spark.read.parquet(str(lake / name / "readings")).count()  # after the clock stops
    return {
        "lines": rows,
        "bronze_rows": rows,
        "quarantine_rows": 0,
        "seconds": seconds,
        "jvm_cpu_seconds": cpu,
        "jvm_peak_mib": sampler.children_peak / 2**20,
    }


def run_naive(lake: Path) -> dict:
    """The issue's baseline: the JSON source with the contract's schema straight into a Parquet sink."""
    from spark.bronze_job import LANDING_GLOB
    from spark.schemas import LANDING_PARSE_SCHEMA

    return time_parquet_sink(
        lake,
        "naive",
        lambda spark, _settings: spark.readStream.schema(LANDING_PARSE_SCHEMA).json(str(lake / LANDING / LANDING_GLOB)),
    )


def run_text(lake: Path) -> dict:
    """The ceiling of Spark without a parser: the text source, a trivial projection, a Parquet sink."""
    from pyspark.sql import functions as F

    from spark.bronze_job import read_landing

    return time_parquet_sink(
        lake,
        "text",
        lambda spark, settings: read_landing(spark, settings.lake_root, settings).select(
            "raw_line", "_source_file", F.lit(1).cast("int").alias("_schema_version")
        ),
    )


RUNS = {"ours": run_ours, "naive": run_naive, "text": run_text, "textpub": lambda lake: run_ours(lake, parse=no_parse)}


def run_mode(mode: str, landing_lake: Path) -> dict:
    """One timed run in a fresh process (and JVM) on a fresh lake that shares the landing files."""
    lake = Path(tempfile.mkdtemp(prefix=f"bench-bronze-{mode}-"))
    try:
        (lake / "landing").symlink_to(landing_lake / "landing", target_is_directory=True)
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--lake", str(lake)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"bench mode {mode} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(lake, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--mode", default="both", help="both (naive, ours) or a comma list of " + ", ".join(RUNS))
    parser.add_argument("--rounds", type=int, default=1, help="repeat the measurement (modes alternate)")
    parser.add_argument("--dirty-rate", type=float, default=0.0, help="share of bad or unusual lines")
    parser.add_argument("--landing", help="a lake folder whose landing files to reuse (kept afterwards)")
    parser.add_argument("--child", choices=tuple(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = RUNS[args.child](Path(args.lake))
        print(json.dumps(result))
        return 0

    modes = ["naive", "ours"] if args.mode == "both" else args.mode.split(",")
    unknown = sorted(set(modes) - set(RUNS))
    if unknown:
        parser.error(f"unknown --mode {', '.join(unknown)}: use both, or a comma list of {', '.join(RUNS)}")
    landing_lake = Path(args.landing) if args.landing else Path(tempfile.mkdtemp(prefix="bench-bronze-landing-"))
    try:
        if not (landing_lake / LANDING).exists():
            write_landing(landing_lake, args.readings, args.files, args.dirty_rate)
        print("local[2]; seconds from the first query start to the last batch published, JVM start excluded")
        for _ in range(args.rounds):
            for mode in modes:
                result = run_mode(mode, landing_lake)
                load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                print(
                    f"{mode:>7}: {result['lines']:,} lines -> bronze {result['bronze_rows']:,}, "
                    f"quarantine {result['quarantine_rows']:,} in {result['seconds']:.1f} s = "
                    f"{result['lines'] / result['seconds']:,.0f} readings/s; "
                    f"JVM CPU {result['jvm_cpu_seconds']:.1f} s = {result['lines'] / result['jvm_cpu_seconds']:,.0f} "
                    "readings per CPU-second; "
                    f"Spark JVM peak {result['jvm_peak_mib']:,.0f} MiB; load average {load}",
                    flush=True,
                )
    finally:
        if not args.landing:
            shutil.rmtree(landing_lake, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
