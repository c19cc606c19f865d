"""Score gold_anomalies against the faults the simulator injected: precision and recall per fault kind.

Runs the real path on a fresh lake: the fleet simulator with injected faults (``ingestion.produce``; its
labels file under ``<lake>/landing/_labels/``), the Spark bronze job, then every dbt model. Each fault
kind is scored against the detector meant for it:

    spike        -> zscore_outlier     stuck (flatline) -> flatline
    out_of_range -> out_of_range       dropout (gap)    -> data_gap

A label is *found* when a detection of its kind covers it: same device, same metric (none for a gap),
windows overlapping (within one reporting interval). A detection is *correct* when it covers a label of
its fault kind. Recall = found labels / labels; precision = correct detections / detections. Also
printed, without targets: how many threshold_breach and rate_of_change windows cover any injected fault.

The simulated run ends now (as ``lakehouse produce`` does), so that bronze's ingest time is the arrival
time and clock-skewed readings are rejected as future events, as in production.

    .venv/bin/python bench/anomalies.py [--devices 50] [--hours 8] [--fault-scale 4] [--seed 11]
    .venv/bin/python bench/anomalies.py --lake /tmp/bench-anomalies --reuse   # rebuild gold only

Real series: ``--nab DIR`` replays every NAB-format series under DIR (CSV ``timestamp,value`` and NAB's
``combined_windows.json``) as one device each through the same path, and prints the NAB standard, low-FP
and low-FN scores, windows found and false windows per series (bench/nab_run.py, bench/nab_score.py):

    .venv/bin/python bench/anomalies.py --nab ../shared/datasets/nab
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion.labels import DEFAULT_FAULT_RATES  # noqa: E402
from lakehouse.config import Settings  # noqa: E402

# fault kind (simulator labels) -> anomaly kind (gold_anomalies) meant to find it
DETECTOR = {"spike": "zscore_outlier", "stuck": "flatline", "out_of_range": "out_of_range", "dropout": "data_gap"}
TARGETS = {"recall": 0.9, "precision": 0.8}


@dataclass(frozen=True)
class Window:
    device_id: str
    metric: str | None
    start: datetime
    end: datetime


def overlaps(a: Window, b: Window, slack: timedelta) -> bool:
    return a.device_id == b.device_id and a.metric == b.metric and a.start <= b.end + slack and b.start <= a.end + slack


def score(labels: list[Window], detections: list[Window], slack: timedelta) -> tuple[int, int]:
    """(labels found, detections correct)."""
    by_device: dict[str, list[Window]] = defaultdict(list)
    for d in detections:
        by_device[d.device_id].append(d)
    found = sum(1 for label in labels if any(overlaps(label, d, slack) for d in by_device[label.device_id]))
    labels_by_device: dict[str, list[Window]] = defaultdict(list)
    for label in labels:
        labels_by_device[label.device_id].append(label)
    correct = sum(1 for d in detections if any(overlaps(d, label, slack) for label in labels_by_device[d.device_id]))
    return found, correct


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--hours", type=float, default=8.0, help="simulated hours (default 8)")
    parser.add_argument("--fault-scale", type=float, default=4.0, help="multiply the default fault rates")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--lake", help="lake folder (default: a temporary folder, removed afterwards)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the lake's landing data, labels and bronze; rebuild dbt from scratch"
    )
    parser.add_argument("--nab", metavar="DIR", help="score NAB series under DIR instead of the simulator's faults")
    parser.add_argument(
        "--vars", default="{}", help="with --nab: dbt vars (JSON) for the detector, e.g. to try settings"
    )
    args = parser.parse_args(argv)
    if args.nab:
        import json

        from bench.nab_run import run_nab

        return run_nab(Path(args.nab), args.lake, args.reuse, json.loads(args.vars))

    import duckdb

    from ingestion.labels import LABELS_FOLDER, read_labels
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig
    from orchestration.transform import transform
    from spark.bronze_job import run_bronze

    lake_dir = Path(args.lake) if args.lake else Path(tempfile.mkdtemp(prefix="bench-anomalies-"))
    settings = Settings.load(lake=str(lake_dir))
    timings: dict[str, float] = {}
    try:
        labels_folder = settings.lake_root.local_path(*LABELS_FOLDER)
        if not (args.reuse and any(labels_folder.glob("faults-*.ndjson"))):
            began = time.perf_counter()
            config = FleetConfig(
                devices=args.devices,
                duration=timedelta(hours=args.hours),
                seed=args.seed,
                fault_rates={kind: rate * args.fault_scale for kind, rate in DEFAULT_FAULT_RATES.items()},
            )
            produce(settings, config, now=datetime.now(UTC))
            timings["produce"] = time.perf_counter() - began
            began = time.perf_counter()
            run_bronze(settings)
            timings["bronze (Spark)"] = time.perf_counter() - began
        (labels_file,) = sorted(labels_folder.glob("faults-*.ndjson"))[-1:]

        began = time.perf_counter()
        result = transform(settings, full_refresh=True)
        timings["dbt build"] = time.perf_counter() - began
        if not result.success:
            print("dbt build failed:\n  " + "\n  ".join(result.failures), file=sys.stderr)
            return 1

        labels = read_labels(str(labels_file))
        with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
            detections = con.execute(
                "select anomaly_kind, device_id, metric, started_at, ended_at from gold.gold_anomalies"
            ).fetchall()
            intervals = dict(
                con.execute(
                    "select device_type, reporting_interval_s from catalogue.catalogue_device_types where is_current"
                ).fetchall()
            )
            readings = con.execute("select count(*) from silver.silver_readings").fetchall()[0][0]
        slack = timedelta(seconds=max(intervals.values()))

        by_kind: dict[str, list[Window]] = defaultdict(list)
        for kind, device_id, metric, started_at, ended_at in detections:
            by_kind[kind].append(Window(device_id, metric, started_at, ended_at))
        faults: dict[str, list[Window]] = defaultdict(list)
        for label in labels:
            faults[label["kind"]].append(
                Window(label["device_id"], label["metric"], parse_time(label["start"]), parse_time(label["end"]))
            )

        print(
            f"\n{readings:,} accepted readings ({labels_file.name}); {len(labels)} injected faults; "
            f"{len(detections)} anomaly windows\n"
        )
        print(
            f"{'fault kind':<14}{'detector':<16}{'labels':>7}{'found':>7}{'recall':>8}"
            f"{'windows':>9}{'correct':>9}{'precision':>11}  target"
        )
        misses = []
        for fault, detector in DETECTOR.items():
            found, correct = score(faults[fault], by_kind[detector], slack)
            n_labels, n_windows = len(faults[fault]), len(by_kind[detector])
            recall = found / n_labels if n_labels else float("nan")
            precision = correct / n_windows if n_windows else float("nan")
            ok = recall >= TARGETS["recall"] and precision >= TARGETS["precision"]
            if not ok:
                misses.append(fault)
            print(
                f"{fault:<14}{detector:<16}{n_labels:>7}{found:>7}{recall:>8.3f}{n_windows:>9}{correct:>9}"
                f"{precision:>11.3f}  {'met' if ok else 'MISSED'}"
            )
        every_fault = [w for windows in faults.values() for w in windows]
        for detector in ("threshold_breach", "rate_of_change"):
            windows = by_kind[detector]
            _, correct = score(every_fault, windows, slack)
            share = correct / len(windows) if windows else float("nan")
            print(f"{'(any fault)':<14}{detector:<16}{'':>7}{'':>7}{'':>8}{len(windows):>9}{correct:>9}{share:>11.3f}")
        print("\nseconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
        print(
            f"targets (recall >= {TARGETS['recall']}, precision >= {TARGETS['precision']}): "
            + ("all met" if not misses else "missed for " + ", ".join(misses))
        )
        return 0 if not misses else 1
    finally:
        if not args.lake:
            shutil.rmtree(lake_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
