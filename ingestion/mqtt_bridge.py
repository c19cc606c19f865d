"""``lakehouse ingest mqtt``: a long-running bridge from an MQTT broker into the landing zone.

It subscribes to the topic filter(s) with QoS 1 in a persistent session (MQTT 5 or 3.1.1), turns each
message into one landing line (:func:`ingestion.mqtt_messages.landing_line`), buffers lines in memory and
cuts a file by size, count or age (:class:`ingestion.mqtt_messages.CutPolicy`). A file is written through
:mod:`lakehouse.storage` (locally: a hidden temporary file, fsync, atomic rename; on S3: one PUT), so a
reader never sees half a file, and **only then** are its messages acknowledged to the broker (paho's
manual acks). So:

- a crash (even ``kill -9``) loses nothing: unacknowledged messages stay with the broker, which sends
  them again when the bridge's session comes back; a message whose file was written but whose ack was not
  sent lands twice, identically, and silver keeps it once (a duplicate is an identical record);
- a broker that goes away is reconnected with exponential backoff (paho's, ``reconnect_*_s``); acks of a
  message received on an earlier connection are never sent on a later one (its message id may mean
  another message there): those messages come again and land again, identically;
- a message on a topic outside the filters (a subscription left in the persistent session by an earlier
  run with other filters) is acknowledged, not landed, and counted as ignored.

Threads: paho's network thread receives (``_on_message``) and hands full buffers to one writer thread,
which writes and acknowledges in order; the calling thread cuts files by age, prints progress and
records the run. SIGTERM or Ctrl-C: stop taking messages, write what is buffered, acknowledge it,
disconnect, record the run in ``ops_runs`` (mode ``mqtt``), return.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingestion.mqtt_client import Broker, MqttError, connect, mqtt_client
from ingestion.mqtt_messages import CutPolicy, TopicFilter, landing_line, landing_name
from lakehouse import ops
from lakehouse.config import Settings
from lakehouse.shutdown import restore_signals, stop_on_signals
from lakehouse.storage import Storage, storage_for

Echo = Callable[[str], None]


@dataclass(frozen=True)
class BridgeOptions:
    broker: Broker
    topics: tuple[TopicFilter, ...]
    client_id: str = "lakehouse-bridge"
    cut: CutPolicy = field(default_factory=CutPolicy)
    progress_every_s: float = 5.0
    record_every_s: float = 300.0  # a "running" row in ops_runs this often (and one at the end)
    duration_s: float | None = None
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    connect_timeout_s: float = 30.0  # the first connection; later ones are retried forever


@dataclass
class BridgeStats:
    received: int = 0  # messages delivered by the broker (redeliveries included)
    landed: int = 0  # lines in written files
    unreadable: Counter = field(default_factory=Counter)  # landed as unreadable lines, by cause
    ignored: int = 0  # topics outside the filters
    files: int = 0
    bytes: int = 0
    acked: int = 0
    not_acked: int = 0  # landed, but received on an earlier connection: the broker sends them again
    connects: int = 0
    disconnects: int = 0
    buffered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "unreadable": dict(self.unreadable)}


@dataclass
class BridgeReport:
    run_id: str
    started_at: datetime
    stats: BridgeStats
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = self.stats
        rate = s.landed / self.seconds if self.seconds else 0.0
        unreadable = sum(s.unreadable.values())
        causes = ", ".join(f"{k} {n:,}" for k, n in sorted(s.unreadable.items()))
        return (
            f"mqtt: stopped after {self.seconds:.0f} s: {s.received:,} message(s) received, {s.landed:,} landed in "
            f"{s.files:,} file(s) ({rate:,.0f}/s), {unreadable:,} unreadable{f' ({causes})' if causes else ''}, "
            f"{s.ignored:,} ignored (topic outside the filter), {s.acked:,} acknowledged, {s.not_acked:,} to be "
            f"sent again by the broker; {s.disconnects:,} disconnection(s)"
        )


class _Buffer:
    __slots__ = ("lines", "acks", "bytes", "first_s", "first_at")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.acks: list[tuple[int, int, int]] = []  # (mid, qos, connection generation)
        self.bytes = 0
        self.first_s: float | None = None
        self.first_at: datetime | None = None


_STOP = object()


class Bridge:
    def __init__(
        self, settings: Settings, options: BridgeOptions, *, echo: Echo = print, storage: Storage | None = None
    ) -> None:
        if not options.topics:
            raise MqttError("no topic filter: pass --topic, e.g. --topic 'sites/+/devices/+/readings'")
        self.settings = settings
        self.options = options
        self.echo = echo
        self.lake = settings.lake_root
        self.storage = storage or storage_for(self.lake.root)
        self.stats = BridgeStats()
        self.report = BridgeReport(run_id=ops.new_run_id(), started_at=datetime.now(UTC), stats=self.stats)
        self._token = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()
        self._buffer = _Buffer()
        self._files: queue.Queue = queue.Queue(maxsize=8)  # back-pressure: a slow disk slows the receiving
        self._generation = 0
        self._accepting = True
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._writer_error: BaseException | None = None
        self._client = None

    # ---- paho callbacks (network thread) ---------------------------------------------------------------
    def _on_connect(self, client, _userdata, flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self._refused = f"the broker {self.options.broker} refused the connection: {reason_code}"
            self.echo(f"mqtt: {self._refused}; check --username/--password or the client certificate")
            return
        with self._lock:
            self._generation += 1
        self.stats.connects += 1
        session = "resumed" if flags.session_present else "new"
        self.echo(f"mqtt: connected to {self.options.broker} as {self.options.client_id} ({session} session)")
        # Subscribing again is harmless and adds a filter this run has and the session lacks. A resumed
        # session is ready at once: the broker sends its queue before it answers the SUBSCRIBE, which after
        # a long outage can take minutes.
        client.subscribe([(t.filter, 1) for t in self.options.topics])
        if flags.session_present:
            self._announce_subscribed()

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            self._refused = f"the broker refused the subscription to {self._filters()}: {', '.join(refused)}"
            self.echo(f"mqtt: {self._refused}; check the broker's ACL for this client")
            return
        self._announce_subscribed()

    def _announce_subscribed(self) -> None:
        if not self._subscribed.is_set():
            self.echo(f"mqtt: subscribed to {self._filters()} (QoS 1); landing into {self.lake.landing_readings}")
            self._subscribed.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.stats.disconnects += 1
        if self._accepting:
            self.echo(
                f"mqtt: disconnected from {self.options.broker} ({reason_code}); reconnecting with backoff "
                f"({self.options.reconnect_min_s}..{self.options.reconnect_max_s} s)"
            )

    def _on_message(self, client, _userdata, message) -> None:
        topic = message.topic
        if not self._accepting:
            return  # not acknowledged: the broker keeps it for the next run
        topics = next((t for t in self.options.topics if t.matches(topic)), None)
        if topics is None:
            self.stats.received += 1
            self.stats.ignored += 1
            if message.qos:
                client.ack(message.mid, message.qos)
                self.stats.acked += 1
            return
        line, cause = landing_line(topic, message.payload, topics)
        full = None
        with self._lock:
            self.stats.received += 1
            if cause is not None:
                self.stats.unreadable[cause] += 1
            b = self._buffer
            if b.first_s is None:
                b.first_s, b.first_at = time.monotonic(), datetime.now(UTC)
            b.lines.append(line)
            b.acks.append((message.mid, message.qos, self._generation))
            b.bytes += len(line) + 1
            if self.options.cut.full(b.bytes, len(b.lines)):
                full, self._buffer = b, _Buffer()
        if full is not None:
            self._files.put(full)  # blocks while the writer is 8 files behind

    # ---- the writer thread -----------------------------------------------------------------------------
    def _write_files(self) -> None:
        n = 0
        while True:
            item = self._files.get()
            if item is _STOP:
                return
            if self._writer_error is not None:
                continue  # after a failed write: not acknowledged, the broker sends them again (and no put blocks)
            try:
                n += 1
                self._write(item, n)
            except BaseException as exc:  # noqa: BLE001 - reported by run(), which stops the bridge
                self._writer_error = exc

    def _write(self, buffer: _Buffer, n: int) -> None:
        uri = f"{self.lake.landing_readings}/{landing_name(self.options.client_id, buffer.first_at, self._token, n)}"
        buffer.lines.append("")  # join ends the last line with a newline
        data = "\n".join(buffer.lines).encode()
        self.storage.write_bytes(uri, data)  # durable and atomic: fsync + rename, or one S3 PUT
        with self._lock:
            generation = self._generation
        for mid, qos, received_on in buffer.acks:
            if not qos:
                continue
            if received_on == generation:
                self._client.ack(mid, qos)
                self.stats.acked += 1
            else:
                self.stats.not_acked += 1
        self.stats.landed += len(buffer.lines) - 1
        self.stats.files += 1
        self.stats.bytes += len(data)
        self.report.files.append(uri)

    def _cut(self) -> None:
        with self._lock:
            b = self._buffer
            if not b.lines:
                return
            self._buffer = _Buffer()
        self._files.put(b)

    # ---- the calling thread ----------------------------------------------------------------------------
    def _filters(self) -> str:
        return ", ".join(t.filter for t in self.options.topics)

    def run(self, stop: threading.Event | None = None) -> BridgeReport:
        """Bridge until ``stop``, SIGTERM/SIGINT (from the main thread) or ``duration_s``; see the module
        docstring. Raises :class:`MqttError` when the first connection or the subscription fails."""
        stop = stop or threading.Event()
        o = self.options
        previous = (
            stop_on_signals(stop, self.echo, "mqtt", "writing what is buffered, then stopping")
            if threading.current_thread() is threading.main_thread()
            else {}
        )
        began = time.monotonic()
        client = self._client = mqtt_client(self.settings, o.client_id, persistent=True, manual_ack=True)
        client.on_connect, client.on_subscribe = self._on_connect, self._on_subscribe
        client.on_disconnect, client.on_message = self._on_disconnect, self._on_message
        client.reconnect_delay_set(o.reconnect_min_s, o.reconnect_max_s)
        writer = threading.Thread(target=self._write_files, name="mqtt-landing-writer", daemon=True)
        writer.start()
        self.echo(f"mqtt: connecting to {o.broker} (MQTT {self.settings.mqtt_protocol}) ...")
        connect(client, self.settings, o.broker, persistent=True, receive_maximum=o.cut.max_messages)
        client.loop_start()
        try:
            self._wait_subscribed(stop, began)
            last_progress = last_record = time.monotonic()
            while not stop.is_set():
                stop.wait(0.05)
                now = time.monotonic()
                with self._lock:
                    first = self._buffer.first_s
                    self.stats.buffered = len(self._buffer.lines)
                if o.cut.due(first, now):
                    self._cut()
                if self._writer_error is not None:
                    raise MqttError(f"writing a landing file failed: {self._writer_error}") from self._writer_error
                if now - last_progress >= o.progress_every_s:
                    last_progress = now
                    self.echo(self._progress(now - began))
                if now - last_record >= o.record_every_s:
                    last_record = now
                    self._record("running", now - began)
                if o.duration_s is not None and now - began >= o.duration_s:
                    self.echo(f"mqtt: ran for {o.duration_s:g} s, stopping")
                    break
        finally:
            self._accepting = False  # later messages stay unacknowledged with the broker
            self._cut()
            self._files.put(_STOP)
            writer.join()
            client.disconnect()  # after the acks: paho sends its packets in order
            client.loop_stop()
            restore_signals(previous)
            self.report.seconds = time.monotonic() - began
            self.stats.buffered = 0
            self.echo(self._progress(self.report.seconds))
            self._record("failed" if self._writer_error or self._refused else "ok", self.report.seconds)
        if self._writer_error is not None:
            raise MqttError(f"writing a landing file failed: {self._writer_error}") from self._writer_error
        return self.report

    def _wait_subscribed(self, stop: threading.Event, began: float) -> None:
        deadline = began + self.options.connect_timeout_s
        while not self._subscribed.is_set():
            if self._refused:
                raise MqttError(self._refused)
            if stop.is_set():
                return
            if time.monotonic() > deadline:
                raise MqttError(
                    f"could not connect to the MQTT broker {self.options.broker} within "
                    f"{self.options.connect_timeout_s:g} s; check --broker, that the broker runs and that this "
                    f"machine may reach it (TLS brokers usually listen on 8883)"
                )
            stop.wait(0.05)

    def _progress(self, seconds: float) -> str:
        s = self.stats
        return (
            f"mqtt: {s.received:,} received, {s.landed:,} landed in {s.files:,} file(s) "
            f"({s.landed / seconds if seconds else 0:,.0f}/s), {sum(s.unreadable.values()):,} unreadable, "
            f"{s.ignored:,} ignored, {s.buffered:,} buffered, {s.disconnects:,} disconnection(s)"
        )

    def _record(self, status: str, seconds: float) -> None:
        s = self.stats
        row = {
            "mode": "mqtt",
            "run_id": self.report.run_id,
            "step": "mqtt_bridge",
            "status": status,
            "rows_in": s.received,
            "rows_out": s.landed,
            "rows_rejected": s.ignored,
            "seconds": round(seconds, 3),
            "detail": json.dumps({"broker": str(self.options.broker), "topics": self._filters(), **s.as_dict()}),
            "started_at": self.report.started_at,
            "finished_at": datetime.now(UTC) if status != "running" else None,
            "cycle_started_at": self.report.started_at,
            "recorded_at": datetime.now(UTC),
            "bronze_batch_ids": [],
        }
        ops.append(self.lake, "ops_runs", [row])


def bridge_options(settings: Settings, **overrides: Any) -> BridgeOptions:
    """Options from the ``mqtt_*`` settings (broker, topic filter, client id), with ``overrides``."""
    from ingestion.mqtt_client import parse_broker, uses_tls

    values: dict[str, Any] = {
        "broker": parse_broker(settings.mqtt_broker, tls=uses_tls(settings)),
        "topics": (TopicFilter(settings.mqtt_topic),),
        "client_id": settings.mqtt_client_id,
    }
    return BridgeOptions(**{**values, **overrides})


def run_bridge(
    settings: Settings, options: BridgeOptions, *, echo: Echo = print, stop: threading.Event | None = None
) -> BridgeReport:
    """Run the bridge until stopped; see :class:`Bridge`."""
    return Bridge(settings, options, echo=echo).run(stop)


class BridgeThread:
    """The bridge on a thread of its own, beside other work (``lakehouse stream --mqtt``): ``start()``
    returns once it is subscribed; ``close()`` writes what it holds, acknowledges it and returns the report.
    Signals stay with the caller, which calls ``close()`` when it stops."""

    def __init__(self, settings: Settings, options: BridgeOptions, *, echo: Echo = print) -> None:
        self.bridge = Bridge(settings, options, echo=echo)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt-bridge", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.bridge.run(self._stop)
        except BaseException as exc:  # noqa: BLE001 - reported by start() and close()
            self.error = exc

    def start(self) -> BridgeThread:
        self._thread.start()
        while not self.bridge._subscribed.is_set():
            if self.error is not None:
                raise self.error
            if not self._thread.is_alive():
                raise MqttError("the MQTT bridge stopped before it subscribed")
            time.sleep(0.05)
        return self

    def close(self) -> BridgeReport:
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.bridge.report
