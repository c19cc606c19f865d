"""Specification of the MQTT bridge's guarantees, on the real command (`lakehouse ingest mqtt` in a
subprocess), a real Mosquitto, and the real bronze job and dbt silver:

kill -9 while the bridge holds unflushed messages, restart: every QoS 1 message is in the landing zone at
least once and every reading in silver exactly once; binary, oversized and non-JSON payloads are landed
and quarantined by bronze with a reason; topics outside the filter are ignored and counted; SIGTERM
writes what is buffered and exits 0, with the counts in ops_runs.

The scenario runs once for the module; each test reads what it left.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingestion.mosquitto import Mosquitto
from ingestion.mqtt_client import connect, mqtt_client, parse_broker, wait_published
from lakehouse import ops
from lakehouse.config import Settings
from lakehouse.storage import LocalStorage

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
READINGS = "sites/+/devices/+/readings"
STATUS = "sites/+/devices/+/status"
START = datetime(2026, 2, 10, 8, 0, tzinfo=UTC)
BAD_PAYLOADS = {
    "binary_payload": bytes(range(256)) * 4,
    "oversized_payload": b'{"device_id":"env-00001","junk":"' + b"x" * 300_000 + b'"}',
    "not_json": b"temperature=21.5;humidity=40",
}


class Bridge:
    """`lakehouse ingest mqtt` in a subprocess, its output read on a thread."""

    def __init__(self, lake: Path, broker: str, *flags: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [LAKEHOUSE, "--lake", str(lake), "ingest", "mqtt", "--broker", broker, *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=lake.parent,  # no lakehouse.toml of the machine running the tests
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda line: "subscribed to" in line, 60)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(predicate(line) for line in list(self.lines)):
                return
            if self.process.poll() is not None and not any(predicate(line) for line in list(self.lines)):
                break
            time.sleep(0.05)
        raise AssertionError("the bridge did not print the expected line; it printed:\n" + "\n".join(self.lines))

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(60)


def landed(lake_root) -> list[str]:
    storage = LocalStorage()
    return [
        line
        for uri in storage.list(lake_root.landing_readings, suffix=".json")
        for line in storage.read_bytes(uri).decode().splitlines()
    ]


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.1)


def publish(settings: Settings, broker: str, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt_client(settings, "test-publisher", persistent=False)
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    connect(client, settings, parse_broker(broker), persistent=False)
    client.loop_start()
    assert connected.wait(10)
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    assert all(wait_published(info, 30) for info in infos)
    client.disconnect()
    client.loop_stop()


@dataclass
class Scenario:
    settings: Settings
    readings: list[str]  # the lines the simulator published, one QoS 1 message each
    landed_before_kill: int
    published_before_kill: int
    final: Bridge
    exit_code: int
    status_messages: int


@pytest.fixture(scope="module")
def scenario(spark, tmp_path_factory) -> Scenario:
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig, Simulation
    from orchestration.transform import transform
    from spark.bronze_job import run_bronze

    root = tmp_path_factory.mktemp("mqtt-crash")
    broker = Mosquitto(root / "mosquitto").start()
    try:
        lake = root / "lake"
        settings = Settings.load(env={}, cwd=root, lake=str(lake), mqtt_broker=broker.address)
        # An earlier run subscribed to the status topic too: the subscription stays in the session.
        first = Bridge(lake, broker.address, "--topic", READINGS, "--topic", STATUS)
        assert first.stop(signal.SIGTERM) == 0

        # The bridge that is killed: files of 150 messages, none cut by age.
        doomed = Bridge(lake, broker.address, "--max-file-messages", "150", "--max-file-seconds", "3600")
        fleet = FleetConfig(devices=6, readings=400, dirty_rate=0.0, fault_rates={}, seed=21, start=START)
        produce(settings.with_overrides(lake=str(root / "producer")), fleet, "mqtt")
        readings = [line for batch in Simulation(fleet) for line in batch.lines]
        bad = [("sites/site-01/devices/env-00001/readings", payload) for payload in BAD_PAYLOADS.values()]
        publish(settings, broker.address, bad)
        published = len(readings) + len(bad)
        wait_until(lambda: len(landed(settings.lake_root)) >= 300, 60, "two files of 150 to land")
        time.sleep(1.0)  # the rest arrive and wait in the bridge's buffer, unacknowledged
        landed_before_kill = len(landed(settings.lake_root))
        doomed.process.kill()  # kill -9
        doomed.process.wait(30)

        final = Bridge(lake, broker.address, "--max-file-seconds", "0.5")
        status = [(f"sites/site-01/devices/env-0000{i}/status", b'{"battery_pct": 80}') for i in range(1, 6)]
        publish(settings, broker.address, status)
        wanted = set(readings)
        wait_until(lambda: wanted <= set(landed(settings.lake_root)), 60, "every reading to land after the restart")
        wait_until(lambda: len(landed(settings.lake_root)) >= published, 30, "every message to land")
        time.sleep(0.5)
        exit_code = final.stop(signal.SIGTERM)
    finally:
        broker.kill()

    run_bronze(settings, spark=spark)
    transform(settings, "silver")
    return Scenario(settings, readings, landed_before_kill, published, final, exit_code, len(status))


def warehouse(settings: Settings, query: str) -> list[tuple]:
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        return con.execute(query).fetchall()


def parquet(uri: str, query: str) -> list[tuple]:
    return duckdb.connect().execute(query.format(files=f"read_parquet('{uri}/*/*.parquet')")).fetchall()


def test_the_killed_bridge_held_unflushed_messages(scenario):
    assert 300 <= scenario.landed_before_kill < scenario.published_before_kill


def test_after_kill_9_and_restart_every_qos1_message_is_in_the_landing_zone_at_least_once(scenario):
    lines = landed(scenario.settings.lake_root)
    assert set(scenario.readings) <= set(lines)
    causes = [json.loads(line)[1] for line in lines if line.startswith('["mqtt_unreadable"')]
    assert set(causes) == set(BAD_PAYLOADS)


def test_after_kill_9_and_restart_every_reading_is_in_silver_exactly_once(scenario):
    [(rows, keys)] = warehouse(
        scenario.settings, "select count(*), count(distinct (device_id, seq)) from silver.silver_readings"
    )
    assert rows == keys == len(scenario.readings)


def test_every_landed_line_is_in_bronze_or_quarantine(scenario):
    lake = scenario.settings.lake_root
    [(bronze,)] = parquet(lake.bronze_readings, "select count(*) from {files}")
    [(quarantined,)] = parquet(lake.quarantine_readings, "select count(*) from {files}")
    assert bronze + quarantined == len(landed(lake))


def test_binary_oversized_and_non_json_payloads_are_landed_then_quarantined_with_a_reason(scenario):
    rows = parquet(scenario.settings.lake_root.quarantine_readings, "select raw_line, reason from {files}")
    quarantined = {}
    for raw_line, reason in rows:
        marker, cause, topic, data = json.loads(raw_line)
        assert (marker, reason, topic) == (
            "mqtt_unreadable",
            "malformed_json",
            "sites/site-01/devices/env-00001/readings",
        )
        quarantined[cause] = base64.b64decode(data)
    assert quarantined == BAD_PAYLOADS  # every byte of each payload, kept


def test_topics_outside_the_filter_are_ignored_and_counted(scenario):
    assert not any(
        '"battery_pct": 80}' in line or line == '{"battery_pct": 80}' for line in landed(scenario.settings.lake_root)
    )
    assert any(
        f"{scenario.status_messages} ignored (topic outside the filter)" in line for line in scenario.final.lines
    )


def test_sigterm_writes_what_is_buffered_exits_0_and_records_the_counts_in_ops_runs(scenario):
    assert scenario.exit_code == 0
    assert any("SIGTERM: writing what is buffered" in line for line in scenario.final.lines)
    rows = [r for r in ops.read(scenario.settings.lake_root, "ops_runs") if r["mode"] == "mqtt" and r["status"] == "ok"]
    assert len(rows) == 2  # the first and the last run; the killed one recorded nothing
    last = rows[-1]
    detail = json.loads(last["detail"])
    assert last["rows_rejected"] == detail["ignored"] == scenario.status_messages
    assert last["rows_in"] == last["rows_out"] + last["rows_rejected"]
    assert detail["acked"] == last["rows_in"]
