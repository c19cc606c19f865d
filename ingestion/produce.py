"""``produce``: run the fleet simulator into a sink, write the labels, report what was sent.

Callable without the CLI::

    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig
    report = produce(settings, FleetConfig(devices=50, readings=100_000, dirty_rate=0.01,
                                           start=datetime(2025, 1, 1, tzinfo=UTC), seed=7))
    print(report.summary())

Labels (what was injected) go beside the data: see :mod:`ingestion.labels`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ingestion.dirty import DIRTY_KINDS
from ingestion.labels import write_labels
from ingestion.simulator import Batch, FleetConfig, Simulation, SimulationStats, default_start
from ingestion.sinks import Sink, SinkOptions, SinkStats, make_sink
from lakehouse.config import Settings


@dataclass
class ProduceReport:
    """What a run sent. Counts are of readings (device measurements) and lines (what the sink got)."""

    sink: str
    destination: str
    start: str
    end: str
    seed: int
    producer: str
    devices: int
    readings: int
    lines: int
    clean: int
    dirty: dict[str, int]
    faults: dict[str, int]
    files: int
    bytes: int
    seconds: float
    requests: int = 0
    retried_records: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def dirty_lines(self) -> int:
        return sum(self.dirty.values())

    @property
    def readings_per_second(self) -> float:
        return self.readings / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        """The report as the CLI prints it: counts, rates, kinds of dirty records and faults."""
        lines = [
            f"produced {self.readings:,} readings from {self.devices} devices as {self.lines:,} lines "
            f"in {self.seconds:.1f} s ({self.readings_per_second:,.0f} readings/s)",
            f"  simulated time  {self.start} .. {self.end} (seed {self.seed}, producer {self.producer})",
            f"  sink            {self.sink} -> {self.destination}",
        ]
        if self.files:
            lines.append(f"  files           {self.files:,} ({self.bytes / 1e6:,.1f} MB)")
        if self.requests:
            lines.append(f"  requests        {self.requests:,} ({self.retried_records:,} records retried)")
        share = self.dirty_lines / self.lines if self.lines else 0.0
        quarantined = sum(n for k, n in self.dirty.items() if DIRTY_KINDS[k].destination == "quarantine")
        lines.append(
            f"  clean lines     {self.clean:,}; dirty lines {self.dirty_lines:,} ({share:.2%}), of which "
            f"{quarantined:,} ({quarantined / self.lines if self.lines else 0:.2%}) should be quarantined"
        )
        for kind, count in self.dirty.items():
            spec = DIRTY_KINDS[kind]
            where = f"quarantine ({spec.reason})" if spec.destination == "quarantine" else "bronze, for silver"
            lines.append(f"    {kind:<21} {count:>7,}  {count / self.lines if self.lines else 0:6.2%}  -> {where}")
        hours = self.simulated_device_hours
        lines.append(f"  faults          {sum(self.faults.values()):,} over {hours:,.0f} device-hours")
        for kind, count in self.faults.items():
            lines.append(f"    {kind:<21} {count:>7,}  {count / hours if hours else 0:.3f} per device-hour")
        for what, uri in self.labels.items():
            lines.append(f"  {what + ' labels':<15} {uri}")
        return "\n".join(lines)

    @property
    def simulated_device_hours(self) -> float:
        span = datetime.fromisoformat(self.end) - datetime.fromisoformat(self.start)
        return self.devices * span.total_seconds() / 3600


ProgressCallback = Callable[[int, int, float], None]  # readings so far, lines so far, seconds


def produce(
    settings: Settings,
    config: FleetConfig,
    sink: str | Sink = "landing",
    options: SinkOptions | None = None,
    rate: float | None = None,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> ProduceReport:
    """Simulate ``config`` into ``sink`` (a name of :data:`ingestion.sinks.SINKS` or a :class:`Sink`).

    ``rate`` paces the run at that many readings per wall-clock second (``None``: as fast as possible).
    Without ``config.start`` the run ends at about ``now`` (default: the current time). Labels are
    written under ``<lake>/landing/_labels/`` whatever the sink.
    """
    if rate is not None and rate <= 0:
        raise ValueError(f"rate={rate}: readings per second must be positive (or None for as fast as possible)")
    if config.start is None:
        config = _with_start(config, default_start(config, now or datetime.now(UTC)))
    lake = settings.lake_root
    producer = f"{config.producer}-s{config.seed}"
    target = make_sink(sink, lake, producer, options, settings) if isinstance(sink, str) else sink

    simulation = Simulation(config)
    began = time.perf_counter()
    last_progress = began
    try:
        for batch in simulation:
            if rate is None:
                target.send(batch.lines, batch.arrival_ms, batch.keys, batch.sizes)
            else:
                _paced_send(target, batch, rate, began, simulation.stats.lines - len(batch))
            if progress is not None and time.perf_counter() - last_progress >= 2.0:
                last_progress = time.perf_counter()
                progress(simulation.stats.readings, simulation.stats.lines, last_progress - began)
        stats = target.close()
    except BaseException:
        target.abort()
        raise
    seconds = time.perf_counter() - began

    stamp = config.start.strftime("%Y%m%dT%H%M%SZ")
    from ingestion.ingest_files import landing_storage

    storage = landing_storage(settings)  # an S3 lake through the settings' endpoint and region
    labels = {
        "fault": write_labels(lake, f"faults-{producer}-{stamp}.ndjson", simulation.fault_labels, storage),
        "dirty": write_labels(lake, f"dirty-{producer}-{stamp}.ndjson", simulation.dirty_labels, storage),
    }
    return _report(stats, config, producer, simulation.stats, seconds, labels)


def _paced_send(target: Sink, batch: Batch, rate: float, began: float, sent_before: int) -> None:
    step = max(1, int(rate / 10))
    for lo in range(0, len(batch), step):
        hi = min(lo + step, len(batch))
        target.send(batch.lines[lo:hi], batch.arrival_ms[lo:hi], batch.keys[lo:hi], batch.sizes[lo:hi])
        due = began + (sent_before + hi) / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)


def _with_start(config: FleetConfig, start: datetime) -> FleetConfig:
    return replace(config, start=start)


def _report(
    stats: SinkStats, config: FleetConfig, producer: str, sim: SimulationStats, seconds: float, labels: dict[str, str]
) -> ProduceReport:
    if config.duration is not None:
        end = config.start + config.duration
    elif sim.last_event_ms is not None:
        end = datetime.fromtimestamp(sim.last_event_ms / 1000, tz=UTC)
    else:
        end = config.start
    return ProduceReport(
        sink=stats.sink,
        destination=stats.destination,
        start=config.start.isoformat(),
        end=end.isoformat(),
        seed=config.seed,
        producer=producer,
        devices=config.devices,
        readings=sim.readings,
        lines=sim.lines,
        clean=sim.clean_lines,
        dirty=dict(sim.dirty),
        faults=dict(sim.faults),
        files=len(stats.files),
        bytes=stats.bytes,
        seconds=seconds,
        requests=stats.requests,
        retried_records=stats.retried_records,
        labels=labels,
    )
