"""Scheduled cycles: ``--every 15m`` or ``--cron "0 * * * *"``, never two cycles at once.

The lock is an OS file lock (``flock``) on ``<lake>/_locks/cycle.lock``, so it is released by the kernel
when its holder dies, ``kill -9`` included: a crashed scheduler never leaves a stale lock behind. For an
S3 lake the lock file lives on the scheduler's host (``~/.cache/lakehouse/locks/``): run one scheduler
host per lake there.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.shutdown import stop_on_signals
from orchestration.cycle import CycleReport, Echo, run_cycle


class LockHeld(LakehouseError):
    """Another process is running a cycle on this lake."""


def lock_path(settings: Settings) -> Path:
    lake = settings.lake_root
    if lake.is_local:
        return lake.local_path("_locks", "cycle.lock")
    digest = hashlib.sha256(lake.root.encode()).hexdigest()[:16]
    return Path.home() / ".cache" / "lakehouse" / "locks" / f"{digest}.lock"


@contextmanager
def cycle_lock(
    settings: Settings, wait: bool, poll_s: float = 0.5, stop: threading.Event | None = None
) -> Iterator[None]:
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise LockHeld(
                        f"a cycle is already running on {settings.lake_root.root} ({holder}; lock {path}). "
                        "Wait for it, or pass --wait to queue behind it."
                    ) from None
                if stop is not None and stop.wait(poll_s):
                    raise LockHeld("stopped while waiting for the cycle lock") from None
                if stop is None:
                    time.sleep(poll_s)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- when to run -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression (minute hour day-of-month month day-of-week), in UTC."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    @classmethod
    def parse(cls, text: str) -> Cron:
        fields = text.split()
        if len(fields) != 5:
            raise LakehouseError(
                f"--cron '{text}' has {len(fields)} field(s); write five: minute hour day month weekday, "
                'e.g. "0 * * * *" (hourly) or "*/15 * * * *"'
            )
        ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
        sets = [_cron_field(f, lo, hi, text) for f, (lo, hi) in zip(fields, ranges, strict=True)]
        return cls(*sets)

    def next_after(self, moment: datetime) -> datetime:
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(366 * 24 * 60):
            if (
                candidate.minute in self.minutes
                and candidate.hour in self.hours
                and candidate.day in self.days
                and candidate.month in self.months
                and (candidate.isoweekday() % 7) in self.weekdays
            ):
                return candidate
            candidate += timedelta(minutes=1)
        raise LakehouseError("the cron expression never matches within a year")


def _cron_field(field: str, lo: int, hi: int, whole: str) -> frozenset[int]:
    values: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise LakehouseError(f"--cron '{whole}': bad step in '{field}'")
            step = int(step_text)
        if part == "*":
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                raise LakehouseError(f"--cron '{whole}': bad range '{part}'")
            start, end = int(a), int(b)
        elif part.isdigit():
            start = end = int(part)
        else:
            raise LakehouseError(f"--cron '{whole}': cannot read '{part}'")
        if not lo <= start <= end <= hi:
            raise LakehouseError(f"--cron '{whole}': '{part}' is outside {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


# --- the loop ----------------------------------------------------------------------------------------------


@dataclass
class ScheduleOptions:
    every: timedelta | None = None
    cron: Cron | None = None
    max_cycles: int | None = None
    retries: int = 2
    backoff_s: float = 5.0


def run_schedule(
    settings: Settings,
    options: ScheduleOptions,
    *,
    echo: Echo = print,
    stop: threading.Event | None = None,
    cycle: Callable[..., CycleReport] = run_cycle,
) -> list[CycleReport]:
    """Run cycles on schedule until ``stop`` is set, a signal arrives, or ``max_cycles`` have run.

    A cycle that is due while another holds the lock waits for it, so cycles queue and never overlap.
    SIGTERM and Ctrl-C let the current step finish, skip the rest of the cycle, and return.

    One Spark session serves every cycle of the process (started by the first cycle's bronze step,
    stopped on return): a cycle pays the JVM's start once, not every time. Each cycle's line says what
    its steps took; a cycle that found no new landing files says so, its time being the fixed cost of
    a cycle (query start, dbt, gates) that every scheduled cycle pays.
    """
    if (options.every is None) == (options.cron is None):
        raise LakehouseError("give exactly one of --every or --cron")
    stop = stop or threading.Event()
    _stop_on_signals(stop, echo)
    spark = _SharedSession(settings)
    try:
        return _run_cycles(settings, options, echo, stop, cycle, spark)
    finally:
        spark.stop()


class _SharedSession:
    """The process's Spark session, started when the first cycle's bronze step asks for it (a schedule
    whose cycles need no local Spark starts no JVM). Stopped at the end only if this schedule started it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = None
        self._started_here = False

    def get(self):
        if self.session is None:
            from pyspark.sql import SparkSession

            from spark.session import build_session

            self._started_here = SparkSession.getActiveSession() is None
            self.session = build_session(self.settings)
        return self.session

    def stop(self) -> None:
        if self.session is not None and self._started_here:
            self.session.stop()
        self.session = None


def cycle_timing(report: CycleReport) -> str:
    """``12.3 s (bronze 2.1, gate_bronze 0.0, silver 4.2, ...)``, and whether the increment was empty."""
    total = sum(s.seconds for s in report.steps)
    steps = ", ".join(f"{s.step} {s.seconds:.1f}" for s in report.steps if s.status != "skipped")
    text = f"{total:.1f} s ({steps})"
    bronze = next((s for s in report.steps if s.step == "bronze" and s.status == "ok"), None)
    if bronze is not None and not report.bronze_batch_ids:
        text += "; no new landing files: the fixed cost of a cycle"
    return text


def _run_cycles(settings, options, echo, stop, cycle, spark: _SharedSession) -> list[CycleReport]:
    reports: list[CycleReport] = []
    next_at = datetime.now(UTC)
    while not stop.is_set():
        wait_s = (next_at - datetime.now(UTC)).total_seconds()
        if wait_s > 0:
            echo(f"schedule: next cycle at {next_at.isoformat(timespec='seconds')}")
            if stop.wait(wait_s):
                break
        due = next_at
        try:
            with cycle_lock(settings, wait=True, stop=stop):
                report = cycle(
                    settings,
                    echo=echo,
                    should_stop=stop.is_set,
                    retries=options.retries,
                    backoff_s=options.backoff_s,
                    spark=spark.get,
                )
        except LockHeld:
            break
        reports.append(report)
        status = "ok" if report.success else f"FAILED: {report.failure.splitlines()[0]}"
        first = " (the first starts Spark)" if len(reports) == 1 else ""
        echo(f"schedule: cycle {report.run_id} {status} in {cycle_timing(report)}{first}")
        if options.max_cycles is not None and len(reports) >= options.max_cycles:
            break
        next_at = _next_time(options, due)
        # A cycle that overran its slot does not make cycles pile up: skip to the next slot in the future.
        while next_at <= datetime.now(UTC) and options.every is not None:
            next_at += options.every
    return reports


def _next_time(options: ScheduleOptions, due: datetime) -> datetime:
    if options.every is not None:
        return due + options.every
    return options.cron.next_after(max(due, datetime.now(UTC)))


def _stop_on_signals(stop: threading.Event, echo: Echo) -> None:
    if threading.current_thread() is threading.main_thread():
        stop_on_signals(stop, echo, "schedule", "finishing the current step, then stopping")
