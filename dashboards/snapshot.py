"""A private copy of the warehouse for the dashboard, taken only while no process writes it.

DuckDB lets one process write a database file, and while any other process has the file open, even
read-only, the writer cannot open it: a dashboard holding a read-only connection at the moment dbt starts
would fail the cycle. So the dashboard never opens the warehouse. It asks the operating system whether a
process holds DuckDB's write lock (``fcntl(F_GETLK)``: a question, not a lock), copies the file when none
does, checks afterwards that no writer came and nothing changed during the copy, and reads the copy.
While dbt builds, the dashboard keeps showing the previous copy and says so.

Each copy lives in its own folder (``<directory>/<n>/warehouse.duckdb``); older copies are deleted when a
newer one is in place (connections still open on them keep working until they close).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lakehouse.errors import LakehouseError

# struct flock as the kernel lays it out (64-bit off_t). Linux: type, whence, start, len, pid (+ padding);
# macOS: start, len, pid, type, whence.
_FLOCK_LAYOUTS = {
    "linux": ("hhqqi4x", lambda values: (values[0], values[4])),
    "darwin": ("qqihh", lambda values: (values[3], values[2])),
}


def writer_pid(database: Path) -> int | None:
    """The id of the process that holds DuckDB's write lock on ``database``, or None; takes no lock.

    DuckDB locks the whole file with ``fcntl``: a write lock for a read-write connection, a read lock for
    a read-only one. ``F_GETLK`` asks whether a read lock could be placed, which only a write lock
    prevents. POSIX drops every lock a process holds on a file when it closes any descriptor of that
    file, so call this only from a process that does not itself open the database (the dashboard never
    does).
    """
    layout = _FLOCK_LAYOUTS.get("darwin" if sys.platform == "darwin" else sys.platform)
    if layout is None:
        raise LakehouseError(
            f"the dashboard asks the operating system for DuckDB's write lock with fcntl, which it knows for "
            f"Linux and macOS, not for platform '{sys.platform}'; run `lakehouse dashboard` on Linux or macOS"
        )
    fmt, pick = layout
    if sys.platform == "darwin":
        request = struct.pack(fmt, 0, 0, 0, fcntl.F_RDLCK, os.SEEK_SET)
    else:
        request = struct.pack(fmt, fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
    fd = os.open(database, os.O_RDONLY)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, request)
    finally:
        os.close(fd)
    lock_type, pid = pick(struct.unpack(fmt, answer))
    return None if lock_type == fcntl.F_UNLCK else pid


@dataclass(frozen=True)
class FileState:
    """What identifies a version of the warehouse on disk: the database file and its write-ahead log."""

    inode: int
    size: int
    mtime_ns: int
    wal_size: int | None
    wal_mtime_ns: int | None


def file_state(database: Path) -> FileState | None:
    try:
        stat = database.stat()
    except FileNotFoundError:
        return None
    wal = _wal(database)
    wal_stat = wal.stat() if wal.exists() else None
    return FileState(
        stat.st_ino,
        stat.st_size,
        stat.st_mtime_ns,
        wal_stat.st_size if wal_stat else None,
        wal_stat.st_mtime_ns if wal_stat else None,
    )


def _wal(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


@dataclass(frozen=True)
class Snapshot:
    path: Path  # the copy to read
    version: int  # increases with every copy this process takes
    taken_at: datetime  # when the copy was taken (UTC)
    source: FileState  # the warehouse file it copies


@dataclass(frozen=True)
class RefreshResult:
    status: str  # copied | unchanged | busy | changed | missing | unreadable | throttled
    snapshot: Snapshot | None  # what the dashboard reads now (the previous copy unless status is copied)
    writer_pid: int | None = None  # the process writing the warehouse, when status is busy
    detail: str = ""

    @property
    def message(self) -> str:
        """One line for the page: how current the data shown is."""
        shown = (
            f"data as of the warehouse copy taken {self.snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC"
            if self.snapshot
            else "no copy of the warehouse yet"
        )
        if self.status == "busy":
            return f"dbt is writing the warehouse (process {self.writer_pid}); showing the {shown}"
        if self.status == "changed":
            return f"the warehouse changed while it was copied; showing the {shown}, retrying shortly"
        if self.status == "missing":
            return f"no warehouse yet ({self.detail}); run `lakehouse demo` or `lakehouse run`"
        if self.status == "unreadable":
            return f"the latest copy could not be read ({self.detail}); showing the {shown}"
        return shown[0].upper() + shown[1:]


class WarehouseSnapshot:
    """Keeps a readable copy of ``warehouse`` in ``directory``; thread-safe (Streamlit runs sessions in
    threads). ``refresh`` is cheap when nothing changed: two ``stat`` calls."""

    def __init__(self, warehouse: Path, directory: Path, min_interval_s: float = 2.0) -> None:
        self.warehouse = Path(warehouse)
        self.directory = Path(directory)
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._current: Snapshot | None = None
        self._last_check = float("-inf")
        self._last_result: RefreshResult | None = None

    @property
    def current(self) -> Snapshot | None:
        return self._current

    def refresh(self, force: bool = False) -> RefreshResult:
        """Copy the warehouse if it changed and nobody writes it; else keep the current copy."""
        with self._lock:
            now = time.monotonic()
            if not force and self._last_result is not None and now - self._last_check < self.min_interval_s:
                return self._last_result
            self._last_check = now
            self._last_result = self._refresh()
            return self._last_result

    def _refresh(self) -> RefreshResult:
        before = file_state(self.warehouse)
        if before is None:
            return RefreshResult("missing", self._current, detail=f"{self.warehouse} does not exist")
        if self._current is not None and self._current.source == before:
            return RefreshResult("unchanged", self._current)
        pid = writer_pid(self.warehouse)
        if pid is not None:
            return RefreshResult("busy", self._current, writer_pid=pid)
        version = (self._current.version if self._current else 0) + 1
        target = self.directory / str(version) / "warehouse.duckdb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.warehouse, target)
        if _wal(self.warehouse).exists():
            shutil.copyfile(_wal(self.warehouse), _wal(target))
        after_pid = writer_pid(self.warehouse)
        if after_pid is not None or file_state(self.warehouse) != before:
            shutil.rmtree(target.parent, ignore_errors=True)
            return RefreshResult("changed", self._current, writer_pid=after_pid)
        problem = _check_readable(target)
        if problem:
            shutil.rmtree(target.parent, ignore_errors=True)
            return RefreshResult("unreadable", self._current, detail=problem)
        previous, self._current = self._current, Snapshot(target, version, datetime.now(UTC), before)
        if previous is not None:
            shutil.rmtree(previous.path.parent, ignore_errors=True)
        return RefreshResult("copied", self._current)

    def close(self) -> None:
        """Delete every copy (the dashboard is stopping)."""
        with self._lock:
            self._current = None
            shutil.rmtree(self.directory, ignore_errors=True)


def _check_readable(copy: Path) -> str:
    """Empty when DuckDB can open the copy and read its catalog, else what went wrong."""
    import duckdb

    try:
        with duckdb.connect(str(copy), read_only=True) as con:
            con.execute("select count(*) from information_schema.tables").fetchall()
    except duckdb.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""
