"""Benchmark landing -> bronze: readings per second on local[2] and peak memory.

Writes N simulated readings (6 contract fields each, like the issue's naive baseline) as landing files
(or reuses the landing files of ``--landing DIR``, e.g. ``lakehouse produce`` output: thousands of small
files), then times one availableNow run of

- ``ours``: the bronze job (``spark.bronze_job.run_bronze``: reason codes, ``_rescued_data``, quarantine,
  batch-addressed publish, manifests), or
- ``naive``: the issue's baseline ``readStream.schema(...).json(...).writeStream.parquet(...)`` on the
  same files (no quarantine, no rescued fields, no exactly-once publish for non-Spark readers), with
  Spark's own file-source settings, as a user gets them, or
- a ceiling, what Spark does here with no JSON parser at all: ``text``, the text source with a trivial
  projection straight into a Parquet sink; ``textpub``, the bronze job's own reading, publishing and
  manifests with the parse replaced by constant columns. No parser inside Spark can beat ``text``.
- ``ours-default``, ``text-default``, ``naive-tuned``: the same without (or, for naive, with) the bronze
  session's listing and packing settings (``spark.session.scan_conf``), to show what they change on
  many small files (issue 17).

Each mode runs in its own Python process and JVM; the clock starts after the Spark session is up, so JVM
start-up is excluded, while query start (planning, listing, checkpoint) is included for both. Peak
memory is the resident memory of the Spark JVM, sampled every 0.2 s. The machine is shared: compare
modes from the same invocation (``--mode both`` alternates them) and read the load average printed with
each result. The JVM's CPU time over the same span is printed too: readings per CPU-second moves much
less with the load than readings per second (on two idle cores, readings/s is at most twice it).

``--gb G`` instead lands about G GiB from the simulator (1,000 devices; files cut as Firehose cuts them,
1 MiB or 60 s of the fleet) and runs a whole cycle over it stage by stage in one process and one Spark
session (bronze, gate, dbt silver, gate, dbt gold, gate), printing per stage its seconds, rows/s, JVM CPU
and the peak resident memory of the JVM and of the Python process (dbt and GX run in it), and the files
written; then ``--empty-cycles`` cycles with no new landing files: the fixed cost of a scheduled cycle.

    .venv/bin/python bench/bronze.py [--readings 2000000] [--files 40] [--mode both|ours,naive,text,textpub]
        [--rounds 1] [--dirty-rate 0.01] [--landing DIR]
    .venv/bin/python bench/bronze.py --landing /tmp/lake --mode text-default,text,naive,ours
    .venv/bin/python bench/bronze.py --gb 5 [--landing DIR] [--empty-cycles 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
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


def run_ours(lake: Path, parse=None, spark_defaults: bool = False) -> dict:
    import spark.bronze_job as bronze_job
    from spark.bronze_job import run_bronze

    if parse is not None:
        bronze_job.parse_lines = parse  # readings_flow looks it up when the job starts
    settings = Settings(lake=str(lake))
    spark = session(lake, spark_defaults)
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


def session(lake: Path, spark_defaults: bool = False):
    """The bronze job's session; ``spark_defaults``: without its listing and packing settings
    (``spark.session.scan_conf``), as a user of Spark's file source gets it out of the box."""
    import spark.session as spark_session

    if spark_defaults:
        spark_session.scan_conf = lambda cores: {}
    return spark_session.build_session(Settings(lake=str(lake)))


def time_parquet_sink(lake: Path, name: str, stream, spark_defaults: bool = False) -> dict:
    """Times ``stream(spark, settings)``, a streaming DataFrame, written straight into a Parquet sink
    (``<lake>/<name>/readings``, trigger availableNow): the baseline and the ceiling share this."""
    settings = Settings(lake=str(lake))
    spark = session(lake, spark_defaults)
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


def run_naive(lake: Path, spark_defaults: bool = True) -> dict:
    """The issue's baseline: the JSON source with the contract's schema straight into a Parquet sink, with
    Spark's own listing and packing settings (``naive-tuned``: with the bronze job's)."""
    from spark.bronze_job import LANDING_GLOB
    from spark.schemas import LANDING_PARSE_SCHEMA

    return time_parquet_sink(
        lake,
        "naive",
        lambda spark, _settings: spark.readStream.schema(LANDING_PARSE_SCHEMA).json(str(lake / LANDING / LANDING_GLOB)),
        spark_defaults,
    )


