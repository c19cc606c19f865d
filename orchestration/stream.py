"""``lakehouse stream``: continuous mode. Bronze lands every few seconds; silver and gold follow in dbt
micro-cycles.

Two threads share the work:

- the **main thread** runs the bronze job as a Spark streaming query with a processing-time trigger
  (:func:`spark.bronze_job.run_bronze` with ``continuous=True``); every batch it publishes is handed over
  (its manifest) through ``on_batch``;
- the **micro-cycle thread** runs, whenever new bronze batches were published and at most every
  ``dbt_every_s``, the steps of a cycle after bronze: gate bronze (the new batches), silver, gate silver
  (the batches' event dates), gold, gate gold (:class:`orchestration.cycle.CycleSteps`, the code
  ``lakehouse run`` uses). Only this thread runs dbt and the gates, so only it writes the DuckDB
  warehouse (DuckDB has a single writer). Each micro-cycle goes to ``ops_runs`` with mode ``stream`` and
  the bronze batch ids it covered; a failed gate marks it failed and alerts, and the stream goes on.

Micro-cycles build models only; the dbt seeds (unit conversions) are reloaded by the first
micro-cycle and then every ``seeds_every_s``. The stream holds the lake's cycle lock from start to end
(the bronze checkpoint and the warehouse are not to be shared): ``lakehouse run``, ``schedule`` and
``backfill`` on the same lake wait for it or refuse.

Stopping: SIGTERM or Ctrl-C stops the query after its current batch (the bronze job's own handler), then
the micro-cycle thread finishes its current step and skips the rest of that micro-cycle; a second signal
interrupts at once. ``max_cycles``, ``duration_s`` or the ``stop`` event stop it the same way. Batches
published after the last micro-cycle are picked up by the next cycle or stream (silver rebuilds every
device-day whose bronze rows are not all classified).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lakehouse import ops
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError, StepFailed
from lakehouse.shutdown import restore_signals, stop_on_signals
from orchestration.cycle import CycleReport, CycleSteps, Echo, StepResult, record

# What SIGTERM / Ctrl-C says it does before the stream stops.
STOPPING = "stopping bronze, then the current micro-cycle step"

MICRO_CYCLE_STEPS = ("gate_bronze", "silver", "gate_silver", "gold", "gate_gold")
# Between seed loads, a micro-cycle builds only what new readings change: the incremental silver table and
# the views over it, then the readings' gold models (not the seeds, not other sources' models), without
# dbt's data tests (the GX gates validate every micro-cycle; the data tests run with the seeds).
MICRO_SELECTION = {
    "silver": "silver_classified_readings+,tag:silver",
    "gold": "silver_classified_readings+,tag:gold",
}


@dataclass(frozen=True)
class StreamOptions:
    interval_s: float = 2.0  # bronze trigger interval
    dbt_every_s: float = 4.0  # at most one micro-cycle per this many seconds
    seeds_every_s: float = 3600.0  # reload the dbt seeds this often
    max_cycles: int | None = None  # stop after this many micro-cycles
    duration_s: float | None = None  # stop after this many seconds
    retries: int = 1  # of a failed silver or gold step within a micro-cycle
    backoff_s: float = 2.0
    # An ingestion.mqtt_bridge.BridgeOptions: run the MQTT bridge beside bronze, so that readings published
    # on MQTT reach gold in continuous mode (None: no bridge).
    mqtt: Any = None


@dataclass
class StreamReport:
    started_at: datetime
    cycles: list[CycleReport] = field(default_factory=list)
    batches: list = field(default_factory=list)  # bronze manifests, in publishing order
    unprocessed_batch_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0
    failure: str | None = None

    def summary(self) -> str:
        failed = sum(1 for c in self.cycles if not c.success)
        lines = sum(b.lines for b in self.batches)
        rows = sum(b.bronze_rows for b in self.batches)
        quarantined = sum(b.quarantine_rows for b in self.batches)
        text = (
            f"stream: stopped after {self.seconds:.0f} s: {len(self.batches)} bronze batch(es), {lines:,} line(s) "
            f"-> {rows:,} bronze row(s), {quarantined:,} quarantined; {len(self.cycles)} micro-cycle(s), "
            f"{failed} failed"
        )
        if self.unprocessed_batch_ids:
            text += (
                f"\nstream: bronze batch(es) {_ids(self.unprocessed_batch_ids)} are not in silver yet; the next "
                "`lakehouse run`, schedule or stream builds them"
            )
        return text


def run_stream(
    settings: Settings,
    options: StreamOptions,
    *,
    echo: Echo = print,
    spark=None,
    stop: threading.Event | None = None,
) -> StreamReport:
    """Run the stream until a signal, ``stop``, ``max_cycles`` or ``duration_s``; see the module docstring.

    Call it from the main thread (the bronze job installs signal handlers). Raises ``LockHeld`` when a
    cycle, schedule or backfill holds the lake, ``StepFailed`` when the bronze query fails.
    """
    from orchestration.schedule import cycle_lock

    if threading.current_thread() is not threading.main_thread():
        raise LakehouseError("run_stream must run in the main thread: the bronze job installs signal handlers")
    stop = stop or threading.Event()
    report = StreamReport(started_at=datetime.now(UTC))
    started = time.monotonic()
    with cycle_lock(settings, wait=False):
        previous = stop_on_signals(stop, echo, "stream", STOPPING)
        own_spark = spark is None
        bridge = None
        try:
            if options.mqtt is not None:
                from ingestion.mqtt_bridge import BridgeThread

                bridge = BridgeThread(settings, options.mqtt, echo=echo).start()
            echo(
                f"stream: lake {settings.lake_root.root}; bronze every {options.interval_s:g} s, micro-cycles at "
                f"most every {options.dbt_every_s:g} s, seeds every {options.seeds_every_s:g} s"
            )
            if own_spark:
                from spark.session import build_session

                echo("stream: starting Spark ...")
                spark = build_session(settings)
            cycles = _MicroCycles(settings, options, report, echo, spark, stop, started)
            worker = threading.Thread(target=cycles.run, name="micro-cycles", daemon=True)
            worker.start()
            try:
                from spark.bronze_job import run_bronze

                echo(f"stream: bronze query starting (trigger every {options.interval_s:g} s)")
                with _SignalsOffTheMainThread(cycles.on_signal), _quiet_py4j_reentry(cycles):
                    try:
                        run_bronze(
                            settings,
                            continuous=True,
                            interval=f"{options.interval_s:g} seconds",
                            spark=spark,
                            on_batch=cycles.add_batch,
                        )
                    finally:
                        cycles.bronze_stopped.set()
            except Exception as exc:
                if cycles.stopped_by_us and _is_py4j_reentry(exc):
                    # The bronze job's own signal handler ran after the watcher had stopped the query, and
                    # failed re-entering py4j (see _SignalsOffTheMainThread): the query itself stopped cleanly.
                    echo("stream: bronze query stopped")
                else:  # the query failed: stop the micro-cycles, then report it
                    report.failure = f"the bronze query failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            finally:
                cycles.bronze_stopped.set()
                stop.set()
                stop_on_signals(stop, echo, "stream", STOPPING)  # from now on a signal interrupts at once
                if worker.is_alive():
                    echo("stream: bronze stopped; finishing the current micro-cycle step")
                while worker.is_alive():
                    worker.join(0.5)
            report.unprocessed_batch_ids = cycles.pending_ids()
        finally:
            if bridge is not None:  # after bronze: what it writes now lands in the next run
                echo(bridge.close().summary())
            restore_signals(previous)
            if own_spark and spark is not None:
                spark.stop()
    report.seconds = time.monotonic() - started
    if report.failure:
        raise StepFailed(f"{report.failure}\n{report.summary()}")
    return report


class _MicroCycles:
    """The micro-cycle thread: collects published batches, runs micro-cycles, stops the query when done."""

    def __init__(
        self,
        settings: Settings,
        options: StreamOptions,
        report: StreamReport,
        echo: Echo,
        spark,
        stop: threading.Event,
        started: float,
    ) -> None:
        self.settings = settings
        self.options = options
        self.report = report
        self.echo = echo
        self.spark = spark
        self.stop = stop
        self.started = started
        self.bronze_stopped = threading.Event()
        self.stopped_by_us = False  # the query was stopped by this stream (a signal, a limit), not by a failure
        self._lock = threading.Lock()
        self._pending: list = []
        self._seeds_loaded_at: float | None = None

    def add_batch(self, manifest) -> None:
        """``on_batch`` of the bronze job (called on Spark's callback thread once a batch is published)."""
        with self._lock:
            self._pending.append(manifest)
            self.report.batches.append(manifest)
        dates = ", ".join(manifest.event_dates) or "-"
        self.echo(
            f"stream: bronze batch {manifest.batch_id}: {manifest.lines:,} line(s) -> {manifest.bronze_rows:,} "
            f"bronze, {manifest.quarantine_rows:,} quarantined; event dates {dates}"
        )

    def pending_ids(self) -> list[int]:
        with self._lock:
            return [m.batch_id for m in self._pending]

    def _take(self) -> list:
        with self._lock:
            taken, self._pending = self._pending, []
            return taken

    def run(self) -> None:
        last_start = float("-inf")
        while not self.stop.is_set():
            if self._limit_reached():
                break
            due = time.monotonic() - last_start >= self.options.dbt_every_s
            if due and self.pending_ids():
                last_start = time.monotonic()
                self._micro_cycle(self._take())
                continue
            self.stop.wait(0.2)
        self.stop.set()
        self._stop_query()

    def _limit_reached(self) -> bool:
        o = self.options
        if o.max_cycles is not None and len(self.report.cycles) >= o.max_cycles:
            self.echo(f"stream: {o.max_cycles} micro-cycle(s) done, stopping")
            return True
        if o.duration_s is not None and time.monotonic() - self.started >= o.duration_s:
            self.echo(f"stream: ran for {o.duration_s:g} s, stopping")
            return True
        return False

    def on_signal(self, signum: int) -> None:
        """SIGTERM or Ctrl-C while bronze runs (see _SignalsOffTheMainThread): stop the query now and let
        the current micro-cycle step finish."""
        if not self.stop.is_set():
            name = signal.Signals(signum).name
            self.echo(f"stream: {name}: stopping bronze after its current batch, then the current micro-cycle step")
            self.stop.set()
        self._stop_query()

    def _stop_query(self) -> None:
        """Stop the bronze query (it may still be starting: wait for it, or for the bronze job to end)."""
        from spark.bronze_job import JOB

        while not self.bronze_stopped.is_set():
            query = next((q for q in self.spark.streams.active if q.name == JOB), None)
            if query is not None:
                self.stopped_by_us = True
                query.stop()
                return
            self.bronze_stopped.wait(0.5)

    def _micro_cycle(self, batches: list) -> None:
        report = CycleReport(
            run_id=ops.new_run_id(),
            started_at=datetime.now(UTC),
            bronze_batch_ids=[m.batch_id for m in batches],
        )
        now = time.monotonic()
        with_seeds = self._seeds_loaded_at is None or now - self._seeds_loaded_at >= self.options.seeds_every_s
        steps = _MicroCycleSteps(
            self.settings,
            report,
            self.echo,
            self.spark,
            selection=None if with_seeds else MICRO_SELECTION,
            event_dates=sorted({d for m in batches for d in m.event_dates}),
            data_tests=with_seeds,  # dbt's data tests with the seeds; the gates on every micro-cycle
        )
        self.echo(
            f"[{report.run_id}] micro-cycle for bronze batch(es) {_ids(report.bronze_batch_ids)}"
            + (" (with seeds)" if with_seeds else "")
        )
        try:
            steps.run_steps(
                MICRO_CYCLE_STEPS,
                should_stop=self.stop.is_set,
                retries=self.options.retries,
                backoff_s=self.options.backoff_s,
            )
            if with_seeds and report.success:
                self._seeds_loaded_at = now
            steps.send_alerts()
            record(self.settings, report, mode="stream")
        except Exception as exc:  # noqa: BLE001 - a micro-cycle's failure never ends the stream
            report.failure = report.failure or f"{type(exc).__name__}: {exc}"
            self.echo(f"[{report.run_id}] micro-cycle could not finish: {report.failure}")
        self.report.cycles.append(report)
        seconds = (datetime.now(UTC) - report.started_at).total_seconds()
        status = "ok" if report.success else f"FAILED: {report.failure.splitlines()[0]}"
        self.echo(f"[{report.run_id}] micro-cycle {status} in {seconds:.1f} s")


class _MicroCycleSteps(CycleSteps):
    """A cycle's steps after bronze; the gold gate, like the silver gate, checks only the event dates of
    the micro-cycle's batches (of those gold holds), so that its cost does not grow with the lake."""

    def _gate_gold(self) -> StepResult:
        if self.settings.lake_root.is_local and self.event_dates:
            import duckdb

            sql = (
                "select distinct cast(hour_at as date) from gold.gold_sensor_metrics_hourly union "
                "select distinct event_date from silver.silver_readings"
            )
            with duckdb.connect(str(self.settings.lake_root.warehouse), read_only=True) as con:
                present = {str(row[0]) for row in con.execute(sql).fetchall()}
            self.gold_partitions = sorted(present & set(self.event_dates)) or None
        return super()._gate_gold()


class _SignalsOffTheMainThread:
    """While the bronze job runs, SIGTERM and SIGINT stop its query from a watcher thread.

    The main thread waits inside a py4j call (``awaitTermination``) while the query runs. The bronze
    job's own handler calls ``query.stop()`` from the main thread, which re-enters that thread's pinned
    py4j connection in the middle of its read and fails ("reentrant call") before anything is stopped.
    So the main thread blocks the two signals (the kernel delivers them to another thread), the wakeup
    fd tells the watcher, and the watcher stops the query through its own connection. Python still runs
    the bronze job's handler in the main thread when the wait returns; its re-entry error is expected
    then and recognised (``_is_py4j_reentry``): the query had already stopped cleanly.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        self.on_signal = on_signal
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)
        self._read.settimeout(0.5)
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="stream-signals", daemon=True)

    def __enter__(self) -> _SignalsOffTheMainThread:
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._watcher.start()
        signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        return self

    def __exit__(self, *_exc) -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)
        signal.set_wakeup_fd(self._previous_fd)
        self._done.set()
        self._watcher.join()
        self._read.close()
        self._write.close()

    def _watch(self) -> None:
        while not self._done.is_set():
            try:
                data = self._read.recv(16)
            except TimeoutError:
                continue
            except OSError:
                return
            for signum in data:
                if signum in self.SIGNALS:
                    self.on_signal(signum)


@contextmanager
def _quiet_py4j_reentry(cycles: _MicroCycles) -> Iterator[None]:
    """Drop py4j's tracebacks of the expected re-entry (logged to the root logger) once we stopped the query."""

    def keep(record: logging.LogRecord) -> bool:
        return not (cycles.stopped_by_us and record.getMessage().startswith("Exception while sending command"))

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _is_py4j_reentry(exc: BaseException) -> bool:
    """A py4j connection error (not a failure of the query, which Spark raises as a StreamingQueryException)."""
    try:
        from py4j.protocol import Py4JError
    except ImportError:
        return False
    return isinstance(exc, Py4JError) and "StreamingQueryException" not in str(exc)


def _ids(ids: list[int]) -> str:
    if len(ids) > 6:
        return f"{ids[0]}..{ids[-1]} ({len(ids)})"
    return ", ".join(str(i) for i in ids)
