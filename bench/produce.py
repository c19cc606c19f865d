"""Throughput of the fleet simulator into the landing sink, in readings per second.

    .venv/bin/python bench/produce.py                      # the three cases below, 3 runs each
    .venv/bin/python bench/produce.py --devices 50 --readings 2000000 --repeat 5

The process is pinned to one CPU (``--cpus`` to change), so the figure is what one core does; the
landing sink's writer threads share that core while they wait on the disk. Cases, by default:

- ``demo fleet``: 50 devices, as ``lakehouse demo`` runs; 60-second files of about 70 kB, so a run is
  as much publishing (a temporary file, fsync, rename per file) as simulating;
- ``large fleet``: 1,000 devices; files are cut at 1 MiB, like Firehose's default buffer;
- ``simulator only``: the large fleet into a sink that discards lines: the generator's own speed.

Each run writes into a fresh folder under ``bench/out/`` (git-ignored), removed afterwards. The
figure is readings / seconds of ``produce`` (simulation and publishing, labels not included), with the
default 1 % dirty records and faults. Beside the wall-clock rate, readings per CPU second (the process's
CPU time, all threads) say what one core does when other work shares the machine; the load average at
the end says how busy it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ingestion.produce import produce
from ingestion.simulator import FleetConfig
from ingestion.sinks import SinkStats
from lakehouse.config import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent

OUT = REPO_ROOT / "bench" / "out"
START = datetime(2025, 1, 1, tzinfo=UTC)


class DiscardSink:
    """Takes lines and drops them: what the simulator alone costs."""

    def __init__(self) -> None:
        self.stats = SinkStats(sink="discard", destination="nowhere")

    def send(self, lines, arrival_ms: np.ndarray, keys, sizes: np.ndarray) -> None:
        self.stats.records += len(lines)
        self.stats.bytes += int(sizes.sum())

    def close(self) -> SinkStats:
        return self.stats

    def abort(self) -> None:
        pass


def run_once(devices: int, readings: int, seed: int, sink: str) -> tuple[float, float, int, int]:
    """(readings per wall-clock second, readings per CPU second, files, bytes) of one run in a fresh lake."""
    lake = OUT / f"lake-{os.getpid()}-{seed}"
    shutil.rmtree(lake, ignore_errors=True)
    try:
        settings = Settings.load(env={}, cwd=OUT, lake=str(lake))
        config = FleetConfig(devices=devices, readings=readings, start=START, seed=seed, dirty_rate=0.01)
        cpu = time.process_time()
        report = produce(settings, config, DiscardSink() if sink == "discard" else "landing")
        cpu = time.process_time() - cpu
        return report.readings / report.seconds, report.readings / cpu, report.files, report.bytes
    finally:
        shutil.rmtree(lake, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, help="one case with this many devices (default: the three cases)")
    parser.add_argument("--readings", type=int, default=1_000_000, help="readings per run (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported (default 3)")
    parser.add_argument("--sink", choices=("landing", "discard"), default="landing", help="with --devices")
    parser.add_argument("--cpus", default="1", help="how many CPUs to pin the process to (default 1)")
    args = parser.parse_args()

    allowed = sorted(os.sched_getaffinity(0))
    pinned = set(allowed[: int(args.cpus)])
    os.sched_setaffinity(0, pinned)
    OUT.mkdir(parents=True, exist_ok=True)
    cases = (
        [(f"{args.devices} devices", args.devices, args.sink)]
        if args.devices
        else [("demo fleet", 50, "landing"), ("large fleet", 1000, "landing"), ("simulator only", 1000, "discard")]
    )
    print(f"readings per run: {args.readings:,}; runs per case: {args.repeat}; pinned to CPU(s) {sorted(pinned)}")
    print(f"{'':<41}{'readings per wall-clock s':>26}{'per CPU s':>12}")
    print(f"{'case':<16}{'devices':>8}{'sink':>9}{'files':>8}{'median':>13}{'best':>13}{'median':>12}")
    for name, devices, sink in cases:
        walls, cpus = [], []
        for seed in range(args.repeat):
            wall, cpu, files, _ = run_once(devices, args.readings, seed, sink)
            walls.append(wall)
            cpus.append(cpu)
        print(
            f"{name:<16}{devices:>8}{sink:>9}{files:>8,}"
            f"{statistics.median(walls):>13,.0f}{max(walls):>13,.0f}{statistics.median(cpus):>12,.0f}"
        )
    print(f"load average while measuring: {', '.join(f'{x:.1f}' for x in os.getloadavg())} ({time.strftime('%H:%M')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
