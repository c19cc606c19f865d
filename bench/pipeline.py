"""Benchmark the whole pipeline: produce N readings, run one cycle, print each stage's records per second
and peak memory (this Python process, and the Spark JVM it starts, sampled every 0.2 s).

    .venv/bin/python bench/pipeline.py --readings 1000000 [--devices 200] [--lake /tmp/bench-lake]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lakehouse.config import Settings  # noqa: E402
from orchestration.demo import DemoOptions, format_stage_table, run_demo  # noqa: E402


class PeakMemory(threading.Thread):
    """Samples the resident memory of this process's children (the Spark JVM) until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.children_peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._stop_event.wait(0.2):
            total = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a child may exit while we look
                    total += child.memory_info().rss
            self.children_peak = max(self.children_peak, total)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--dirty-rate", type=float, default=0.01)
    parser.add_argument("--lake", help="lake folder (default: a new temporary folder, removed afterwards)")
    args = parser.parse_args()

    lake = args.lake or tempfile.mkdtemp(prefix="bench-lake-")
    settings = Settings.load(lake=lake)
    sampler = PeakMemory()
    sampler.start()
    began = time.monotonic()
    try:
        report = run_demo(
            settings,
            DemoOptions(readings=args.readings, devices=args.devices, dirty_rate=args.dirty_rate, seed=1),
            echo=lambda line: print(line, flush=True),
        )
    finally:
        sampler.stop()
        if not args.lake:
            shutil.rmtree(lake, ignore_errors=True)
    print()
    print(format_stage_table(report))
    python_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nreadings: {args.readings:,}   wall time: {time.monotonic() - began:.1f} s")
    print(f"peak memory: python {python_peak_mib:,.0f} MiB, spark jvm {sampler.children_peak / 2**20:,.0f} MiB")
    return 0 if report.cycle.success else 1


if __name__ == "__main__":
    sys.exit(main())
