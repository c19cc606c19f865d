"""Fixtures of the ingestion tests: settings on a fresh lake, produced runs shared by many tests, a helper
that reads what a landing reader sees, and (in the AWS tests) a moto server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
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
