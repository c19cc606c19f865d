"""The NAB mode of bench/anomalies.py: which series it finds, how it registers them, what it counts as a
detection (bench/nab_run.py)."""

from __future__ import annotations

import csv
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from bench.nab_run import NAB_SITE, detections, find_series, register_nab_devices
from lakehouse.config import DBT_PROJECT_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
NAB_DIR = (
    next(
        (p for p in (REPO_ROOT.parent / "shared", REPO_ROOT.parents[1] / "shared") if p.exists()),
        REPO_ROOT.parent / "shared",
    )
    / "datasets"
    / "nab"
)


def test_every_labelled_series_of_the_shared_folder_becomes_one_machine_with_its_windows():
    if not (NAB_DIR / "combined_windows.json").exists():
        pytest.fail(f"{NAB_DIR} is missing: the shared NAB series (see shared/datasets/nab/README.md)")
    series = find_series(NAB_DIR)

    assert len(series) == 19
    assert len({s.device_id for s in series}) == 19
    assert all(s.device_id.startswith("mch-1") for s in series)
    ambient = next(s for s in series if s.path.name == "ambient_temperature_system_failure.csv")
    assert ambient.key == "realKnownCause/ambient_temperature_system_failure.csv"
    assert ambient.windows[0] == (datetime(2013, 12, 15, 7, 0), datetime(2013, 12, 30, 9, 0))
    assert sum(len(s.windows) for s in series) == 33


def test_the_catalogue_bridge_registers_the_machines_and_empties_their_types_temperature_limits(tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR / "seeds", project / "seeds")
    series = find_series(NAB_DIR)[:2]

    register_nab_devices(project, series)

    registry = list(csv.DictReader((project / "seeds" / "device_registry.csv").open()))
    assert [(r["device_id"], r["device_type"], r["site_id"]) for r in registry[-2:]] == [
        (s.device_id, "machine", NAB_SITE) for s in series
    ]
    limits = {
        (r["device_type"], r["metric"]): r for r in csv.DictReader((project / "seeds" / "metric_limits.csv").open())
    }
    machine_temperature = limits[("machine", "temperature_c")]
    assert [machine_temperature[c] for c in ("valid_min", "valid_max", "alert_max", "max_jump")] == ["", "", "", ""]
    assert limits[("environmental", "temperature_c")]["alert_max"] == "45"  # other types keep theirs


def test_an_episode_continued_past_midnight_is_one_detection():
    start = datetime(2014, 2, 14, 23, 0)
    times = [start + timedelta(minutes=5 * i) for i in range(36)]  # 23:00 to 01:55
    con = duckdb.connect()
    con.execute("create schema silver; create schema gold")
    con.execute("create table silver.silver_readings (device_id varchar, event_at timestamp)")
    con.executemany("insert into silver.silver_readings values ('mch-10001', ?)", [[t] for t in times])
    con.execute(
        "create table gold.gold_anomalies (device_id varchar, anomaly_kind varchar, metric varchar, "
        "started_at timestamp, ended_at timestamp)"
    )
    windows = [
        ("level_shift", times[6], times[11]),  # 23:30 to 23:55, continued by the next
        ("level_shift", times[12], times[14]),  # 00:00 to 00:10
        ("zscore_outlier", times[24], times[24]),  # 01:00, on its own
    ]
    con.executemany(
        "insert into gold.gold_anomalies values ('mch-10001', ?, 'temperature_c', ?, ?)", [list(w) for w in windows]
    )

    found_times, found = detections(con, "mch-10001")

    assert found_times == times
    assert found == [("level_shift", times[6]), ("zscore_outlier", times[24])]
