"""Where produced lines go. One small interface, one implementation per destination.

- :class:`LandingSink`: Firehose-like files in the lake (a local folder, or S3 when the lake or
  ``--s3-uri`` is ``s3://...``): lines are buffered by size and by (simulated) time, and each file is
  published atomically through :mod:`lakehouse.storage` under ``landing/readings/YYYY/MM/DD/HH/``, the
  UTC hour of the first line's arrival. File names are deterministic, so a seeded run reproduces them.
- :class:`KinesisSink`: ``PutRecords`` in batches within the service limits, partition key = device id.
- :class:`FirehoseSink`: ``PutRecordBatch`` in batches within the service limits, newline-delimited.
- :class:`MqttSink`: one MQTT message (QoS 1) per line on ``sites/<site>/devices/<device>/readings``, the
  topic the bridge (``lakehouse ingest mqtt``) and an AWS IoT Core rule read.

Both AWS sinks retry only the entries a partial failure rejected, with exponential backoff and full
jitter, for a bounded time, then raise :class:`SinkError` naming the stream and what to do. Every boto3
client they build has connect and read timeouts.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from lakehouse.errors import LakehouseError
from lakehouse.lake import Lake
from lakehouse.storage import Storage

MIB = 1024 * 1024
SINKS = ("landing", "s3", "kinesis", "firehose", "mqtt")

# Service limits (AWS documentation, "Quotas and limits").
KINESIS_MAX_RECORDS = 500
KINESIS_MAX_REQUEST_BYTES = 5 * MIB  # data + partition keys of one PutRecords call
KINESIS_MAX_RECORD_BYTES = 1 * MIB  # data + partition key of one record
FIREHOSE_MAX_RECORDS = 500
FIREHOSE_MAX_REQUEST_BYTES = 4 * MIB
FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024

# Request-level errors worth another try; anything else (missing stream, access denied, validation) is
# a mistake that retrying cannot fix.
_RETRYABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "LimitExceededException",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "KMSThrottlingException",
    "RequestTimeout",
    "RequestTimeoutException",
}


class SinkError(LakehouseError):
    """A sink could not deliver; the message names the destination and the fix."""


@dataclass
class SinkStats:
    sink: str
    destination: str
    records: int = 0
    bytes: int = 0
    files: list[str] = field(default_factory=list)
    requests: int = 0
    retried_records: int = 0
    error_codes: Counter = field(default_factory=Counter)


class Sink(Protocol):
    """Receives lines in arrival order; ``close`` flushes what is buffered and returns the counts."""

    stats: SinkStats

    def send(self, lines: Sequence[str], arrival_ms: np.ndarray, keys: Sequence[str], sizes: np.ndarray) -> None: ...

    def close(self) -> SinkStats: ...

    def abort(self) -> None:
        """Stop after a failure elsewhere: drop what is buffered, wait for what is in flight."""


# ---- files: landing folder or S3 ----------------------------------------------------------------------
class LandingSink:
    """Files of newline-delimited JSON under ``<lake>/landing/readings/YYYY/MM/DD/HH/``.

    A file is cut when adding the next line would pass ``buffer_bytes`` or when the next line arrived
    ``buffer_seconds`` or more after the file's first line (simulated time, like Firehose's buffering
    hints). Its name, ``readings-<producer>-<first arrival>-<n>.json``, depends only on the data, so a
    seeded run writes the same names. Re-running a run leaves its files untouched; a name that already
    holds *other* bytes is an error, never overwritten (bronze may have read it already).
    """

    def __init__(
        self,
        lake: Lake,
        storage: Storage,
        producer: str,
        buffer_bytes: int = MIB,
        buffer_seconds: float = 60.0,
        name: str = "landing",
        writers: int = 4,
    ) -> None:
        if buffer_bytes < 1:
            raise ValueError(f"buffer_bytes={buffer_bytes}: must be positive")
        if buffer_seconds <= 0:
            raise ValueError(f"buffer_seconds={buffer_seconds}: must be positive")
        self._lake = lake
        self._storage = storage
        self._producer = producer
        self._limit = int(buffer_bytes)
        self._window_ms = int(buffer_seconds * 1000)
        self._lines: list[str] = []
        self._bytes = 0
        self._first_ms: int | None = None
        self._count = 0
        self.stats = SinkStats(sink=name, destination=lake.landing_readings)
        # Publishing waits on the disk (fsync) or the network far more than on the CPU, so a few threads
        # publish while the producer goes on; a failure stops the run at the next file or at close().
        self._writers = writers
        self._pool = ThreadPoolExecutor(writers, thread_name_prefix="landing-writer") if writers > 1 else None
        self._inflight: deque[Future] = deque()

    def send(self, lines: Sequence[str], arrival_ms: np.ndarray, keys: Sequence[str], sizes: np.ndarray) -> None:
        n = len(lines)
        cum = np.cumsum(sizes)
        p = 0
        while p < n:
            if self._first_ms is None:
                self._first_ms = int(arrival_ms[p])
            before = int(cum[p - 1]) if p else 0
            by_time = int(np.searchsorted(arrival_ms, self._first_ms + self._window_ms, "left"))
            by_size = int(np.searchsorted(cum, before + self._limit - self._bytes, "right"))
            q = min(max(by_time, p), by_size, n)
            if q == p:
                if self._lines:
                    self._flush()
                    continue
                q = p + 1  # one line bigger than the buffer travels alone
            self._lines.extend(lines[p:q])
            self._bytes += int(cum[q - 1]) - before
            p = q
            if p < n:
                self._flush()

    def close(self) -> SinkStats:
        if self._lines:
            self._flush()
        while self._inflight:
            self._wait(self._inflight.popleft())
        if self._pool is not None:
            self._pool.shutdown()
        return self.stats

    def abort(self) -> None:
        self._lines = []
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def _wait(self, future: Future) -> None:
        try:
            future.result()
        except BaseException:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
            raise

    def _flush(self) -> None:
        first = datetime.fromtimestamp(self._first_ms / 1000, tz=UTC)
        self._count += 1
        stamp = first.strftime("%Y%m%dT%H%M%S") + f"{first.microsecond // 1000:03d}Z"
        name = f"readings-{self._producer}-{stamp}-{self._count:06d}.json"
        uri = f"{self._lake.landing_readings}/{first:%Y/%m/%d/%H}/{name}"
        self._lines.append("")  # so that join ends the last line with a newline, without another copy
        data = "\n".join(self._lines).encode()
        if self._pool is None:
            self._publish(uri, data)
        else:
            while self._inflight and (self._inflight[0].done() or len(self._inflight) >= 4 * self._writers):
                self._wait(self._inflight.popleft())
            self._inflight.append(self._pool.submit(self._publish, uri, data))
        self.stats.records += len(self._lines) - 1
        self.stats.bytes += len(data)
        self.stats.files.append(uri)
        self._lines = []
        self._bytes = 0
        self._first_ms = None

    def dry_run(self) -> LandingSink:
        """A sink that cuts the same files from the same lines but only records them (``planned``), so a
        caller can check every name before the first file is published."""
        return LandingSink(
            self._lake,
            _RecordingStorage(),
            self._producer,
            self._limit,
            self._window_ms / 1000,
            name=self.stats.sink,
            writers=1,
        )

    @property
    def planned(self) -> list[tuple[str, bytes]]:
        storage = self._storage
        return list(storage.files) if isinstance(storage, _RecordingStorage) else []

    def clashes(self, planned: Sequence[tuple[str, bytes]]) -> list[str]:
        """Those of ``planned`` files whose name already holds other bytes in this sink's storage."""
        return [uri for uri, data in planned if self._storage.exists(uri) and self._storage.read_bytes(uri) != data]

    def _publish(self, uri: str, data: bytes) -> None:
        if not self._storage.exists(uri):
            self._storage.write_bytes(uri, data)
        elif self._storage.read_bytes(uri) != data:
            raise SinkError(
                f"{uri} already exists with other content; a landing file is never overwritten because "
                f"bronze may have read it. Use another --producer, --seed or --start, or another lake."
            )
        # else: the same run again; the file is already there, byte for byte.


