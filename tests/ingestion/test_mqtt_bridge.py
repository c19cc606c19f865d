"""Specification of the MQTT bridge on a real Mosquitto broker: what lands, with what name, the counts, and a
broker that goes away for 20 s while devices keep publishing (their clients queue).

The crash scenario (kill -9, restart, bronze and silver) is in test_mqtt_crash.py."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest

from ingestion.mqtt_bridge import Bridge, BridgeOptions
from ingestion.mqtt_client import connect, mqtt_client, parse_broker, wait_published
from ingestion.mqtt_messages import CutPolicy, TopicFilter
from lakehouse import ops
from lakehouse.lake import Lake
from lakehouse.storage import LocalStorage
from tests.support.datasets import nab_file

READINGS = "sites/+/devices/+/readings"


def landed_lines(lake: Lake) -> list[str]:
    storage = LocalStorage()
    return [
        line
        for uri in storage.list(lake.landing_readings, suffix=".json")
        for line in storage.read_bytes(uri).decode().splitlines()
    ]


class RunningBridge:
    """A bridge on a thread of this process, with its output collected."""

    def __init__(self, settings, broker: str, **options) -> None:
        self.lines: list[str] = []
        defaults = {"topics": (TopicFilter(READINGS),), "progress_every_s": 1.0}
        self.bridge = Bridge(
            settings, BridgeOptions(broker=parse_broker(broker), **{**defaults, **options}), echo=self.lines.append
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None
        self.thread.start()
        wait_for(self.bridge._subscribed.is_set, 30, "the bridge to subscribe", self.lines)

    def _run(self) -> None:
        try:
            self.bridge.run(self.stop)
        except BaseException as exc:  # reported by close()
            self.error = exc

    def close(self):
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the bridge did not stop"
        if self.error:
            raise self.error
        return self.bridge.report


def wait_for(predicate, timeout_s: float, what: str, output: list[str] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}" + "\n".join(["", *(output or [])]))


class Device:
    """A device publishing QoS 1 readings through its own client (which queues while the broker is away)."""

    def __init__(self, settings, broker: str, device_id: str) -> None:
        self.device_id = device_id
        self.client = mqtt_client(settings, f"device-{device_id}", persistent=False)
        self.client.reconnect_delay_set(1, 2)
        connected = threading.Event()
        self.client.on_connect = lambda *_args: connected.set()
        connect(self.client, settings, parse_broker(broker), persistent=False)
        self.client.loop_start()
        assert connected.wait(10), f"device {device_id} could not connect"
        self.sent: list[tuple[dict, object]] = []

    def publish(self, seq: int) -> None:
        reading = {
            "device_id": self.device_id,
            "device_type": "environmental",
            "site_id": "site-01",
            "event_time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "seq": seq,
            "temperature_c": 20.0 + seq % 7,
        }
        topic = f"sites/site-01/devices/{self.device_id}/readings"
        self.sent.append((reading, self.client.publish(topic, json.dumps(reading), qos=1)))

    def close(self, timeout_s: float) -> None:
        for _, info in self.sent:
            assert wait_published(info, timeout_s), "the broker never acknowledged a device's message"
        self.client.disconnect()
        self.client.loop_stop()


def test_readings_produced_into_mqtt_land_as_the_same_lines_in_hour_folders_with_counts_in_ops_runs(
    settings, mosquitto
):
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig

    bridge = RunningBridge(settings, mosquitto.address, cut=CutPolicy(max_messages=300, max_seconds=0.5))
    producer = settings.with_overrides(lake=str(settings.lake_root.root) + "-producer", mqtt_broker=mosquitto.address)
    start = datetime(2026, 2, 1, tzinfo=UTC)
    produce(producer, FleetConfig(devices=8, readings=1000, dirty_rate=0.0, seed=4, start=start), "mqtt")
    wait_for(lambda: bridge.bridge.stats.landed >= 1000, 30, "1,000 landed lines", bridge.lines)
    report = bridge.close()

    from ingestion.simulator import Simulation

    expected = [line for batch in Simulation(FleetConfig(devices=8, readings=1000, dirty_rate=0.0, seed=4, start=start))
                for line in batch.lines]  # fmt: skip
    assert sorted(landed_lines(settings.lake_root)) == sorted(expected)
    files = LocalStorage().list(settings.lake_root.landing_readings, suffix=".json")
    hour = datetime.now(UTC).strftime("%Y/%m/%d/")
    assert len(files) >= 4 and all(f"/landing/readings/{hour}" in uri for uri in files)
    assert all("/readings-mqtt-lakehouse-bridge-" in uri for uri in files)
    [row] = [r for r in ops.read(settings.lake_root, "ops_runs") if r["mode"] == "mqtt"]
    assert (row["status"], row["rows_in"], row["rows_out"], row["rows_rejected"]) == ("ok", 1000, 1000, 0)
    assert json.loads(row["detail"])["acked"] == 1000 == report.stats.acked
    assert any("landed in" in line for line in bridge.lines)  # progress on the terminal


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_broker_down_for_20_s_while_devices_keep_publishing_loses_nothing(settings, mosquitto, protocol):
    settings = settings.with_overrides(mqtt_protocol=protocol)
    bridge = RunningBridge(
        settings, mosquitto.address, cut=CutPolicy(max_seconds=0.5), reconnect_min_s=1, reconnect_max_s=4
    )
    devices = [Device(settings, mosquitto.address, f"env-{i:05d}") for i in (1, 5)]
    seq = 0

    def publish_for(seconds: float) -> None:
        nonlocal seq
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            seq += 1
            for device in devices:
                device.publish(seq)
            time.sleep(0.05)

    publish_for(2)
    mosquitto.stop()  # SIGTERM: the broker saves the bridge's session and its queued messages
    publish_for(20)  # the devices' clients queue these
    mosquitto.start()
    publish_for(2)
    for device in devices:
        device.close(timeout_s=60)
    sent = {json.dumps(reading, sort_keys=True) for device in devices for reading, _ in device.sent}
    wait_for(
        lambda: sent <= {json.dumps(json.loads(line), sort_keys=True) for line in landed_lines(settings.lake_root)},
        60,
        "every reading sent to land",
        bridge.lines,
    )
    report = bridge.close()
    assert len(sent) == 2 * seq > 2 * 20 * 10  # at ~20 a second per device, most of them during the outage
    assert report.stats.disconnects >= 1 and report.stats.connects >= 2
    assert any("reconnecting with backoff" in line for line in bridge.lines)


def test_on_an_s3_lake_the_bridge_lands_objects_under_the_same_layout(
    tmp_path, mosquitto, moto_endpoint, aws_client, aws_env, monkeypatch
):
    from lakehouse.config import Settings
    from lakehouse.storage import S3Storage

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)  # for the ops records' own client (boto3 reads it)
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="mqtt-lake")
    settings = Settings.load(env={}, cwd=tmp_path, lake="s3://mqtt-lake/lake")
    bridge = RunningBridge(settings, mosquitto.address, cut=CutPolicy(max_seconds=0.3))
    bridge.bridge.storage = S3Storage(s3)
    device = Device(settings, mosquitto.address, "env-00003")
    for seq in range(1, 51):
        device.publish(seq)
    device.close(timeout_s=30)
    wait_for(lambda: bridge.bridge.stats.landed >= 50, 30, "50 landed lines", bridge.lines)
    bridge.close()

    storage = S3Storage(s3)
    uris = storage.list("s3://mqtt-lake/lake/landing/readings", suffix=".json")
    hour = datetime.now(UTC).strftime("%Y/%m/%d/")
    assert uris and all(uri.startswith(f"s3://mqtt-lake/lake/landing/readings/{hour}") for uri in uris)
    lines = [json.loads(line) for uri in uris for line in storage.read_bytes(uri).decode().splitlines()]
    assert sorted(r["seq"] for r in lines) == list(range(1, 51))
    [row] = [r for r in ops.read(settings.lake_root, "ops_runs") if r["mode"] == "mqtt"]
    assert row["rows_out"] == 50


def test_a_recorded_nab_series_replayed_over_mqtt_lands_the_same_lines_as_replayed_into_files(
    tmp_path, settings, mosquitto
):
    from lakehouse.cli import main

    series = str(nab_file("ambient_temperature_system_failure.csv"))
    replay = ["replay", series, "--device", "env-00001", "--map", "value=temperature_c"]
    replay += ["--convert", "value=degF_to_degC", "--quiet"]
    assert main(["--lake", str(tmp_path / "files-lake"), *replay]) == 0
    expected = landed_lines(Lake(str(tmp_path / "files-lake")))

    bridge = RunningBridge(settings, mosquitto.address)
    assert main(["--lake", str(tmp_path / "producer"), *replay, "--sink", "mqtt", "--broker", mosquitto.address]) == 0
    wait_for(lambda: bridge.bridge.stats.landed >= len(expected), 60, "the whole series", bridge.lines)
    bridge.close()
    assert len(expected) == 7267  # one reading per row of the recorded series
    assert sorted(landed_lines(settings.lake_root)) == sorted(expected)


def test_a_landing_write_that_fails_stops_the_bridge_and_the_broker_keeps_the_messages(settings, mosquitto):
    from ingestion.mqtt_client import MqttError

    blocker = settings.lake_root.local_path("landing", "readings")
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")  # every landing write fails
    bridge = RunningBridge(settings, mosquitto.address, cut=CutPolicy(max_seconds=0.2))
    device = Device(settings, mosquitto.address, "env-00009")
    for seq in range(1, 11):
        device.publish(seq)
    device.close(timeout_s=30)
    wait_for(lambda: bridge.error is not None or not bridge.thread.is_alive(), 30, "the bridge to stop", bridge.lines)
    with pytest.raises(MqttError, match="writing a landing file failed"):
        bridge.close()
    assert bridge.bridge.stats.acked == 0

    blocker.unlink()
    again = RunningBridge(settings, mosquitto.address, cut=CutPolicy(max_seconds=0.2))
    wait_for(lambda: again.bridge.stats.landed >= 10, 30, "the kept messages to land", again.lines)
    again.close()
    assert sorted(json.loads(line)["seq"] for line in landed_lines(settings.lake_root)) == list(range(1, 11))
