"""Incremental silver and gold, built for real on DuckDB: new, late, re-published and too-late data."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

DAY_A = datetime(2026, 3, 1)
DAY_B = datetime(2026, 3, 2)
# Late enough that nothing in these lakes counts as a future event, early enough to be deterministic.
VARS = {"reference_time": "2026-03-10 00:00:00"}
GAP_START, GAP_END = DAY_A + timedelta(hours=22), DAY_A + timedelta(hours=22, minutes=30)
# wrb-00003 is silent across midnight; late readings fill only the first five minutes of it, so the gap
# that remains ends on day B, the day of the device's next reading.
NIGHT_GAP_START, NIGHT_GAP_END = DAY_A + timedelta(hours=23, minutes=30), DAY_B + timedelta(minutes=50)
FACT_TABLES = (
    "silver.silver_classified_readings",
    "gold.gold_sensor_metrics_hourly",
    "gold.gold_sensor_metrics_daily",
    "gold.gold_anomalies",
    "gold.gold_device_activity_daily",
)
INTERVALS = {1: 30, 2: 10, 3: 5, 4: 5}  # registry device index -> reporting interval (s) of its type


def first_batch(bronze, lake) -> None:
    """Four devices, one per type, from day A 20:00 to day B 01:00; env-00001 silent 22:00-22:30 and
    wrb-00003 from 23:30 to day B 00:50."""
    noise = random.Random(7)
    rows = []
    for index, every_s in INTERVALS.items():
        count = int(5 * 3600 / every_s)
        rows += bronze.series(index, DAY_A + timedelta(hours=20), count, every_s, noise=noise)
    rows = [r for r in rows if not (r["device_id"] == "env-00001" and GAP_START <= r["event_time"] < GAP_END)]
    rows = [
        r for r in rows if not (r["device_id"] == "wrb-00003" and NIGHT_GAP_START <= r["event_time"] < NIGHT_GAP_END)
    ]
    bronze.write(lake, rows, batch_id=0, ingested_at=DAY_B + timedelta(hours=2))


def second_batch(bronze, lake) -> None:
    """The next hour of every device, env-00001's late readings of the silence, wrb-00003's of the first
    five minutes of its silence, and machine readings of day A 21:00-21:05 published a second time."""
    noise = random.Random(8)
    rows = []
    for index, every_s in INTERVALS.items():
        first_seq = int(5 * 3600 / every_s) + 1
        rows += bronze.series(index, DAY_B + timedelta(hours=1), int(3600 / every_s), every_s, first_seq, noise=noise)
    late = bronze.series(1, GAP_START, 60, 30, first_seq=241, noise=noise)  # seqs of the silence
    late += bronze.series(3, NIGHT_GAP_START, 60, 5, first_seq=int(3.5 * 3600 / 5) + 1, noise=noise)
    republished = bronze.series(2, DAY_A + timedelta(hours=21), 30, 10, first_seq=361, noise=random.Random(9))
    bronze.write(lake, rows + late + republished, batch_id=1, ingested_at=DAY_B + timedelta(hours=4))


def test_an_incremental_build_equals_a_full_refresh(tmp_path, bronze, lake_builder, rows_equal):
    first_batch(bronze, tmp_path)
    assert lake_builder(vars=VARS).result.success
    second_batch(bronze, tmp_path)
    incremental = lake_builder(vars=VARS)
    assert incremental.result.success, incremental.result.failures
    after_incremental = {table: incremental.rows(table) for table in FACT_TABLES}

    full = lake_builder(vars=VARS, full_refresh=True)
    assert full.result.success, full.result.failures
    for table in FACT_TABLES:
        assert rows_equal(full.rows(table), after_incremental[table]), table
    assert len(after_incremental["gold.gold_anomalies"]) > 0


@pytest.fixture(scope="module")
def late_data_lake(module_lake):
    """The first batch built, every hourly row marked (avg_value -1: a row the next build does not
    rebuild keeps the mark), the second batch built incrementally; with the data gaps seen in between."""
    gaps_sql = "select device_id, ended_at from gold.gold_anomalies where anomaly_kind = 'data_gap'"
    first_batch(module_lake.bronze, module_lake.path)
    first = module_lake.build(vars=VARS)
    assert first.result.success, first.result.failures
    gaps_before = first.query(gaps_sql)
    first.execute("update gold.gold_sensor_metrics_hourly set avg_value = -1")
    second_batch(module_lake.bronze, module_lake.path)
    second = module_lake.build(vars=VARS)
    assert second.result.success, second.result.failures
    return SimpleNamespace(built=second, gaps_before=gaps_before, gaps_after=second.query(gaps_sql))


def test_late_data_re_aggregates_exactly_the_affected_hours(late_data_lake):
    rebuilt = set(
        late_data_lake.built.query(
            "select distinct device_id, hour_at from gold.gold_sensor_metrics_hourly where avg_value <> -1"
        )
    )
    next_hour = DAY_B + timedelta(hours=1)
    assert rebuilt == {
        ("env-00001", DAY_A + timedelta(hours=22)),  # the late readings of the silence
        ("mch-00002", DAY_A + timedelta(hours=21)),  # the re-published readings
        ("wrb-00003", DAY_A + timedelta(hours=23)),  # the late readings of the night silence
        ("env-00001", next_hour),
        ("mch-00002", next_hour),
        ("wrb-00003", next_hour),
        ("stp-00004", next_hour),
    }


def test_late_data_that_fills_a_silence_removes_its_data_gap(late_data_lake):
    assert sorted(late_data_lake.gaps_before) == [("env-00001", GAP_END), ("wrb-00003", NIGHT_GAP_END)]
    assert late_data_lake.gaps_after == [("wrb-00003", NIGHT_GAP_END)]


def test_late_data_that_shortens_a_silence_moves_the_start_of_its_data_gap(late_data_lake):
    started = late_data_lake.built.query(
        "select started_at from gold.gold_anomalies where anomaly_kind = 'data_gap' and device_id = 'wrb-00003'"
    )
    assert started == [(NIGHT_GAP_START + timedelta(minutes=5) - timedelta(seconds=5),)]


def test_data_later_than_the_lookback_waits_for_a_wider_lookback_or_a_full_refresh(tmp_path, bronze, lake_builder):
    first_batch(bronze, tmp_path)
    assert lake_builder(vars=VARS).result.success
    too_late = bronze.series(2, DAY_A - timedelta(days=10), 3, 10, first_seq=1)  # 10 days before the data
    bronze.write(tmp_path, too_late, batch_id=1, ingested_at=DAY_B + timedelta(hours=4))
    sql = "select count(*) from silver.silver_readings where event_date = date '2026-02-19'"

    default_lookback = lake_builder(vars=VARS)
    assert default_lookback.result.success, default_lookback.result.failures
    assert default_lookback.query(sql) == [(0,)]
    wider_lookback = lake_builder(vars={**VARS, "lookback_days": 14})
    assert wider_lookback.result.success, wider_lookback.result.failures
    assert wider_lookback.query(sql) == [(3,)]


def test_late_data_before_midnight_rebuilds_the_gap_that_ends_the_next_day(tmp_path, bronze, lake_builder, rows_equal):
    """Only late readings arrive, all on day A: the silence they shorten ends on day B, whose data_gap
    window (owned by the day of the reading that ends it) must move its start too."""
    noise = random.Random(11)
    rows = bronze.series(3, DAY_A + timedelta(hours=23), 720 + 120, 5, noise=noise)  # 23:00 to 00:10 of day B
    silent = [r for r in rows if NIGHT_GAP_START <= r["event_time"] < DAY_B + timedelta(minutes=5)]
    bronze.write(tmp_path, [r for r in rows if r not in silent], batch_id=0, ingested_at=DAY_B + timedelta(hours=2))
    # A later batch of another device: the next build looks at the newest batch again, and this one must not
    # be wrb-00003's (or day B would be rebuilt whatever the rule).
    other = bronze.series(1, DAY_A + timedelta(hours=10), 10, 30, noise=noise)
    bronze.write(tmp_path, other, batch_id=1, ingested_at=DAY_B + timedelta(hours=3))
    assert lake_builder(vars=VARS).result.success
    bronze.write(tmp_path, silent[:60], batch_id=2, ingested_at=DAY_B + timedelta(hours=4))  # 23:30 to 23:35

    incremental = lake_builder(vars=VARS)
    assert incremental.result.success, incremental.result.failures
    gaps_sql = "select started_at, ended_at from gold.gold_anomalies where anomaly_kind = 'data_gap'"
    assert incremental.query(gaps_sql) == [
        (NIGHT_GAP_START + timedelta(minutes=5) - timedelta(seconds=5), DAY_B + timedelta(minutes=5))
    ]
    after_incremental = incremental.rows("gold.gold_anomalies")
    full = lake_builder(vars=VARS, full_refresh=True)
    assert rows_equal(full.rows("gold.gold_anomalies"), after_incremental)


def faulty_stream(bronze) -> list[dict]:
    """Six hours of day A (08:00 to 14:00) of the four devices with a fault of every kind: each row also
    says which batch delivers it (`batch`, see test below); those that come late are marked so."""
    noise = random.Random(12)
    start = DAY_A + timedelta(hours=8)
    rows = []
    for index, every_s in INTERVALS.items():
        rows += bronze.series(index, start, int(6 * 3600 / every_s), every_s, noise=noise)

    def at(device_id: str, hh: int, mm: int, ss: int = 0) -> datetime:
        return DAY_A + timedelta(hours=hh, minutes=mm, seconds=ss)

    def between(row: dict, device_id: str, first: datetime, last: datetime) -> bool:
        return row["device_id"] == device_id and first <= row["event_time"] < last

    kept = []
    for row in rows:
        t = row["event_time"]
        if between(row, "env-00001", at("env", 9, 40), at("env", 9, 50)):
            continue  # a silence of ten minutes
        if between(row, "stp-00004", at("stp", 13, 30), at("stp", 13, 35)):
            continue  # a silence of five minutes
        if between(row, "mch-00002", at("mch", 9, 0), at("mch", 9, 0, 30)):
            row["temperature_c"] = 95.0  # a spike past the alert limit and far from its neighbours
        if between(row, "mch-00002", at("mch", 10, 0), at("mch", 10, 20)):
            row["vibration_mm_s"] = round(6.0 + noise.random(), 3)  # a long threshold breach
        if between(row, "mch-00002", at("mch", 11, 0), at("mch", 11, 15)):
            row["vibration_mm_s"] = 2.7 if t == at("mch", 11, 8) else 2.5  # two flatlines, one reading apart
        if between(row, "mch-00002", at("mch", 12, 0), at("mch", 12, 0, 10)):
            row["pressure_hpa"] = 3600.0  # a jump up and back
        if between(row, "wrb-00003", at("wrb", 10, 5), at("wrb", 10, 30)):
            row["accel_z_g"] = 1.0  # a stuck axis
        if between(row, "wrb-00003", at("wrb", 11, 30), at("wrb", 11, 30, 10)):
            row["accel_x_g"] = 20.0  # impossible: rejected as out_of_range
        if between(row, "env-00001", at("env", 12, 30), at("env", 12, 31)):
            row["humidity_pct"] = 99.0
        if between(row, "stp-00004", at("stp", 13, 0), at("stp", 13, 0, 5)):
            row["distance_mm"] = 3900.0
        # The batch that delivers the reading: in event-time order, cut mid-fault, and some readings late.
        cuts = [at("", 10, 10), at("", 11, 1), at("", 12, 0, 5), at("", 13, 10)]
        row["batch"] = sum(t >= cut for cut in cuts)
        if between(row, "env-00001", at("env", 9, 30), at("env", 9, 40)):
            row["batch"] = 2  # shortens the silence seen until then
        if row["device_id"] == "wrb-00003" and t == at("wrb", 10, 20):
            row["batch"] = 3  # inside the stuck run, with its value
        if row["device_id"] == "mch-00002" and t == at("mch", 11, 8):
            row["batch"] = 3  # splits the flatline seen until then in two
        if between(row, "wrb-00003", at("wrb", 11, 30), at("wrb", 11, 30, 10)):
            row["batch"] = 3
        if between(row, "mch-00002", at("mch", 9, 0), at("mch", 9, 0, 30)):
            row["batch"] = 4  # four hours late
        kept.append(row)
    return kept


def test_a_faulty_stream_built_batch_by_batch_gives_the_anomalies_of_a_full_refresh(
    tmp_path, bronze, lake_builder, rows_equal
):
    """Faults of every kind, cut by batch boundaries and completed, split or moved by late readings: after
    every incremental build the tables are those a full refresh builds from the same bronze (in a second
    lake that gets the same batches)."""
    rows = faulty_stream(bronze)
    republished = [dict(r) for r in rows if r["device_id"] == "env-00001" and r["batch"] == 3][:20]
    refreshed_lake = tmp_path / "refreshed"
    for batch in range(5):
        delivered = [r for r in rows if r["batch"] == batch] + (republished if batch == 4 else [])
        for lake in (tmp_path, refreshed_lake):
            bronze.write(lake, delivered, batch_id=batch, ingested_at=DAY_A + timedelta(hours=10 + batch))
        incremental = lake_builder(vars=VARS)
        assert incremental.result.success, incremental.result.failures
        full = lake_builder(refreshed_lake, vars=VARS, full_refresh=True)
        assert full.result.success, full.result.failures
        for table in FACT_TABLES:
            assert rows_equal(full.rows(table), incremental.rows(table)), f"{table} after batch {batch}"

    kinds = {kind for (kind,) in full.query("select distinct anomaly_kind from gold.gold_anomalies")}
    assert kinds == {"threshold_breach", "zscore_outlier", "flatline", "rate_of_change", "data_gap", "out_of_range"}
    flatlines = full.query(
        "select count(*) from gold.gold_anomalies where anomaly_kind = 'flatline' and metric = 'vibration_mm_s'"
    )
    assert flatlines == [(2,)]
