"""The learned detectors of gold_anomalies on real and realistic series, built for real with dbt on DuckDB.

The machines replay a real NAB series (``ec2_cpu_utilization_5f5533``, every 5 minutes; its first four days,
before its labelled windows, rescaled to a machine temperature and moved twelve years on, after the
registry's install dates) with a level shift, a variance change and a
slow drift added to it, next to the same series untouched. The environmental sensors report every five
minutes, or on change at irregular intervals, and then fall silent; and two sensors show the same step,
one as a new device still in its warm-up, the other after two hours of history.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta

import pytest

from lakehouse.registry import device
from tests.support.datasets import NAB_DIR

NAB_SERIES = NAB_DIR / "realAWSCloudwatch"
SERIES_END = datetime(2014, 2, 18, 12, 0)  # NAB's time
MOVED = datetime(2026, 2, 14) - datetime(2014, 2, 14)
CHANGE_AT = datetime(2026, 2, 17, 6, 0)  # two and a half days into the series: past every warm-up
VARIANCE_END = datetime(2026, 2, 17, 12, 0)
DRIFT_END = datetime(2026, 2, 18, 6, 0)
MACHINES = {"untouched": 2, "level_shift": 6, "variance_change": 10, "drift": 14}
ENV_DAY = datetime(2026, 3, 1)
SILENCE = (ENV_DAY + timedelta(hours=30), ENV_DAY + timedelta(hours=32))  # two hours without a reading
VARS = {"reference_time": "2026-03-10 00:00:00"}
LEARNED = ("zscore_outlier", "level_shift", "variance_change", "flatline")


def nab_values() -> list[tuple[datetime, float]]:
    path = NAB_SERIES / "ec2_cpu_utilization_5f5533.csv"
    if not path.exists():
        pytest.fail(f"{path} is missing: the shared NAB series (see shared/datasets/nab/README.md)")
    with path.open() as handle:
        rows = [(datetime.fromisoformat(r["timestamp"]), float(r["value"])) for r in csv.DictReader(handle)]
    # A CPU percentage of 35-68 as a machine temperature of 20-23.4 C (median 20.9, steps of 0.26 typically).
    return [(t + MOVED, round(20.0 + 0.1 * (v - 34.0), 3)) for t, v in rows if t < SERIES_END]


def changed(kind: str, values: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    out, previous = [], values[0][1]
    for t, original in values:
        v = original
        if kind == "level_shift" and t >= CHANGE_AT:
            v += 5.0
        elif kind == "variance_change" and CHANGE_AT <= t < VARIANCE_END:
            v += 9.0 * (original - previous)  # each step ten times as large, around the same level
        elif kind == "drift" and t >= CHANGE_AT:
            v += 5.0 * min(1.0, (t - CHANGE_AT) / (DRIFT_END - CHANGE_AT))  # 5 C over a day
        out.append((t, round(v, 3)))
        previous = original
    return out


def machine_rows(bronze, index: int, values: list[tuple[datetime, float]]) -> list[dict]:
    return [
        bronze.reading(index, t, seq, temperature_c=v, vibration_mm_s=None, pressure_hpa=None)
        for seq, (t, v) in enumerate(values, start=1)
    ]


def env_rows(bronze, index: int, times: list[datetime], rng: random.Random) -> list[dict]:
    rows = []
    for seq, t in enumerate(times, start=1):
        rows.append(
            bronze.reading(
                index,
                t,
                seq,
                temperature_c=round(21.0 + 2.0 * ((t.hour - 12) / 12.0) + rng.gauss(0, 0.1), 2),
                humidity_pct=round(45.0 + rng.gauss(0, 0.5), 1),
                pressure_hpa=round(1013.0 + rng.gauss(0, 0.2), 1),
            )
        )
    return rows


@pytest.fixture(scope="module")
def learned_lake(module_lake):
    bronze, rng = module_lake.bronze, random.Random(16)
    values = nab_values()
    rows = []
    for kind, index in MACHINES.items():
        rows += machine_rows(bronze, index, values if kind == "untouched" else changed(kind, values))
    # env-00005 every five minutes, env-00009 on change (20 s to 10 min apart), over two days, both silent
    # for two hours on the second.
    every_5_min = [ENV_DAY + timedelta(minutes=5 * i) for i in range(2 * 288)]
    on_change, t = [], ENV_DAY
    while t < ENV_DAY + timedelta(days=2):
        on_change.append(t)
        t += timedelta(seconds=rng.uniform(20, 600))
    for index, times in ((5, every_5_min), (9, on_change)):
        rows += env_rows(bronze, index, [t for t in times if not SILENCE[0] <= t < SILENCE[1]], rng)
    # The same step (21 C, then 24.5 C: within the type's max_jump and alert limits) on a new device after
    # 20 readings, and on an older one after 26 hours of readings (a day: the long-term warm-up).
    start = ENV_DAY + timedelta(hours=12)
    for index, history in ((13, 0), (17, 26 * 120)):
        step = [
            bronze.reading(
                index,
                start + timedelta(seconds=30 * i),
                i + 1,
                temperature_c=round((24.5 if i >= history + 20 else 21.0) + rng.gauss(0, 0.05), 2),
                humidity_pct=round(45.0 + rng.gauss(0, 0.5), 1),
                pressure_hpa=round(1013.0 + rng.gauss(0, 0.2), 1),
            )
            for i in range(history + 40)
        ]
        rows += step
    bronze.write(module_lake.path, rows, batch_id=0, ingested_at=datetime(2026, 3, 5))
    built = module_lake.build(vars=VARS)
    assert built.result.success, built.result.failures
    return built


def windows(lake, device_id: str, kinds=LEARNED + ("data_gap",), metric: str | None = None) -> list[tuple]:
    listed = ", ".join(f"'{kind}'" for kind in kinds)
    of_metric = f" and metric = '{metric}'" if metric else ""
    return lake.query(
        "select anomaly_kind, started_at, ended_at, reading_count from gold.gold_anomalies "
        f"where device_id = '{device_id}' and anomaly_kind in ({listed}){of_metric} order by started_at"
    )


def test_the_real_series_untouched_raises_no_learned_anomaly_in_the_days_it_is_changed_in_the_others(learned_lake):
    untouched = device(MACHINES["untouched"]).device_id
    (readings,) = learned_lake.query(
        f"select count(*) from silver.silver_readings where device_id = '{untouched}' and event_at >= '{CHANGE_AT}'"
    )
    assert readings[0] > 300
    assert [w for w in windows(learned_lake, untouched) if w[2] >= CHANGE_AT] == []


def test_a_device_reporting_every_five_minutes_has_no_gap_while_it_keeps_its_cadence_and_one_when_silent(
    learned_lake,
):
    gaps = windows(learned_lake, "env-00005", ("data_gap",))
    assert [(g[1], g[2]) for g in gaps] == [(SILENCE[0] - timedelta(minutes=5), SILENCE[1])]


def test_a_device_reporting_on_change_has_no_gap_while_it_keeps_its_cadence_and_one_when_silent(learned_lake):
    gaps = windows(learned_lake, "env-00009", ("data_gap",))
    assert len(gaps) == 1
    assert gaps[0][1] < SILENCE[0] and gaps[0][2] >= SILENCE[1]


def test_a_level_shift_of_a_real_series_is_one_window_not_one_per_reading(learned_lake):
    found = [w for w in windows(learned_lake, device(MACHINES["level_shift"]).device_id) if w[2] >= CHANGE_AT]
    assert [w[0] for w in found] == ["level_shift"]
    assert found[0][3] > 1  # one window over the readings of the episode
    assert CHANGE_AT <= found[0][1] < CHANGE_AT + timedelta(hours=1)


def test_a_slow_drift_of_a_real_series_is_one_window_not_one_per_reading(learned_lake):
    """The drift leaves the range of its history again and again: one episode, each excursion short."""
    found = [w for w in windows(learned_lake, device(MACHINES["drift"]).device_id) if w[2] >= CHANGE_AT]
    assert len(found) == 1
    assert found[0][0] in ("zscore_outlier", "level_shift")
    assert CHANGE_AT <= found[0][1] < DRIFT_END


def test_a_variance_change_of_a_real_series_is_one_window_of_its_kind(learned_lake):
    found = [w for w in windows(learned_lake, device(MACHINES["variance_change"]).device_id) if w[2] >= CHANGE_AT]
    variance = [w for w in found if w[0] == "variance_change"]
    assert len(variance) == 1
    assert CHANGE_AT <= variance[0][1] < VARIANCE_END
    # The wider swings also leave the series' range: at most one episode of that too, not one per reading.
    assert len(found) <= 2


def test_a_new_device_alerts_on_nothing_during_its_warm_up(learned_lake):
    assert learned_lake.query("select count(*) from gold.gold_anomalies where device_id = 'env-00013'") == [(0,)]
    # The same step after a day of history is found.
    found = windows(learned_lake, "env-00017", LEARNED, metric="temperature_c")
    assert [w[0] for w in found] == ["level_shift"]