class _RecordingStorage:
    """Storage that keeps what would be written, for :meth:`LandingSink.dry_run`."""

    def __init__(self) -> None:
        self.files: list[tuple[str, bytes]] = []

    def exists(self, uri: str) -> bool:
        return False

    def write_bytes(self, uri: str, data: bytes) -> None:
        self.files.append((uri, data))

    def read_bytes(self, uri: str) -> bytes:
        raise FileNotFoundError(uri)

    def list(self, prefix_uri: str, suffix: str = "") -> list[str]:
        return []


# ---- streams: Kinesis and Firehose ---------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter (sleep a random time up to base * 2**attempt, at most cap),
    for at most ``max_seconds`` per batch."""

    base_seconds: float = 0.1
    cap_seconds: float = 5.0
    max_seconds: float = 120.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap_seconds, self.base_seconds * 2**attempt))


def aws_client(service: str, endpoint_url: str | None = None, timeout_s: float = 30.0, **kwargs: Any) -> Any:
    """A boto3 client with connect and read timeouts and botocore's standard retries for throttling,
    built by the one door to AWS (lakehouse/aws.py); ``kwargs``: ``region_name`` and credentials."""
    from lakehouse.aws import make_client

    region = kwargs.pop("region_name", None)
    return make_client(
        service,
        region=region,
        endpoint_url=endpoint_url,
        connect_timeout_s=min(timeout_s, 10.0),
        read_timeout_s=timeout_s,
        max_attempts=3,
        **kwargs,
    )


class _BatchingSink:
    """Groups records into requests within the service limits and sends each with retries."""

    service = ""
    max_records = 0
    max_request_bytes = 0
    max_record_bytes = 0
    count_key = False

    def __init__(
        self, stream: str, client: Any, retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if not stream:
            raise SinkError(
                f"the {self.service} sink needs a stream name: pass --stream NAME or set {self.service}_stream "
                f"(`lakehouse infra outputs --stack NAME` writes it for a deployed stack)"
            )
        self._stream = stream
        self._client = client
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._jitter = random.Random()
        self._entries: list[tuple[bytes, str]] = []
        self._bytes = 0
        self.stats = SinkStats(sink=self.service, destination=stream)

    def send(self, lines: Sequence[str], arrival_ms: np.ndarray, keys: Sequence[str], sizes: np.ndarray) -> None:
        for line, key in zip(lines, keys, strict=True):
            data = (line + "\n").encode()
            size = len(data) + (len(key.encode()) if self.count_key else 0)
            if size > self.max_record_bytes:
                raise SinkError(
                    f"a {size}-byte record for {self.service} stream '{self._stream}' (key {key}) is over the "
                    f"{self.max_record_bytes}-byte record limit; readings are far smaller, so the line is "
                    f"corrupt: {line[:80]!r}..."
                )
            if len(self._entries) >= self.max_records or self._bytes + size > self.max_request_bytes:
                self._put(self._entries)
                self._entries, self._bytes = [], 0
            self._entries.append((data, key))
            self._bytes += size

    def close(self) -> SinkStats:
        if self._entries:
            self._put(self._entries)
            self._entries, self._bytes = [], 0
        return self.stats

    def abort(self) -> None:
        self._entries, self._bytes = [], 0

    # Subclasses: one request, and the error code (or None) of each entry in the response.
    def _request(self, entries: list[tuple[bytes, str]]) -> list[str | None]:
        raise NotImplementedError

    def _put(self, entries: list[tuple[bytes, str]]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        deadline = time.monotonic() + self._retry.max_seconds
        pending = entries
        attempt = 0
        while True:
            self.stats.requests += 1
            detail = ""
            try:
                codes = self._request(pending)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code, detail = error.get("Code", "ClientError"), error.get("Message", str(exc))
                if code not in _RETRYABLE_CODES:
                    raise SinkError(
                        f"{self.service} stream '{self._stream}' refused a request: {code}: {detail}. Check "
                        f"that the stream exists in this region and that the credentials may write to it."
                    ) from exc
                codes = [code] * len(pending)
            except BotoCoreError as exc:  # connection refused, timeouts: the request may not have arrived
                codes, detail = [type(exc).__name__] * len(pending), str(exc)
            failed = [entry for entry, code in zip(pending, codes, strict=True) if code]
            self.stats.records += len(pending) - len(failed)
            self.stats.bytes += sum(len(data) for (data, _), code in zip(pending, codes, strict=True) if not code)
            if not failed:
                return
            self.stats.error_codes.update(code for code in codes if code)
            top = Counter(code for code in codes if code).most_common(1)[0][0]
            delay = self._retry.delay(attempt, self._jitter)
            if time.monotonic() + delay > deadline:
                raise SinkError(
                    f"{self.service} stream '{self._stream}': {len(failed)} of {len(entries)} records still "
                    f"rejected after {attempt + 1} attempts in {self._retry.max_seconds:g} s (last error: "
                    f"{top}{': ' + detail if detail else ''}). Give the stream more capacity (shards, or "
                    f"on-demand mode), lower --rate, or allow more time with --max-retry-seconds."
                )
            self.stats.retried_records += len(failed)
            self._sleep(delay)
            attempt += 1
            pending = failed


class KinesisSink(_BatchingSink):
    """``PutRecords``: at most 500 records and 5 MiB (data + partition keys) per call, 1 MiB per record.

    A record is one line with its newline, so a Firehose delivery stream reading the Kinesis stream
    writes newline-delimited JSON. The partition key is the device id, so a device's readings share a
    shard; a retried record can land after later records of its device (readings carry ``seq``).
    """

    service = "kinesis"
    max_records = KINESIS_MAX_RECORDS
    max_request_bytes = KINESIS_MAX_REQUEST_BYTES
    max_record_bytes = KINESIS_MAX_RECORD_BYTES
    count_key = True

    def _request(self, entries: list[tuple[bytes, str]]) -> list[str | None]:
        response = self._client.put_records(
            StreamName=self._stream, Records=[{"Data": data, "PartitionKey": key} for data, key in entries]
        )
        return [r.get("ErrorCode") for r in response["Records"]]


class FirehoseSink(_BatchingSink):
    """``PutRecordBatch``: at most 500 records and 4 MiB per call, 1,000 KiB per record."""

    service = "firehose"
    max_records = FIREHOSE_MAX_RECORDS
    max_request_bytes = FIREHOSE_MAX_REQUEST_BYTES
    max_record_bytes = FIREHOSE_MAX_RECORD_BYTES

    def _request(self, entries: list[tuple[bytes, str]]) -> list[str | None]:
        response = self._client.put_record_batch(
            DeliveryStreamName=self._stream, Records=[{"Data": data} for data, _ in entries]
        )
        return [r.get("ErrorCode") for r in response["RequestResponses"]]


# ---- MQTT: a device fleet publishing to a broker ---------------------------------------------------------
class MqttSink:
    """Publishes each line as one QoS 1 message on ``topic`` (``{site}`` and ``{device}`` filled from the
    registry by the line's device id), as a fleet of devices would, through one client.

    At most ``window`` messages wait for the broker's PUBACK (MQTT message ids are 16 bits, and a client
    keeps every unacknowledged message); ``close`` waits for all of them, up to ``timeout_s`` each. A
    broker that goes away meanwhile is reconnected and the waiting messages sent again (paho's queue).
    """

    def __init__(self, client: Any, broker: str, topic: str, window: int = 10_000, timeout_s: float = 120.0) -> None:
        self._client = client
        self._topic = topic
        self._window = window
        self._timeout_s = timeout_s
        self._pending: deque = deque()
        self._sites: dict[str, str] = {}
        self.stats = SinkStats(sink="mqtt", destination=f"{broker} {topic}")

    def _topic_for(self, key: str) -> str:
        site = self._sites.get(key)
        if site is None:
            from lakehouse.registry import REGISTRY_SIZE, device

            suffix = key.rsplit("-", 1)[-1]
            index = int(suffix) if suffix.isdigit() else 0
            site = self._sites[key] = device(index).site_id if 1 <= index <= REGISTRY_SIZE else "unknown"
        return self._topic.format(site=site, device=key or "unknown")

    def send(self, lines: Sequence[str], arrival_ms: np.ndarray, keys: Sequence[str], sizes: np.ndarray) -> None:
        for line, key in zip(lines, keys, strict=True):
            while len(self._pending) >= self._window:
                self._wait(self._pending.popleft())
            data = line.encode()
            self._pending.append(self._client.publish(self._topic_for(key), data, qos=1))
            self.stats.records += 1
            self.stats.bytes += len(data)

    def _wait(self, info: Any) -> None:
        from ingestion.mqtt_client import wait_published

        if not wait_published(info, self._timeout_s):
            raise SinkError(
                f"mqtt {self.stats.destination}: the broker did not acknowledge a message within "
                f"{self._timeout_s:g} s; check that it runs and accepts this client (--broker, credentials)"
            )

    def close(self) -> SinkStats:
        while self._pending:
            self._wait(self._pending.popleft())
        self._client.disconnect()
        self._client.loop_stop()
        return self.stats

    def abort(self) -> None:
        self._pending.clear()
        self._client.disconnect()
        self._client.loop_stop()


def mqtt_sink(settings: Any, producer: str, broker: str | None = None, topic: str | None = None) -> MqttSink:
    """An :class:`MqttSink` connected to ``broker`` (default: the ``mqtt_broker`` setting)."""
    import threading as _threading

    from ingestion.mqtt_client import connect, mqtt_client, parse_broker, uses_tls

    address = parse_broker(broker or settings.mqtt_broker, tls=uses_tls(settings))
    # A fresh session per run: the client itself keeps (and sends again) what the broker has not acknowledged.
    client = mqtt_client(settings, f"{producer}-publisher-{uuid.uuid4().hex[:6]}", persistent=False)
    client.max_inflight_messages_set(1000)
    connected = _threading.Event()
    client.on_connect = lambda _c, _u, _f, reason, _p: connected.set() if not reason.is_failure else None
    connect(client, settings, address, persistent=False)
    client.loop_start()
    if not connected.wait(30):
        client.loop_stop()
        raise SinkError(
            f"mqtt: could not connect to the broker {address} within 30 s; check --broker, that the broker runs, "
            f"and the credentials (LAKEHOUSE_MQTT_USERNAME, ..._PASSWORD, TLS files)"
        )
    pattern = topic or "sites/{site}/devices/{device}/readings"
    return MqttSink(client, str(address), pattern)


@dataclass(frozen=True)
class SinkOptions:
    """Settings of the sinks, as ``lakehouse produce`` and ``lakehouse replay`` take them."""

    buffer_bytes: int = MIB
    buffer_seconds: float = 60.0
    s3_uri: str | None = None  # lake root for the s3 sink (default: the lake, if it is on S3)
    stream: str | None = None  # Kinesis stream or Firehose delivery stream
    endpoint_url: str | None = None
    region: str | None = None  # None: boto3's own (AWS_DEFAULT_REGION, profile)
    timeout_seconds: float = 30.0
    max_retry_seconds: float = 120.0
    mqtt_broker: str | None = None  # HOST:PORT (default: the mqtt_broker setting)
    mqtt_topic: str | None = None  # a pattern with {site} and {device}


def make_sink(name: str, lake: Lake, producer: str, options: SinkOptions | None = None, settings: Any = None) -> Sink:
    """The sink called ``name`` (one of :data:`SINKS`) with real backends (``settings``: for mqtt's broker,
    protocol and credentials)."""
    from lakehouse.storage import S3Storage, storage_for

    options = options or SinkOptions()
    region = {"region_name": options.region} if options.region else {}
    if name == "mqtt":
        from lakehouse.config import Settings

        return mqtt_sink(settings or Settings(lake=lake.root), producer, options.mqtt_broker, options.mqtt_topic)
    if name == "landing":
        return LandingSink(lake, storage_for(lake.root), producer, options.buffer_bytes, options.buffer_seconds)
    if name == "s3":
        root = options.s3_uri or (None if lake.is_local else lake.root)
        if root is None or not root.startswith(("s3://", "s3a://")):
            raise SinkError(
                f"the s3 sink writes to an S3 prefix, but the lake is {lake.root} and no --s3-uri was given; "
                f"pass --s3-uri s3://bucket/prefix (files go under <prefix>/landing/readings/)"
            )
        client = aws_client("s3", options.endpoint_url, options.timeout_seconds, **region)
        return LandingSink(
            Lake(root), S3Storage(client), producer, options.buffer_bytes, options.buffer_seconds, name="s3"
        )
    retry = RetryPolicy(max_seconds=options.max_retry_seconds)
    if name == "kinesis":
        return KinesisSink(
            options.stream or "", aws_client("kinesis", options.endpoint_url, options.timeout_seconds, **region), retry
        )
    if name == "firehose":
        return FirehoseSink(
            options.stream or "", aws_client("firehose", options.endpoint_url, options.timeout_seconds, **region), retry
        )
    raise SinkError(f"unknown sink '{name}'; choose one of: {', '.join(SINKS)}")
