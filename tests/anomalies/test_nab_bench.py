"""The NAB mode of bench/anomalies.py: which series it finds, how it registers them, what it counts as a
detection (bench/nab_run.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest

from bench.nab_run import NAB_DEVICE_TYPE, NAB_METRIC, NAB_SITE, detections, find_series, register_nab_devices
from lakehouse.catalogue_store import read_versions, state_of
from lakehouse.config import Settings
from tests.support.datasets import NAB_DIR


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


def test_the_nab_series_are_registered_in_the_lakes_catalogue_as_a_user_would(tmp_path):
    settings = Settings(lake=str(tmp_path / "lake"))
    series = find_series(NAB_DIR)[:2]

    register_nab_devices(settings, series, tmp_path)

    state = state_of(read_versions(settings))
    devices = {key: entry.values for key, entry in state.entries.items() if entry.kind == "device"}
    assert {(v["device_id"], v["device_type"], v["site_id"]) for v in devices.values()} >= {
        (s.device_id, NAB_DEVICE_TYPE, NAB_SITE) for s in series
    }
    (metric,) = [e.values for e in state.entries.values() if e.kind == "metric" and e.values["metric"] == NAB_METRIC]
    assert metric["alert_min"] is None and metric["alert_max"] is None and metric["max_jump"] is None


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
