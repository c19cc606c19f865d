"""`bench/anomalies.py --nab DIR`: replay NAB series as devices, run the real cycle, score gold_anomalies.

Every NAB-format series under DIR (CSV ``timestamp,value``; labels in DIR/combined_windows.json, keyed by
NAB's paths) becomes one machine (``mch-1NNNN``, its value as ``temperature_c``): replayed into the
landing zone (ingestion.replay), landed by the Spark bronze job, then silver and gold built by dbt.
The machines are registered and their type's limits left empty through :func:`register_nab_devices`, so
that only the learned detectors speak, as for a user who replays a new fleet's history.

Each anomaly window is one detection, at its first reading (an episode that continues past midnight is
one detection, not two); the detections are scored with NAB's scorer (bench/nab_score.py).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.nab_score import PROFILES, score_corpus, score_series
from lakehouse.config import Settings

FIRST_INDEX = 10001
NAB_SITE = "site-nab"
NAB_INSTALLED_AT = "2000-01-01 00:00:00"


@dataclass(frozen=True)
class NabSeries:
    key: str  # NAB's path, e.g. realKnownCause/ambient_temperature_system_failure.csv
    path: Path
    device_id: str
    windows: list[tuple[datetime, datetime]]


def find_series(folder: Path) -> list[NabSeries]:
    """Every CSV under ``folder`` with its labelled windows (combined_windows.json, NAB's keys)."""
    labels_file = folder / "combined_windows.json"
    if not labels_file.exists():
        raise SystemExit(f"--nab {folder}: no combined_windows.json there (NAB's labels/combined_windows.json)")
    labels = json.loads(labels_file.read_text())
    by_name = {Path(key).name: key for key in labels}
    found = []
    for n, path in enumerate(sorted(folder.rglob("*.csv"))):
        rel = path.relative_to(folder).as_posix()
        key = rel if rel in labels else by_name.get(path.name)
        if key is None:
            print(f"  {rel}: not in {labels_file.name}, skipped", file=sys.stderr)
            continue
        windows = [(_time(a), _time(b)) for a, b in labels[key]]
        found.append(NabSeries(key, path, f"mch-{FIRST_INDEX + n:05d}", windows))
    if not found:
        raise SystemExit(f"--nab {folder}: no labelled CSV series found")
    return found


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text[:19])


NAB_DEVICE_TYPE = "nab_series"
NAB_METRIC = "nab_value"


def register_nab_devices(settings: Settings, series: list[NabSeries], folder: Path) -> None:
    """Register the replayed series as a user would, with ``lakehouse catalog import``: one device type for
    NAB series (a 5-minute cadence as the prior; each device's own cadence is learned), one metric with no
    alert limits and no maximum jump (so only the statistical detectors speak), one device per series."""
    from lakehouse.catalogue_store import import_files

    header = (
        "kind,device_type,reporting_interval_s,silence_after_s,metric,unit,valid_min,valid_max,"
        "device_id,site_id,installed_at"
    )
    rows = [
        header,
        f"device_type,{NAB_DEVICE_TYPE},300,1800,,,,,,,",
        f"metric,{NAB_DEVICE_TYPE},,,{NAB_METRIC},unit,-1e15,1e15,,,",
        *(f"device,{NAB_DEVICE_TYPE},,,,,,,{s.device_id},{NAB_SITE},{NAB_INSTALLED_AT}" for s in series),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nab_catalogue.csv"
    path.write_text("\n".join(rows) + "\n")
    import_files(settings, [path])


def build(settings: Settings, select: str | None = None, vars=None):
    """dbt build of the sensor models, as a cycle runs it."""
    from orchestration.transform import transform

    return transform(settings, None, full_refresh=select is None, select=select, vars=vars)


def detections(con, device_id: str) -> tuple[list[datetime], list[tuple[str, datetime]]]:
    """The device's reading times and its detections (kind, time): the first reading of each window, an
    episode continued past midnight counted once."""
    times = [
        t
        for (t,) in con.execute(
            "select event_at from silver.silver_readings where device_id = ? order by event_at", [device_id]
        ).fetchall()
    ]
    windows = con.execute(
        "select anomaly_kind, coalesce(metric, ''), started_at, ended_at from gold.gold_anomalies "
        "where device_id = ? order by started_at",
        [device_id],
    ).fetchall()
    previous_reading = {t: p for p, t in zip(times, times[1:], strict=False)}
    ends = defaultdict(set)
    for kind, metric, _, ended_at in windows:
        ends[(kind, metric)].add(ended_at)
    found = []
    for kind, metric, started_at, _ in windows:
        before = previous_reading.get(started_at)
        continued = before is not None and before.date() < started_at.date() and before in ends[(kind, metric)]
        if not continued:
            found.append((kind, started_at))
    return times, found


def run_nab(folder: Path, lake: str | None, reuse: bool, vars: dict | None = None) -> int:
    """Replay, land and build (or, with ``reuse`` on a lake already built, rebuild gold_anomalies only: for
    trying detector settings, ``vars``), then print the scores."""
    import duckdb

    from ingestion.replay import ReplayConfig, replay
    from spark.bronze_job import run_bronze

    series = find_series(folder)
    lake_dir = Path(lake) if lake else Path(tempfile.mkdtemp(prefix="bench-nab-"))
    settings = Settings.load(lake=str(lake_dir))
    timings: dict[str, float] = {}
    try:
        if not (reuse and settings.lake_root.local_path("bronze").exists()):
            began = time.perf_counter()
            register_nab_devices(settings, series, lake_dir)
            for n, s in enumerate(series):
                config = ReplayConfig(
                    device_id=s.device_id, mapping={"value": NAB_METRIC}, site_id=NAB_SITE, producer=f"nab{n}"
                )
                replay(settings, [s.path], config)
            timings["replay"] = time.perf_counter() - began
            began = time.perf_counter()
            run_bronze(settings)
            timings["bronze (Spark)"] = time.perf_counter() - began
        began = time.perf_counter()
        rebuild_gold_only = reuse and settings.lake_root.warehouse.exists()
        result = build(settings, select="gold_anomalies" if rebuild_gold_only else None, vars=vars)
        timings["dbt build"] = time.perf_counter() - began
        if not result.success:
            print("dbt build failed:\n  " + "\n  ".join(result.failures), file=sys.stderr)
            return 1
        scored = []
        with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
            print(f"\n{'series':<48}{'readings':>9}{'windows':>9}{'found':>7}{'false':>7}{'raw std':>9}  kinds")
            for s in series:
                times, found = detections(con, s.device_id)
                result_std = score_series(times, [t for _, t in found], s.windows, PROFILES[0])
                outside = sum(1 for _, t in found if not any(a <= t <= b for a, b in s.windows))
                kinds: dict[str, int] = defaultdict(int)
                for kind, _ in found:
                    kinds[kind] += 1
                print(
                    f"{s.key[-47:]:<48}{len(times):>9,}{len(found):>9}{result_std.windows_found:>4}/{len(s.windows):<2}"
                    f"{outside:>7}{result_std.raw:>9.2f}  {dict(kinds)}"
                )
                scored.append((times, [t for _, t in found], s.windows))
        print()
        for profile in PROFILES:
            corpus = score_corpus(scored, profile)
            print(f"NAB {profile.name:<20} {corpus.score:6.1f}   (raw {corpus.raw:.2f}, null {corpus.null:.2f})")
        print("\nseconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
        return 0
    finally:
        if not lake:
            shutil.rmtree(lake_dir, ignore_errors=True)