def run_text(lake: Path, spark_defaults: bool = False) -> dict:
    """The ceiling of Spark without a parser: the text source, a trivial projection, a Parquet sink
    (``text-default``: with Spark's own listing and packing settings)."""
    from pyspark.sql import functions as F

    from spark.bronze_job import read_landing

    return time_parquet_sink(
        lake,
        "text",
        lambda spark, settings: read_landing(spark, settings.lake_root, settings).select(
            "raw_line", "_source_file", F.lit(1).cast("int").alias("_schema_version")
        ),
        spark_defaults,
    )


RUNS = {
    "ours": run_ours,
    "naive": run_naive,
    "text": run_text,
    "textpub": lambda lake: run_ours(lake, parse=no_parse),
    # The same with and without the listing and packing settings (spark.session.scan_conf): what they buy.
    "ours-default": lambda lake: run_ours(lake, spark_defaults=True),
    "naive-tuned": lambda lake: run_naive(lake, spark_defaults=False),
    "text-default": lambda lake: run_text(lake, spark_defaults=True),
}


def run_gb(args) -> int:
    landing_lake = Path(args.landing) if args.landing else Path(tempfile.mkdtemp(prefix="bench-bronze-gb-"))
    lake = Path(tempfile.mkdtemp(prefix="bench-bronze-cycle-"))
    try:
        if not (landing_lake / LANDING).exists():
            produce_landing(landing_lake, args.gb, args.devices)
        (lake / "landing").symlink_to(landing_lake / "landing", target_is_directory=True)
        print("local[2]; one process, one Spark session; a stage's seconds as the cycle records them", flush=True)
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "cycle",
                "--lake",
                str(lake),
                "--empty-cycles",
                str(args.empty_cycles),
            ],
            stdout=subprocess.PIPE,  # the result; progress (each stage as it ends) goes to stderr as it comes
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError("bench --gb failed: see the error above")
        print_cycle_stages(json.loads(done.stdout.strip().splitlines()[-1]), args.gb)
    finally:
        shutil.rmtree(lake, ignore_errors=True)
        if not args.landing:
            shutil.rmtree(landing_lake, ignore_errors=True)
    return 0


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


BYTES_PER_READING = 208  # of the simulator's landing lines, 1 % dirty (207.9 MB for 1,000,000 readings)


def produce_landing(lake: Path, gb: float, devices: int) -> None:
    """About ``gb`` GiB of landing JSON from the simulator, cut as Firehose cuts files by default (1 MiB or
    60 s of the fleet, whichever comes first): with 1,000 devices, files of 1 MiB."""
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig

    readings = max(1000, round(gb * 2**30 / BYTES_PER_READING))
    print(f"producing {readings:,} readings of {devices:,} devices into {lake / LANDING} ...", flush=True)
    config = FleetConfig(devices=devices, readings=readings, start=datetime(2026, 11, 1, tzinfo=UTC), seed=7)
    report = produce(Settings(lake=str(lake)), config)
    print(
        f"produced {report.lines:,} lines in {report.files:,} files ({report.bytes / 2**30:.2f} GiB, "
        f"{report.bytes / report.files / 2**10:,.0f} KiB a file) in {report.seconds:.0f} s",
        flush=True,
    )


