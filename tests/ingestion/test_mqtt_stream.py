"""Specification of `lakehouse stream --mqtt`: the bridge runs beside bronze, so readings published on MQTT
reach silver and gold in continuous mode (the real stream: Spark, dbt on DuckDB, the GX gates)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import duckdb

from ingestion.mqtt_bridge import bridge_options
from ingestion.mqtt_messages import CutPolicy
from lakehouse import ops
from lakehouse.config import Settings


def test_readings_published_on_mqtt_reach_gold_in_continuous_mode(spark, tmp_path, mosquitto):
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig
    from orchestration.stream import StreamOptions, run_stream

    settings = Settings.load(env={}, cwd=tmp_path, lake=str(tmp_path / "lake"), mqtt_broker=mosquitto.address)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    fleet = FleetConfig(devices=4, readings=300, dirty_rate=0.0, fault_rates={}, seed=8, start=start)
    output: list[str] = []
    subscribed = threading.Event()

    def echo(line: str) -> None:
        output.append(line)
        if "mqtt: subscribed to" in line:
            subscribed.set()

    def devices() -> None:  # publish once the stream's bridge has subscribed
        subscribed.wait(120)
        produce(settings.with_overrides(lake=str(tmp_path / "producer")), fleet, "mqtt")

    publisher = threading.Thread(target=devices, daemon=True)
    publisher.start()
    options = StreamOptions(
        interval_s=2.0, dbt_every_s=2.0, max_cycles=1, mqtt=bridge_options(settings, cut=CutPolicy(max_seconds=0.5))
    )
    report = run_stream(settings, options, echo=echo, spark=spark)
    publisher.join(60)

    assert report.cycles and report.cycles[0].success, "\n".join(output)
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        [(in_silver,)] = con.execute("select count(*) from silver.silver_readings").fetchall()
        [(mismatched_device_hours,)] = con.execute(
            """with gold as (select device_id, hour_at, max(reading_count) as n
                             from gold.gold_sensor_metrics_hourly group by all),
                    silver as (select device_id, date_trunc('hour', event_at) as hour_at, count(*) as n
                               from silver.silver_readings group by all)
               select count(*) from silver full join gold using (device_id, hour_at)
               where silver.n is distinct from gold.n"""
        ).fetchall()
    landed = sum(m.lines for m in report.batches)
    assert landed > 0 and in_silver == landed  # what the first micro-cycle covered, all of it in silver
    assert mismatched_device_hours == 0  # gold aggregated every silver reading
    modes = {r["mode"] for r in ops.read(settings.lake_root, "ops_runs")}
    assert {"mqtt", "stream"} <= modes
    assert any(line.startswith("mqtt: stopped after") for line in output)
