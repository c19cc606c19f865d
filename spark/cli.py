"""``lakehouse bronze``: land the landing zone into bronze Parquet with Spark Structured Streaming."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Read newline-delimited JSON readings from <lake>/landing/readings/, parse them against the reading
contract, and write bronze Parquet to <lake>/bronze/readings/event_date=D/. Lines that fail parsing or
the contract go to <lake>/quarantine/readings/ with the raw line, source file, reason and batch id.
Nothing is dropped: every landing line is in bronze or in quarantine (each batch's manifest in
<lake>/_manifests/bronze_readings/ counts them).

Other sources (customer, accelerometer, step_trainer; see lakehouse/source_contracts.py and `lakehouse
ingest-files`) are landed the same way, each in its own query, from <lake>/landing/<source>/ into
<lake>/bronze/<source>/ and <lake>/quarantine/<source>/, when their landing folder exists.

The job is a Structured Streaming query with a checkpoint in <lake>/_checkpoints/bronze_readings/: each
landing file is read exactly once, and a batch that is re-run after a crash replaces its own files.
"""

EPILOG = """\
examples:
  lakehouse bronze --once                         # land everything new, then stop (what `run` does)
  lakehouse bronze --continuous --interval 10s    # keep landing new files every 10 s; Ctrl-C stops
  lakehouse bronze compact --date 2026-11-23      # rewrite a partition's small files into few large ones
  lakehouse bronze package --out dist/            # zip + entry script for spark-submit on EMR or Glue
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bronze",
        help="land bronze Parquet from the landing zone (Spark Structured Streaming)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "action",
        nargs="?",
        choices=("land", "compact", "package"),
        default="land",
        help="land (default): run the streaming job; compact: rewrite one event date's files; "
        "package: build the spark-submit bundle",
    )
    parser.add_argument("--date", metavar="YYYY-MM-DD", help="with compact: the event date to compact")
    parser.add_argument("--out", default="dist", metavar="DIR", help="with package: output folder (default dist/)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--once", action="store_true", help="trigger availableNow: land what is there, then stop (default)"
    )
    mode.add_argument("--continuous", action="store_true", help="processing-time trigger: run until stopped")
    parser.add_argument(
        "--interval", default="10s", metavar="DURATION", help="trigger interval with --continuous (default 10s)"
    )
    parser.add_argument(
        "--max-files-per-trigger",
        type=int,
        metavar="N",
        help="at most N landing files per micro-batch (default: all new files in one batch)",
    )
    parser.set_defaults(handler=_bronze)


def _bronze(settings, args) -> int:
    if args.action == "package":
        return _package(args)
    if args.action == "compact":
        return _compact(settings, args)
    from lakehouse.durations import parse_duration, spark_interval
    from spark.bronze_job import run_bronze

    settings = settings.with_overrides(max_files_per_trigger=args.max_files_per_trigger)

    def progress(manifest) -> None:
        print(
            f"bronze: batch {manifest.batch_id}: {manifest.lines:,} lines from {len(manifest.source_files)} "
            f"file(s) -> {manifest.bronze_rows:,} bronze, {manifest.quarantine_rows:,} quarantined",
            flush=True,
        )

    def source_progress(source, manifest) -> None:
        print(
            f"bronze {source}: batch {manifest.batch_id}: {manifest.lines:,} lines -> {manifest.bronze_rows:,} "
            f"bronze, {manifest.quarantine_rows:,} quarantined",
            flush=True,
        )

    report = run_bronze(
        settings,
        continuous=args.continuous,
        interval=spark_interval(parse_duration(args.interval, "--interval")),
        on_batch=progress,
        on_source_batch=source_progress,
    )
    if not report.batches:
        print("bronze: no new landing files")
    else:
        rate = report.lines / report.seconds if report.seconds else 0
        print(
            f"bronze: {report.lines:,} lines in {len(report.batches)} batch(es): {report.bronze_rows:,} bronze, "
            f"{report.quarantine_rows:,} quarantined, {report.seconds:.1f} s ({rate:,.0f} lines/s)"
        )
        for reason, count in sorted(report.quarantine_reasons().items()):
            print(f"  quarantined {count:>8,}  {reason}")
    for source, batches in report.sources.items():
        if batches:
            reasons: dict[str, int] = {}
            for batch in batches:
                for reason, count in batch.quarantine_reasons.items():
                    reasons[reason] = reasons.get(reason, 0) + count
            print(
                f"bronze {source}: {sum(b.lines for b in batches):,} lines: {sum(b.bronze_rows for b in batches):,} "
                f"bronze, {sum(b.quarantine_rows for b in batches):,} quarantined"
                + "".join(f"\n  quarantined {n:>8,}  {reason}" for reason, n in sorted(reasons.items()))
            )
    return 0


def _package(args) -> int:
    from pathlib import Path

    from spark.package import build_job_package

    archive, entry = build_job_package(Path(args.out))
    print(f"wrote {archive} and {entry}")
    print(f"submit with: spark-submit --py-files {archive} {entry} --lake s3://bucket/lake")
    return 0


def _compact(settings, args) -> int:
    from datetime import date

    from lakehouse.errors import LakehouseError
    from spark.compact import compact_partition

    if not args.date:
        raise LakehouseError("bronze compact needs --date YYYY-MM-DD (the event date whose files to rewrite)")
    try:
        day = date.fromisoformat(args.date)
    except ValueError as exc:
        raise LakehouseError(f"--date '{args.date}' is not a date; write it as YYYY-MM-DD") from exc
    result = compact_partition(settings, day)
    print(
        f"bronze compact {day}: {result.rows:,} rows, {result.files_before} file(s) -> {result.files_after} "
        f"in {result.seconds:.1f} s"
    )
    return 0