class StagePeaks(threading.Thread):
    """Peak resident memory of this process (Python: dbt, GX) and of its children (the Spark JVM), per
    stage: ``take()`` returns the peaks since the last call."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.python = self.jvm = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._stop_event.wait(0.2):
            jvm = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a child may exit while we look
                    jvm += child.memory_info().rss
            self.jvm = max(self.jvm, jvm)
            self.python = max(self.python, me.memory_info().rss)

    def take(self) -> tuple[float, float]:
        peaks = self.python / 2**20, self.jvm / 2**20
        self.python = self.jvm = 0
        return peaks

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run_cycle_stages(lake: Path, empty_cycles: int) -> dict:
    """A whole cycle over the landing (bronze, its gate, dbt silver, gate, dbt gold, gate), stage by stage
    in one process and one Spark session, then ``empty_cycles`` cycles with no new landing files: what
    a scheduled cycle costs when there is nothing to do (JVM start excluded, it is paid once)."""
    from lakehouse import ops
    from orchestration.cycle import STEPS, CycleReport, CycleSteps

    settings = Settings(lake=str(lake))
    peaks = StagePeaks()
    peaks.start()
    began = time.monotonic()
    spark = session(lake)
    startup = {"step": "spark_start", "seconds": time.monotonic() - began, "python_mib": 0, "jvm_mib": 0}
    startup["python_mib"], startup["jvm_mib"] = peaks.take()
    cycles = []
    for n in range(1 + empty_cycles):
        report = CycleReport(run_id=ops.new_run_id(), started_at=datetime.now(UTC))
        steps = CycleSteps(settings, report, echo=lambda _line: None, spark=spark)
        stages = [startup] if n == 0 else []
        for name in STEPS:
            cpu = jvm_cpu_seconds()
            steps.run_steps([name])
            result = report.steps[-1]
            python_mib, jvm_mib = peaks.take()
            stages.append(
                {
                    "step": name,
                    "status": result.status,
                    "seconds": result.seconds,
                    "rows_in": result.rows_in,
                    "rows_out": result.rows_out,
                    "rows_rejected": result.rows_rejected,
                    "jvm_cpu_seconds": jvm_cpu_seconds() - cpu,
                    "python_mib": python_mib,
                    "jvm_mib": jvm_mib,
                    "detail": result.detail.splitlines()[0] if result.detail else "",
                }
            )
            print(f"cycle {n + 1}: {stage_line(stages[-1])}", file=sys.stderr, flush=True)
        cycles.append(stages)
    peaks.stop()
    lake_root = settings.lake_root
    files = {
        "landing": sum(1 for _ in Path(lake_root.landing_readings).glob("*/*/*/*/*.json")),
        "bronze": sum(1 for _ in Path(lake_root.bronze_readings).glob("*/*.parquet")),
        "quarantine": sum(1 for _ in Path(lake_root.quarantine_readings).glob("*/*.parquet")),
    }
    return {"cycles": cycles, "files": files}


def print_cycle_stages(result: dict, gb: float) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    files = result["files"]
    print(
        f"\n{gb:g} GiB of landing: {files['landing']:,} landing files -> {files['bronze']:,} bronze and "
        f"{files['quarantine']:,} quarantine Parquet files; load average {load}"
    )
    for n, stages in enumerate(result["cycles"]):
        title = "cycle 1 (the landing)" if n == 0 else f"cycle {n + 1} (no new landing files)"
        total = sum(s["seconds"] for s in stages if s["step"] != "spark_start")
        print(f"{title}: {total:.1f} s")
        print(
            f"  {'stage':<12}{'status':>8}{'rows in':>13}{'rows out':>13}{'seconds':>9}{'rows/s':>11}"
            f"{'JVM CPU s':>11}{'JVM peak':>10}{'Py peak':>9}"
        )
        for s in stages:
            print("  " + stage_line(s))


def stage_line(s: dict) -> str:
    def count(value) -> str:
        return f"{value:,}" if value is not None else ""

    rows_in = s.get("rows_in")
    rate = f"{rows_in / s['seconds']:,.0f}" if rows_in and s["seconds"] else ""
    return (
        f"{s['step']:<12}{s.get('status', 'ok'):>8}{count(rows_in):>13}{count(s.get('rows_out')):>13}"
        f"{s['seconds']:>9.1f}{rate:>11}{s.get('jvm_cpu_seconds', 0):>11.1f}"
        f"{s['jvm_mib']:>8,.0f}Mi{s['python_mib']:>7,.0f}Mi"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--mode", default="both", help="both (naive, ours) or a comma list of " + ", ".join(RUNS))
    parser.add_argument("--rounds", type=int, default=1, help="repeat the measurement (modes alternate)")
    parser.add_argument("--dirty-rate", type=float, default=0.0, help="share of bad or unusual lines")
    parser.add_argument("--landing", help="a lake folder whose landing files to reuse (kept afterwards)")
    parser.add_argument(
        "--gb",
        type=float,
        help="instead of the modes: land about this many GiB from the simulator (Firehose-sized files) and run a "
        "whole cycle over it stage by stage, printing time, rows/s, JVM CPU and peak memory per stage",
    )
    parser.add_argument("--devices", type=int, default=1000, help="with --gb: simulated devices (default 1,000)")
    parser.add_argument(
        "--empty-cycles",
        type=int,
        default=1,
        help="with --gb: cycles after the first with no new landing files, in the same process and Spark "
        "session (the fixed cost of a scheduled cycle; default 1)",
    )
    parser.add_argument("--child", choices=(*RUNS, "cycle"), help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "cycle":
        print(json.dumps(run_cycle_stages(Path(args.lake), args.empty_cycles)))
        return 0
    if args.child:
        result = RUNS[args.child](Path(args.lake))
        print(json.dumps(result))
        return 0
    if args.gb is not None:
        return run_gb(args)

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
                    f"{mode:>12}: {result['lines']:,} lines -> bronze {result['bronze_rows']:,}, "
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
