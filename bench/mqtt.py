"""Throughput of the MQTT bridge (``lakehouse ingest mqtt``) from a local broker, against a baseline.

    .venv/bin/python bench/mqtt.py                          # 200,000 readings, MQTT 5
    .venv/bin/python bench/mqtt.py --messages 100000 --protocol 3.1.1

What runs: a local Mosquitto (Debian's ``mosquitto``) under ``bench/out/``. Two persistent sessions
subscribe to ``sites/+/devices/+/readings`` and go offline: the bridge's and a baseline's. Publisher
processes then send ``--messages`` simulated readings (QoS 1, ``produce --sink mqtt``), which the broker
queues for both sessions; publishing is not measured. Then each session comes back and drains its queue:

- **baseline**: a bare paho-mqtt subscriber through the same client door (:mod:`ingestion.mqtt_client`),
  QoS 1 with paho's automatic acks and an ``on_message`` that does nothing: what the client library and
  the broker deliver on this machine, the ceiling for any bridge in Python;
- **bridge**: the real bridge, landing files in a lake under ``bench/out/`` (fsync, rename, acks after).

Printed per run: messages, seconds, messages/s, the process's CPU seconds and messages per CPU second (the
machine is shared: CPU seconds show what one core would do), and the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "bench" / "out"
TOPIC = "sites/+/devices/+/readings"


def publish_part(address: str, protocol: str, readings: int, seed: int) -> int:
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig
    from lakehouse.config import Settings

    settings = Settings.load(env={}, cwd=OUT, lake=str(OUT / f"mqtt-publisher-{seed}"), mqtt_broker=address)
    settings = settings.with_overrides(mqtt_protocol=protocol)
    config = FleetConfig(
        devices=200, readings=readings, dirty_rate=0.0, seed=seed, start=datetime(2026, 1, 1, tzinfo=UTC)
    )
    report = produce(settings, config, "mqtt")
    shutil.rmtree(OUT / f"mqtt-publisher-{seed}", ignore_errors=True)
    return report.lines


class Baseline:
    """A subscriber that only counts: paho's automatic QoS 1 acks, nothing written."""

    def __init__(self, settings, broker, client_id: str) -> None:
        from ingestion.mqtt_client import connect, mqtt_client

        self.count = 0
        self.subscribed = threading.Event()
        self.client = mqtt_client(settings, client_id, persistent=True)
        # The first time it subscribes; then the session has the subscription (and the broker sends the
        # queued messages before it would answer a new SUBSCRIBE).
        self.client.on_connect = lambda c, _u, flags, *_a: (
            self.subscribed.set() if flags.session_present else c.subscribe(TOPIC, 1)
        )
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_message = self._on_message
        connect(self.client, settings, broker, persistent=True, receive_maximum=20_000)
        self.client.loop_start()
        assert self.subscribed.wait(30), "the baseline could not subscribe"

    def _on_message(self, _client, _userdata, _message) -> None:
        self.count += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def drain(name: str, count, expected: int, timeout_s: float) -> dict:
    began, cpu = time.monotonic(), time.process_time()
    while count() < expected and time.monotonic() - began < timeout_s:
        time.sleep(0.01)
    seconds, cpu_seconds = time.monotonic() - began, time.process_time() - cpu
    n = count()
    return {"name": name, "messages": n, "seconds": seconds, "cpu": cpu_seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000, help="readings published (default 200,000)")
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5", help="MQTT version (default 5)")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes (default 2)")
    parser.add_argument("--timeout", type=float, default=600, help="max seconds per drain (default 600)")
    args = parser.parse_args()

    from ingestion.mosquitto import Mosquitto
    from ingestion.mqtt_bridge import Bridge, BridgeOptions, BridgeThread
    from ingestion.mqtt_client import parse_broker
    from ingestion.mqtt_messages import TopicFilter
    from lakehouse.config import Settings

    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / f"mqtt-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    mosquitto = Mosquitto(work / "mosquitto").start()
    try:
        settings = Settings.load(env={}, cwd=OUT, lake=str(work / "lake"), mqtt_protocol=args.protocol)
        broker = parse_broker(mosquitto.address)
        options = BridgeOptions(broker=broker, topics=(TopicFilter(TOPIC),), progress_every_s=3600)
        # Both sessions subscribe, then go offline so that the broker queues the readings for them.
        Baseline(settings, broker, "bench-baseline").close()
        BridgeThread(settings, options, echo=lambda _line: None).start().close()

        print(
            f"publishing {args.messages:,} readings (MQTT {args.protocol}, {args.publishers} processes) ...", flush=True
        )
        began = time.monotonic()
        share = args.messages // args.publishers
        with ProcessPoolExecutor(args.publishers) as pool:
            parts = [
                pool.submit(publish_part, mosquitto.address, args.protocol, share, seed)
                for seed in range(args.publishers)
            ]
            published = sum(part.result() for part in parts)
        print(f"published {published:,} in {time.monotonic() - began:.0f} s (not measured)", flush=True)

        load_before = os.getloadavg()
        baseline = Baseline(settings, broker, "bench-baseline")
        base = drain("baseline (paho, auto-ack, no work)", lambda: baseline.count, published, args.timeout)
        baseline.close()

        bridge = Bridge(settings, options, echo=lambda _line: None)
        thread = threading.Thread(target=bridge.run, args=(stop := threading.Event(),), daemon=True)
        thread.start()
        ours = drain("bridge (files, fsync, acks after)", lambda: bridge.stats.landed, published, args.timeout)
        stop.set()
        thread.join()
        load_after = os.getloadavg()
    finally:
        mosquitto.kill()

    print()
    print(f"{'run':<38}{'messages':>10}{'seconds':>9}{'msg/s':>10}{'cpu s':>8}{'msg/cpu-s':>11}")
    for row in (base, ours):
        print(
            f"{row['name']:<38}{row['messages']:>10,}{row['seconds']:>9.1f}{row['messages'] / row['seconds']:>10,.0f}"
            f"{row['cpu']:>8.1f}{row['messages'] / row['cpu'] if row['cpu'] else 0:>11,.0f}"
        )
    ratio = (ours["messages"] / ours["seconds"]) / (base["messages"] / base["seconds"])
    print(
        f"bridge: {bridge.stats.files} files, {bridge.stats.bytes / 1e6:,.1f} MB, {bridge.stats.acked:,} "
        f"acknowledged; bridge/baseline messages/s: {ratio:.2f}"
    )
    print(f"load average before / after: {load_before[0]:.1f} / {load_after[0]:.1f} ({time.strftime('%H:%M')})")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ours["messages"] >= published else 1


if __name__ == "__main__":
    sys.exit(main())
