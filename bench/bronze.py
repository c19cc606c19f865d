"""Benchmark landing -> bronze: readings per second on local[2] and peak memory.

Writes N simulated readings (6 contract fields each, like the issue's naive baseline) as landing files,
runs the bronze job once (trigger availableNow) and prints lines per second, excluding JVM start-up, plus
the peak resident memory of the Spark JVM.

    .venv/bin/python bench/bronze.py --readings 2000000 [--files 40]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import PeakMemory  # noqa: E402
from lakehouse.config import Settings  # noqa: E402
from lakehouse.contract import format_event_time  # noqa: E402


def write_landing(lake: Path, readings: int, files: int) -> None:
    start = datetime(2026, 11, 23, tzinfo=UTC)
    per_file = readings // files
    for f in range(files):
        folder = lake / "landing" / "readings" / "2026" / "11" / "23" / f"{f % 24:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for k in range(per_file):
            i = f * per_file + k
            t = format_event_time(start + timedelta(milliseconds=i * 37))
            lines.append(
                f'{{"device_id":"env-{i % 500 + 1:05d}","device_type":"environmental","site_id":"site-01",'
                f'"event_time":"{t}","seq":{i},"temperature_c":{20 + i % 7 / 10}}}'
            )
        (folder / f"part-{f:05d}.json").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=40)
    args = parser.parse_args()

    from spark.bronze_job import run_bronze
    from spark.session import build_session

    lake = Path(tempfile.mkdtemp(prefix="bench-bronze-"))
    try:
        write_landing(lake, args.readings, args.files)
        settings = Settings(lake=str(lake))
        sampler = PeakMemory()
        sampler.start()
        spark = build_session(settings)
        began = time.monotonic()
        report = run_bronze(settings, spark=spark)
        seconds = time.monotonic() - began
        sampler.stop()
        print(f"lines: {report.lines:,} -> bronze {report.bronze_rows:,}, quarantine {report.quarantine_rows:,}")
        print(f"bronze (local[2], excluding JVM start): {seconds:.1f} s, {report.lines / seconds:,.0f} readings/s")
        print(f"peak memory of the Spark JVM: {sampler.children_peak / 2**20:,.0f} MiB")
    finally:
        shutil.rmtree(lake, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
