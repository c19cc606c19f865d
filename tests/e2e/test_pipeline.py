"""End to end on a small generated fleet: producer -> landing -> Spark bronze -> GX -> dbt silver/gold.

One cycle runs once for the module; each test reads what it built. The last test lands a broken batch
and shows the bronze gate stopping the cycle with nothing lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from lakehouse import ops
from lakehouse.config import Settings
from lakehouse.contract import DEVICE_TYPES, load_metric_limits

pytestmark = pytest.mark.e2e

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cycle(spark, tmp_path_factory):
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig
    from orchestration.cycle import run_cycle

    settings = Settings(lake=str(tmp_path_factory.mktemp("e2e") / "lake"))
    produced = produce(settings, FleetConfig(devices=12, readings=4000, dirty_rate=0.02, seed=11, start=START))
    report = run_cycle(settings, spark=spark, echo=lambda _line: None)
    return settings, produced, report


def sql(settings: Settings, query: str) -> list[tuple]:
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        return con.execute(query).fetchall()


def parquet_count(uri: str) -> int:
    return duckdb.connect().execute(f"select count(*) from read_parquet('{uri}/*/*.parquet')").fetchall()[0][0]


def test_the_cycle_succeeds_and_records_every_step(cycle):
    settings, _, report = cycle
    assert report.success, report.failure
    assert [s.step for s in report.steps] == ["bronze", "gate_bronze", "silver", "gate_silver", "gold", "gate_gold"]
    recorded = [r for r in ops.read(settings.lake_root, "ops_runs") if r["run_id"] == report.run_id]
    assert {r["step"]: r["status"] for r in recorded} == {s.step: "ok" for s in report.steps}


def test_every_landing_line_is_in_bronze_or_quarantine_counted_exactly(cycle):
    settings, produced, report = cycle
    lake = settings.lake_root
    landing_lines = sum(len(p.read_bytes().splitlines()) for p in Path(lake.landing_readings).rglob("*.json"))
    bronze, quarantine = parquet_count(lake.bronze_readings), parquet_count(lake.quarantine_readings)
    assert landing_lines == produced.lines
    assert bronze + quarantine == landing_lines
    assert (report.step("bronze").rows_out, report.step("bronze").rows_rejected) == (bronze, quarantine)
    assert quarantine > 0, "the fleet was generated with dirty records"


def test_silver_has_no_duplicate_readings_and_only_values_inside_the_contract_ranges(cycle):
    settings, _, _ = cycle
    duplicates = sql(
        settings,
        "select count(*) from (select device_id, event_at from silver.silver_readings "
        "group by all having count(*) > 1)",
    )
    assert duplicates == [(0,)]
    for (device_type, metric), limit in load_metric_limits().items():
        if metric not in DEVICE_TYPES[device_type]:
            continue
        outside = sql(
            settings,
            f"select count(*) from silver.silver_readings where device_type = '{device_type}' "
            f"and ({metric} < {limit.valid_min} or {metric} > {limit.valid_max})",
        )
        assert outside == [(0,)], f"{device_type}.{metric} outside [{limit.valid_min}, {limit.valid_max}]"


def test_every_bronze_row_reaches_silver_or_the_rejected_table_with_a_reason(cycle):
    settings, _, _ = cycle
    bronze = parquet_count(settings.lake_root.bronze_readings)
    (accepted,), (rejected,) = sql(
        settings,
        "select count(*) from silver.silver_readings union all select count(*) from silver.silver_rejected_readings",
    )
    assert accepted + rejected == bronze
    reasons = dict(sql(settings, "select rejection_reason, count(*) from silver.silver_rejected_readings group by 1"))
    assert None not in reasons
    assert reasons.get("duplicate", 0) > 0, "the simulator sends retried duplicates"


def test_hourly_gold_equals_a_direct_duckdb_aggregate_of_silver(cycle):
    settings, _, _ = cycle
    unpivot_rows = " union all ".join(
        f"select device_id, '{m}' as metric, date_trunc('hour', event_at) as hour_at, {m} as value "
        f"from silver.silver_readings where {m} is not null"
        for m in sorted({m for metrics in DEVICE_TYPES.values() for m in metrics})
    )
    direct = sql(
        settings,
        f"select device_id, metric, hour_at, count(*), min(value), max(value), round(avg(value), 6), "
        f"round(quantile_cont(value, 0.5), 6), round(quantile_cont(value, 0.95), 6) "
        f"from ({unpivot_rows}) group by all order by all",
    )
    gold = sql(
        settings,
        "select device_id, metric, hour_at, reading_count, min_value, max_value, round(avg_value, 6), "
        "round(p50_value, 6), round(p95_value, 6) from gold.gold_sensor_metrics_hourly order by all",
    )
    assert len(gold) > 0
    assert gold == direct


def test_a_second_cycle_on_the_same_input_changes_no_table(cycle, spark):
    from orchestration.cycle import run_cycle

    settings, _, _ = cycle
    tables = [
        "silver.silver_readings",
        "silver.silver_rejected_readings",
        "gold.gold_sensor_metrics_hourly",
        "gold.gold_anomalies",
        "gold.gold_device_health",
    ]
    before = {t: sql(settings, f"select * from {t} order by all") for t in tables}

    again = run_cycle(settings, spark=spark, echo=lambda _line: None)

    assert again.success, again.failure
    assert again.step("bronze").rows_in == 0
    after = {t: sql(settings, f"select * from {t} order by all") for t in tables}
    for table in tables:
        assert after[table] == before[table], f"{table} changed on a second run over the same input"


def test_a_broken_batch_fails_the_bronze_gate_and_later_layers_keep_their_contents(cycle, spark, capsys):
    from lakehouse.cli import main

    settings, _, _ = cycle
    lake = settings.lake_root
    silver_before = sql(settings, "select count(*), sum(hash(device_id, event_at, seq)) from silver.silver_readings")
    gold_before = sql(settings, "select * from gold.gold_sensor_metrics_hourly order by all")
    bronze_before = parquet_count(lake.bronze_readings)
    broken = Path(lake.landing_readings) / "2026" / "11" / "20" / "23" / "broken-batch.json"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("".join(f'{{"device_id": "env-00001", "seq": {i}, "garbage\n' for i in range(300)))

    exit_code = main(["--lake", lake.root, "run"])

    output = capsys.readouterr()
    assert exit_code == 3, output.out + output.err
    assert "gate_bronze" in output.err + output.out
    assert "quarantine_share_below_threshold" in output.err + output.out
    assert (
        sql(settings, "select count(*), sum(hash(device_id, event_at, seq)) from silver.silver_readings")
        == silver_before
    )
    assert sql(settings, "select * from gold.gold_sensor_metrics_hourly order by all") == gold_before
    # Nothing deleted: the broken lines sit in quarantine, bronze keeps what it had.
    assert parquet_count(lake.bronze_readings) == bronze_before
    quarantined = (
        duckdb.connect()
        .execute(
            f"select count(*) from read_parquet('{lake.quarantine_readings}/*/*.parquet') "
            "where _source_file like '%broken-batch.json'"
        )
        .fetchall()[0][0]
    )
    assert quarantined == 300
    assert broken.exists()
    # The failed gate was alerted to the alerts file, once.
    alerts = (Path(lake.root) / "ops" / "alerts.ndjson").read_text().splitlines()
    assert sum("quarantine_share_below_threshold" in line for line in alerts) == 1
