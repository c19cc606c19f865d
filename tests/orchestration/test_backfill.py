"""Specification of `lakehouse backfill`: a date range of silver and gold rebuilt from bronze, nothing else.

The lake: two simulated devices (with faults, so that gold has anomalies), three hours on each of six days, written as
bronze Parquet with pyarrow (what the Spark job writes), built with the real dbt on DuckDB and gated by
the real Great Expectations gates.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse import ops
from lakehouse.cli import main
from lakehouse.config import Settings
from lakehouse.contract import BRONZE_PARTITION_COLUMN, FIELDS, SCHEMA_VERSION
from orchestration.backfill import DateRange, run_backfill
from orchestration.schedule import cycle_lock
from orchestration.transform import transform

DAYS = [f"2026-03-0{n}" for n in range(1, 7)]
RANGE = DateRange.parse("2026-03-02", "2026-03-03")
INSIDE, OUTSIDE = DAYS[1:3], [DAYS[0], *DAYS[3:]]
# Fact tables and the column that dates their rows.
TABLES = {
    "silver.silver_classified_readings": "event_date",
    "gold.gold_sensor_metrics_hourly": "event_date",
    "gold.gold_sensor_metrics_daily": "event_date",
    "gold.gold_anomalies": "event_date",
    "gold.gold_device_activity_daily": "event_date",
}

_ARROW = {"string": pa.string(), "long": pa.int64(), "double": pa.float64(), "timestamp": pa.timestamp("us")}
BRONZE_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW[f.type]) for f in FIELDS]
    + [
        pa.field("_rescued_data", pa.string()),
        pa.field("_ingested_at", pa.timestamp("us")),
        pa.field("_source_file", pa.string()),
        pa.field("_batch_id", pa.int64()),
        pa.field("_schema_version", pa.int32()),
    ]
)


def write_bronze(settings: Settings, lines: list[str], batch_id: int, delay: timedelta) -> int:
    """Simulated lines as one bronze batch (one file per event date), ingested ``delay`` after the event."""
    by_date: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        record = json.loads(line)
        event_time = datetime.fromisoformat(record["event_time"].replace("Z", "+00:00")).replace(tzinfo=None)
        row = {name: record.get(name) for name in BRONZE_SCHEMA.names}
        row.update(
            event_time=event_time,
            _ingested_at=event_time + delay,
            _source_file=f"landing/readings/batch-{batch_id}.json",
            _batch_id=batch_id,
            _schema_version=SCHEMA_VERSION,
        )
        by_date.setdefault(event_time.date().isoformat(), []).append(row)
    for event_date, rows in by_date.items():
        folder = Path(settings.lake_root.bronze_readings) / f"{BRONZE_PARTITION_COLUMN}={event_date}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA), folder / f"part-b{batch_id:010d}.parquet")
    return len(lines)


def simulated_lines(start: datetime, duration: timedelta, seed: int) -> list[str]:
    from ingestion.simulator import FleetConfig, Simulation

    config = FleetConfig(devices=2, duration=duration, start=start, dirty_rate=0.0, seed=seed)
    return [line for batch in Simulation(config) for line in batch.lines]


def dated_rows(settings: Settings, dates: list[str]) -> dict[str, list[tuple]]:
    """Every row of each fact table on ``dates``, in a stable order."""
    in_dates = ", ".join(f"date '{d}'" for d in dates)
    result = {}
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        for table, column in TABLES.items():
            columns = [c[0] for c in con.execute(f"describe {table}").fetchall()]
            rows = con.execute(f"select {', '.join(columns)} from {table} where {column} in ({in_dates})").fetchall()
            result[table] = sorted(rows, key=lambda row: repr([v for v in row if not isinstance(v, float)]))
    return result


def execute(settings: Settings, sql: str) -> None:
    with duckdb.connect(str(settings.lake_root.warehouse)) as con:
        con.execute(sql)


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    """Six days built; then the lake damaged inside and outside the range and late bronze rows landed on a
    date inside the range (older than the lookback) and on one outside it; then the range backfilled."""
    settings = Settings(lake=str(tmp_path_factory.mktemp("backfill") / "lake"))
    lines = [
        line
        for day in range(1, 7)  # three hours a day (the nights are data gaps)
        for line in simulated_lines(datetime(2026, 3, day, 9, tzinfo=UTC), timedelta(hours=3), seed=day)
    ]
    write_bronze(settings, lines, batch_id=0, delay=timedelta(minutes=1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_EXCLUDE_RESOURCE_TYPES", "test unit_test")  # dbt's data tests run in the backfill
        built = transform(settings)
    assert built.success, built.failures

    for day in ("2026-03-02", "2026-03-05"):  # one inside the range, one outside
        on_day = f"event_date = date '{day}'"
        execute(
            settings,
            f"delete from silver.silver_classified_readings where {on_day} "
            "and device_id = 'env-00001' and hour(event_at) = 3",
        )
        execute(settings, f"update gold.gold_sensor_metrics_hourly set avg_value = -1 where {on_day}")
        execute(settings, f"update gold.gold_sensor_metrics_daily set reading_count = 0 where {on_day}")
        execute(settings, f"delete from gold.gold_anomalies where {on_day}")
    execute(
        settings,
        "insert into gold.gold_anomalies select * replace ('made-up' as anomaly_id, "
        "date '2026-03-03' as event_date) from gold.gold_anomalies limit 1",
    )
    # Late readings, sent by a second producer: for 2026-03-02 (beyond the 3-day lookback from 2026-03-06,
    # so a normal incremental run never looks at them) and for 2026-03-05 (outside the range).
    late = [
        *simulated_lines(datetime(2026, 3, 2, 12, tzinfo=UTC), timedelta(hours=1), seed=11),
        *simulated_lines(datetime(2026, 3, 5, 12, tzinfo=UTC), timedelta(hours=1), seed=12),
    ]
    late = [line.replace('"seq":', '"seq":9000') for line in late]  # keys of their own
    write_bronze(settings, late, batch_id=1, delay=timedelta(days=5))

    outside_before = dated_rows(settings, OUTSIDE)
    echoed: list[str] = []
    with cycle_lock(settings, wait=False):
        report = run_backfill(settings, RANGE, echo=echoed.append)
    return settings, report, outside_before, echoed


def test_backfill_leaves_every_other_date_exactly_as_it_was(backfilled):
    settings, report, outside_before, _ = backfilled
    assert report.success, report.failure
    # The damage outside the range is still there, row for row: nothing outside was rebuilt.
    assert dated_rows(settings, OUTSIDE) == outside_before
    assert outside_before["gold.gold_anomalies"] and outside_before["gold.gold_sensor_metrics_hourly"]


def test_backfill_rebuilds_the_range_as_a_full_refresh_would_including_data_older_than_the_lookback(
    backfilled, rows_equal
):
    settings, report, _, _ = backfilled
    after_backfill = dated_rows(settings, INSIDE)
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        late = con.execute("select count(*) from silver.silver_readings where seq > 90000").fetchall()[0][0]
    assert late > 0  # the late readings of 2026-03-02 are in silver now (those of 2026-03-05 are not built)

    copy = Settings(lake=str(Path(settings.lake).parent / "full-refresh"))
    shutil.copytree(Path(settings.lake) / "bronze", Path(copy.lake) / "bronze")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_EXCLUDE_RESOURCE_TYPES", "test unit_test")
        full = transform(copy, full_refresh=True)
    assert full.success, full.failures
    expected = dated_rows(copy, INSIDE)
    for table in TABLES:
        assert rows_equal(after_backfill[table], expected[table]), table
    assert "made-up" not in {row[0] for row in after_backfill["gold.gold_anomalies"]}


def test_backfill_gates_the_rebuilt_dates_and_records_its_range_in_ops_runs(backfilled):
    settings, report, _, echoed = backfilled
    assert [(s.step, s.status) for s in report.steps] == [
        ("silver", "ok"),
        ("gate_silver", "ok"),
        ("gold", "ok"),
        ("gate_gold", "ok"),
    ]
    recorded = [r for r in ops.read(settings.lake_root, "ops_runs") if r["run_id"] == report.run_id]
    assert {(r["mode"], r["backfill_from"], r["backfill_to"]) for r in recorded} == {
        ("backfill", "2026-03-02", "2026-03-03")
    }
    gated = [r for r in ops.read(settings.lake_root, "ops_gate_results") if r.get("run_id") == report.run_id]
    assert {r["partition"] for r in gated if r.get("partition")} <= set(INSIDE)
    assert any("backfill 2026-03-02..2026-03-03" in line for line in echoed)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--from", "2026-03-05", "--to", "2026-03-01"], "--from 2026-03-05 is after --to 2026-03-01"),
        (["--from", "2026-3-1", "--to", "2026-03-02"], "--from '2026-3-1' is not a date; write YYYY-MM-DD"),
        (["--from", "2026-02-30", "--to", "2026-03-02"], "--from '2026-02-30' is not a date"),
        (["--from", "2026-03-01", "--to", "2026-03-02", "--layers", "bronze"], "give one or both of silver, gold"),
    ],
)
def test_bad_arguments_exit_2_with_a_message_that_says_what_to_write(tmp_path, capsys, arguments, message):
    assert main(["--lake", str(tmp_path / "lake"), "backfill", *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lake" / "ops").exists()


def test_help_explains_the_range_and_shows_examples(capsys):
    with pytest.raises(SystemExit):
        main(["backfill", "--help"])
    text = capsys.readouterr().out
    assert "inclusive" in text and "lakehouse backfill --from 2026-03-01 --to 2026-03-07" in text
