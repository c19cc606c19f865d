"""Fixtures of the ingestion tests: settings on a fresh lake, produced runs shared by many tests, a helper
that reads what a landing reader sees, and (in the AWS tests) a moto server on 127.0.0.1."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ingestion.sinks import SinkOptions
from lakehouse.config import Settings
from lakehouse.lake import Lake
from lakehouse.storage import LocalStorage

START = datetime(2025, 3, 1, 22, 0, tzinfo=UTC)  # crosses midnight: several hour and date folders


def settings_for(lake: Path) -> Settings:
    """Settings for a lake folder, ignoring any lakehouse.toml or LAKEHOUSE_* of the machine running tests."""
    return Settings.load(env={}, cwd=lake.parent, lake=str(lake))


@pytest.fixture(scope="session")
def start() -> datetime:
    """The simulated clock's start of the shared runs: 22:00 UTC, so runs cross midnight."""
    return START


@pytest.fixture
def settings(tmp_path) -> Settings:
    return settings_for(tmp_path / "lake")


def landing_files(lake: Lake) -> dict[str, bytes]:
    """What a landing reader sees: every published file (hidden and ``_`` names excluded), by URI."""
    storage = LocalStorage()
    return {uri: storage.read_bytes(uri) for uri in storage.list(lake.landing_readings, suffix=".json")}


def landing_lines(lake: Lake) -> list[str]:
    """Every landing line in arrival order (files are named by first arrival, then numbered)."""
    files = landing_files(lake)
    ordered = sorted(files, key=lambda uri: Path(uri).name.rsplit("-", 1)[-1])
    return [line for uri in ordered for line in files[uri].decode().split("\n")[:-1]]


@dataclass
class Run:
    settings: Settings
    report: Any
    lines: list[str]
    faults: list[dict]
    dirty: list[dict]

    @cached_property
    def parsed(self) -> list[dict | None]:
        """Each line as a JSON object, or None where it is not one; aligned with ``lines``."""
        parsed = []
        for line in self.lines:
            try:
                value = json.loads(line)
            except ValueError:
                value = None
            parsed.append(value if isinstance(value, dict) else None)
        return parsed

    @cached_property
    def readings(self) -> list[dict]:
        """The lines that parse as JSON objects (for a run without dirty records: every reading)."""
        return [value for value in self.parsed if value is not None]

    @cached_property
    def by_device(self) -> dict[str, list[dict]]:
        """Readings per device id, in arrival order."""
        grouped: dict[str, list[dict]] = defaultdict(list)
        for reading in self.readings:
            if isinstance(reading.get("device_id"), str):
                grouped[reading["device_id"]].append(reading)
        return dict(grouped)


def run_produce(lake: Path, config, **kwargs) -> Run:
    """Produce into ``lake`` and read back what landed and the labels."""
    from ingestion.labels import read_labels
    from ingestion.produce import produce

    settings = settings_for(lake)
    report = produce(settings, config, **kwargs)
    return Run(
        settings=settings,
        report=report,
        lines=landing_lines(settings.lake_root),
        faults=read_labels(report.labels["fault"]),
        dirty=read_labels(report.labels["dirty"]),
    )


@pytest.fixture(scope="session")
def produce_run(tmp_path_factory) -> Callable[..., Run]:
    """Produce into a fresh lake: ``produce_run(FleetConfig(...), **produce_kwargs) -> Run``."""

    def run(config, **kwargs) -> Run:
        return run_produce(tmp_path_factory.mktemp("lake") / "lake", config, **kwargs)

    return run


@pytest.fixture(scope="session")
def clean_run(produce_run) -> Run:
    """A simulated day of 8 devices (two of every type), no dirty records, no faults; 10-minute files."""
    from ingestion.simulator import FleetConfig

    return produce_run(
        FleetConfig(devices=8, duration=timedelta(days=1), start=START, seed=11, dirty_rate=0.0, fault_rates={})
    )


@pytest.fixture(scope="session")
def faulty_run(produce_run) -> Run:
    """Twelve hours of 12 devices with many faults and no dirty records."""
    from ingestion.simulator import FleetConfig

    rates = {"spike": 0.3, "stuck": 0.1, "drift": 0.1, "dropout": 0.1, "out_of_range": 0.2}
    return produce_run(
        FleetConfig(devices=12, duration=timedelta(hours=12), start=START, seed=5, dirty_rate=0.0, fault_rates=rates),
        options=SinkOptions(buffer_seconds=3600),
    )


@pytest.fixture(scope="session")
def faultless_twin(produce_run) -> Run:
    """The faulty run without faults: same seed, so the same values wherever no fault struck."""
    from ingestion.simulator import FleetConfig

    return produce_run(
        FleetConfig(devices=12, duration=timedelta(hours=12), start=START, seed=5, dirty_rate=0.0, fault_rates={}),
        options=SinkOptions(buffer_seconds=3600),
    )


@pytest.fixture(scope="session")
def dirty_run(produce_run) -> Run:
    """30,000 readings with 5 % dirty records of every kind (and the default faults)."""
    from ingestion.simulator import FleetConfig

    return produce_run(FleetConfig(devices=40, readings=30_000, start=START, seed=3, dirty_rate=0.05))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def read_landing() -> Callable[[Lake], list[str]]:
    """``read_landing(lake) -> lines``: what a landing reader sees, in arrival order."""
    return landing_lines


@pytest.fixture(scope="session")
def read_landing_files() -> Callable[[Lake], dict[str, bytes]]:
    """``read_landing_files(lake) -> {uri: bytes}``: the published landing files."""
    return landing_files


# ---- AWS: a moto server on 127.0.0.1, and a proxy in front of it that can reject entries ----------------
AWS_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    """A moto server in server mode on 127.0.0.1 (a free port), for the whole test session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch) -> None:
    """Dummy credentials and a region for code that builds its own boto3 clients (the CLI)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_CREDENTIALS["region_name"])
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


@pytest.fixture(scope="session")
def aws_client(moto_endpoint) -> Callable[..., Any]:
    """``aws_client("kinesis")``: a boto3 client of the sinks' kind (timeouts set) on moto, or on ``endpoint``."""
    from ingestion.sinks import aws_client as build

    def client(service: str, endpoint: str | None = None) -> Any:
        return build(service, endpoint or moto_endpoint, timeout_s=10.0, **AWS_CREDENTIALS)

    return client


@dataclass
class ProxiedRequest:
    operation: str  # PutRecords or PutRecordBatch
    entries: list[bytes]
    rejected: list[int]  # positions of the entries the proxy failed
    body_bytes: int


class RejectingProxy:
    """An HTTP proxy in front of moto. For PutRecords / PutRecordBatch it forwards only the entries that
    ``reject(data)`` lets through and answers for the others with a per-entry error, as AWS does on a
    partial failure. Every such request is recorded in ``requests``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.reject: Callable[[bytes], bool] = lambda data: False
        self.requests: list[ProxiedRequest] = []
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: RejectingProxy

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    do_PUT = do_HEAD = do_DELETE = do_GET

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target", "")
        operation = target.rsplit(".", 1)[-1]
        if operation not in ("PutRecords", "PutRecordBatch"):
            self._forward(body)
            return
        request = json.loads(body)
        records = request["Records"]
        entries = [base64.b64decode(r["Data"]) for r in records]
        rejected = [i for i, data in enumerate(entries) if self.owner.reject(data)]
        self.owner.requests.append(ProxiedRequest(operation, entries, rejected, len(body)))
        kept = [r for i, r in enumerate(records) if i not in set(rejected)]
        answers: list[dict] = []
        if kept:
            status, headers, upstream = self._upstream(json.dumps({**request, "Records": kept}).encode())
            if status != 200:
                self._reply(status, headers, upstream)
                return
            answers = json.loads(upstream)["Records" if operation == "PutRecords" else "RequestResponses"]
        answers_iter = iter(answers)
        error = {
            "PutRecords": {"ErrorCode": "ProvisionedThroughputExceededException",
                           "ErrorMessage": "Rate exceeded for shard shardId-000000000000 in stream."},
            "PutRecordBatch": {"ErrorCode": "ServiceUnavailableException",
                               "ErrorMessage": "Slow down."},
        }[operation]  # fmt: skip
        merged = [dict(error) if i in set(rejected) else next(answers_iter) for i in range(len(records))]
        if operation == "PutRecords":
            response = {"FailedRecordCount": len(rejected), "Records": merged}
        else:
            response = {"FailedPutCount": len(rejected), "Encrypted": False, "RequestResponses": merged}
        self._reply(200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(response).encode())

    def _upstream(self, body: bytes) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(self.owner.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        connection.request(self.command, self.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), data

    def _forward(self, body: bytes) -> None:
        self._reply(*self._upstream(body))

    def _reply(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture
def proxy(moto_endpoint) -> RejectingProxy:
    """A :class:`RejectingProxy` in front of the moto server (rejecting nothing until told)."""
    server = RejectingProxy(moto_endpoint)
    yield server
    server.close()


# ---- MQTT: a real Mosquitto broker on a free loopback port ----------------------------------------------
@pytest.fixture
def mosquitto(tmp_path):
    """A running Mosquitto (Debian's package) with its own config and data folder, persistence on, on a free
    127.0.0.1 port; ``.stop()`` / ``.start()`` restart it on the same port and data."""
    from ingestion.mosquitto import Mosquitto

    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.kill()
