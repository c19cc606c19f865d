"""Replay: recorded series turned into readings and sent through a sink, as fast as possible or paced.

Input formats:

- CSV with a time column and one or more value columns, comma, semicolon or tab separated (detected from
  the header), decimal commas accepted in semicolon files: the NAB files (``timestamp,value``) or an
  export with many channels (``time;temp;hum;press``);
- newline-delimited JSON, one object per line.

Each row becomes one reading of one device: ``device_id`` (fixed, or from ``device_column``), its type
and site from the catalogue (:mod:`lakehouse.catalogue`; a device it does not know is refused with the
command that registers it, or registered with ``register_device_type``), ``event_time`` from the time
column (ISO-8601 or epoch seconds/milliseconds; naive times are UTC), ``seq`` counting from 1 per device
in time order, and the mapped metrics. Only the metrics a row has are sent (an empty cell leaves the
metric out; a row with none is skipped and counted).
Rows of all files are merged and sent in time order, which is what ``speed`` paces on. Landing files
are cut by size, and by the sending clock like Firehose: ``buffer_seconds`` of wall time, that is
``buffer_seconds * speed`` of recorded time (no time limit when replaying as fast as possible); each sits
under the UTC hour of its first reading's recorded time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ingestion.simulator import line_sizes
from ingestion.sinks import LandingSink, Sink, SinkOptions, make_sink
from lakehouse.catalogue import _IDENTIFIER, Entry, describe_key
from lakehouse.config import Settings
from lakehouse.contract import METRICS, format_event_time
from lakehouse.errors import LakehouseError

TIME_COLUMNS = ("timestamp", "event_time", "time", "datetime", "date", "ts")
CONVERSIONS: dict[str, Callable[[float], float]] = {
    "degF_to_degC": lambda v: (v - 32.0) * 5.0 / 9.0,
    "K_to_degC": lambda v: v - 273.15,
    "kPa_to_hPa": lambda v: v * 10.0,
    "Pa_to_hPa": lambda v: v / 100.0,
    "m_to_mm": lambda v: v * 1000.0,
    "cm_to_mm": lambda v: v * 10.0,
    "fraction_to_pct": lambda v: v * 100.0,
    "mps2_to_g": lambda v: v / 9.80665,
}
_BATCH = 50_000
_NO_TIME_LIMIT_S = 1e9  # about 30 years


class ReplayError(LakehouseError):
    """A recorded file cannot be replayed as asked; the message names the file, line or option, and the fix."""


@dataclass(frozen=True)
class ReplayConfig:
    """How rows become readings.

    ``mapping`` maps a source column (CSV) or key (NDJSON) to a metric of the catalogue; empty: columns
    named like a catalogue metric map to it. ``register_device_type``: devices the catalogue does not
    know are registered as this type (``installed_at`` at their first reading, ``site_id`` or
    ``unassigned``) instead of refused. ``convert`` names a unit conversion of :data:`CONVERSIONS` per source
    column. ``speed``: None replays as fast as possible, 60 replays an hour of recorded time in a minute.
    """

    device_id: str | None = None
    device_column: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    convert: Mapping[str, str] = field(default_factory=dict)
    time_column: str | None = None
    delimiter: str | None = None
    speed: float | None = None
    producer: str = "replay"
    site_id: str | None = None  # site of a device registered by the replay
    register_device_type: str | None = None

    def __post_init__(self) -> None:
        if (self.device_id is None) == (self.device_column is None):
            raise ReplayError("say whose readings these are: --device DEVICE_ID or --device-column COLUMN (one)")
        if self.device_id is not None and not _IDENTIFIER.match(self.device_id):
            raise ReplayError(
                f"--device {self.device_id}: not a device id; use letters, digits, '-', '_', '.' or ':', e.g. env-00001"
            )
        for column, name in self.convert.items():
            if name not in CONVERSIONS:
                raise ReplayError(f"--convert {column}={name}: unknown conversion; known: {', '.join(CONVERSIONS)}")
        if self.speed is not None and self.speed <= 0:
            raise ReplayError(f"--speed {self.speed}: must be positive (e.g. 60x), or 'max'")
        if not self.producer or not all(c.isalnum() or c in "-_" for c in self.producer):
            raise ReplayError(f"--producer '{self.producer}': use letters, digits, '-' and '_' (it names files)")


@dataclass
class FileCounts:
    path: str
    rows: int = 0
    readings: int = 0
    skipped: int = 0


@dataclass
class ReplayReport:
    sink: str
    destination: str
    files: list[FileCounts]
    readings: int
    devices: dict[str, int]
    first_event: str | None
    last_event: str | None
    files_written: int
    bytes: int
    seconds: float

    def summary(self) -> str:
        rate = self.readings / self.seconds if self.seconds > 0 else float("inf")
        lines = [
            f"replayed {self.readings:,} readings from {len(self.files)} file(s) in {self.seconds:.1f} s "
            f"({rate:,.0f} readings/s)",
            f"  recorded time   {self.first_event} .. {self.last_event}",
            f"  sink            {self.sink} -> {self.destination}"
            + (f" ({self.files_written:,} files, {self.bytes / 1e6:,.1f} MB)" if self.files_written else ""),
        ]
        for counts in self.files:
            lines.append(
                f"  {counts.path}: {counts.rows:,} rows -> {counts.readings:,} readings"
                + (f", {counts.skipped:,} rows without any mapped value skipped" if counts.skipped else "")
            )
        for device_id, count in sorted(self.devices.items()):
            lines.append(f"    {device_id:<12} {count:>9,} readings")
        return "\n".join(lines)


@dataclass
class _Row:
    ms: int
    device_id: str
    values: dict[str, float]


def parse_speed(text: str) -> float | None:
    """``max`` (as fast as possible), ``60x`` or ``60`` (recorded time runs 60 times faster)."""
    value = text.strip().lower()
    if value in ("max", "fast", ""):
        return None
    try:
        speed = float(value.removesuffix("x"))
    except ValueError:
        raise ReplayError(f"--speed {text}: use a factor like 60x, or max") from None
    if speed <= 0:
        raise ReplayError(f"--speed {text}: must be positive")
    return speed


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 (``2013-07-04 00:00:00``, ``...T...Z``, offsets) or epoch seconds/milliseconds; naive is UTC."""
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime.fromtimestamp(number / 1000 if abs(number) >= 1e11 else number, tz=UTC)


def replay_schedule(event_ms: np.ndarray, speed: float | None) -> np.ndarray:
    """Wall-clock seconds after the start at which each reading (sorted by time) is due."""
    if speed is None or not len(event_ms):
        return np.zeros(len(event_ms))
    return (event_ms - event_ms[0]) / 1000.0 / speed


def replay(
    settings: Settings,
    files: Sequence[str | Path],
    config: ReplayConfig,
    sink: str | Sink = "landing",
    options: SinkOptions | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> ReplayReport:
    """Read ``files``, turn their rows into readings, send them through ``sink`` in time order."""
    if not files:
        raise ReplayError("no files to replay; pass one or more CSV or NDJSON files")
    began = time.perf_counter()
    catalogue = ReplayCatalogue.load(settings)
    rows: list[_Row] = []
    counts = []
    for path in files:
        file_rows, file_counts = read_rows(Path(path), config, catalogue.metric_names)
        rows.extend(file_rows)
        counts.append(file_counts)
    rows.sort(key=lambda r: r.ms)  # stable: rows of one instant keep file order

    # Everything is checked before anything is written: a refused replay leaves the lake as it was.
    lines, keys, per_device = _render(rows, config, catalogue, files)
    arrival = np.fromiter((r.ms for r in rows), dtype=np.int64, count=len(rows))
    due = replay_schedule(arrival, config.speed)
    chunks = _chunks(due, len(lines), config.speed)
    if isinstance(sink, str):
        # Files are cut on the sending clock, as Firehose cuts on arrival: buffer_seconds of wall time is
        # buffer_seconds * speed of recorded time, and a replay as fast as possible cuts by size only.
        # The producer name carries a digest of what is sent: series that start at the same instant get
        # files of their own, and the same replay again writes the same files (left as they are).
        options = options or SinkOptions()
        window = options.buffer_seconds * config.speed if config.speed is not None else _NO_TIME_LIMIT_S
        producer = f"{config.producer}-{_digest(lines)}"
        target = make_sink(sink, settings.lake_root, producer, replace(options, buffer_seconds=window), settings)
    else:
        target = sink
    if isinstance(target, LandingSink):
        _refuse_clashes(target, lines, arrival, keys, chunks)
    catalogue.register_new_devices(settings)

    sending = time.perf_counter()
    last_progress = sending
    try:
        for lo, hi in chunks:
            if config.speed is not None:
                wait = sending + due[lo] - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            chunk = lines[lo:hi]
            target.send(chunk, arrival[lo:hi], keys[lo:hi], line_sizes(chunk))
            if progress is not None and time.perf_counter() - last_progress >= 2.0:
                last_progress = time.perf_counter()
                progress(hi, last_progress - began)
        stats = target.close()
    except BaseException:
        target.abort()
        raise
    seconds = time.perf_counter() - began
    return ReplayReport(
        sink=stats.sink,
        destination=stats.destination,
        files=counts,
        readings=len(lines),
        devices=dict(per_device),
        first_event=_fmt(rows[0].ms) if rows else None,
        last_event=_fmt(rows[-1].ms) if rows else None,
        files_written=len(stats.files),
        bytes=stats.bytes,
        seconds=seconds,
    )


def _chunks(due: np.ndarray, n: int, speed: float | None) -> list[tuple[int, int]]:
    """The slices sent together: batches of at most _BATCH; paced, the readings due within 50 ms."""
    chunks, lo = [], 0
    while lo < n:
        hi = min(lo + _BATCH, n)
        if speed is not None:
            hi = min(hi, int(np.searchsorted(due, due[lo] + 0.05, "right")))
        chunks.append((lo, hi))
        lo = hi
    return chunks


def _digest(lines: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:12]


def _refuse_clashes(
    target: LandingSink, lines: list[str], arrival: np.ndarray, keys: list[str], chunks: list[tuple[int, int]]
) -> None:
    """Cut every file first and check its name: a replay that would meet a file holding other bytes is
    refused before it writes any, so a refused replay leaves the landing zone as it was."""
    plan = target.dry_run()
    for lo, hi in chunks:
        chunk = lines[lo:hi]
        plan.send(chunk, arrival[lo:hi], keys[lo:hi], line_sizes(chunk))
    plan.close()
    clashes = target.clashes(plan.planned)
    if clashes:
        raise ReplayError(
            f"{len(clashes)} of the {len(plan.planned)} landing files this replay would write already exist with "
            f"other content (first: {clashes[0]}); nothing was written. A landing file is never overwritten "
            f"(bronze may have read it): use another --producer, or another lake"
        )


def read_rows(path: Path, config: ReplayConfig, metric_names: Sequence[str] = METRICS) -> tuple[list[_Row], FileCounts]:
    """The rows of one file that carry at least one mapped value, and the file's counts."""
    if not path.is_file():
        raise ReplayError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8-sig")
    first = next((line for line in text.splitlines() if line.strip()), "")
    is_json = path.suffix.lower() in (".json", ".ndjson", ".jsonl") or first.lstrip().startswith("{")
    records = _json_records(path, text) if is_json else _csv_records(path, text, config.delimiter)
    counts = FileCounts(str(path))
    rows: list[_Row] = []
    columns: list[str] | None = None
    for line_no, record in records:
        if columns is None:
            columns = list(record)
            time_column = _time_column(path, columns, config)
            mapping = _mapping(path, columns, config, metric_names)
        counts.rows += 1
        row = _row(path, line_no, record, time_column, mapping, config)
        if row is None:
            counts.skipped += 1
        else:
            rows.append(row)
    counts.readings = len(rows)
    return rows, counts


def _csv_records(path: Path, text: str, delimiter: str | None):
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise ReplayError(f"{path}: the file is empty; a CSV needs a header and rows")
    header = lines[header_at]
    if delimiter is None:
        delimiter = max((";", ",", "\t"), key=header.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    columns = None
    for line_no, cells in enumerate(reader, start=1):
        if not cells or not any(c.strip() for c in cells):
            continue
        if columns is None:
            columns = [c.strip() for c in cells]
            continue
        if len(cells) != len(columns):
            raise ReplayError(
                f"{path}:{line_no}: {len(cells)} cells but the header has {len(columns)} ({delimiter!r} separated); "
                f"fix the row, or pass --delimiter if the separator was guessed wrong"
            )
        yield line_no, {name: _decimal(cell, delimiter) for name, cell in zip(columns, cells, strict=True)}


def _decimal(cell: str, delimiter: str) -> str:
    cell = cell.strip()
    return cell.replace(",", ".") if delimiter == ";" and cell.count(",") == 1 else cell


def _json_records(path: Path, text: str):
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ReplayError(f"{path}:{line_no}: not JSON ({exc}); fix or remove the line") from exc
        if not isinstance(record, dict):
            raise ReplayError(f"{path}:{line_no}: a JSON {type(record).__name__}, not an object; one object per line")
        yield line_no, record


def _time_column(path: Path, columns: list[str], config: ReplayConfig) -> str:
    if config.time_column is not None:
        if config.time_column not in columns:
            raise ReplayError(
                f"{path}: no column '{config.time_column}' (--time-column); columns: {', '.join(columns)}"
            )
        return config.time_column
    lowered = {c.lower(): c for c in columns}
    for candidate in TIME_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    raise ReplayError(
        f"{path}: no time column found (looked for {', '.join(TIME_COLUMNS)}); columns: {', '.join(columns)}; "
        f"pass --time-column NAME"
    )


def _mapping(path: Path, columns: list[str], config: ReplayConfig, metric_names: Sequence[str]) -> dict[str, str]:
    for column, metric in config.mapping.items():
        if metric not in metric_names:
            raise ReplayError(
                f"--map {column}={metric}: '{metric}' is not a metric of the catalogue; declare it with "
                f"`lakehouse catalog import metrics.csv` (device_type,metric,unit,valid_min,valid_max), "
                f"or map to one of: {', '.join(metric_names)}"
            )
    mapping = dict(config.mapping) or {c: c for c in columns if c in metric_names}
    missing = [column for column in mapping if column not in columns]
    if missing:
        raise ReplayError(f"{path}: no column {missing} to map (--map); columns: {', '.join(columns)}")
    if not mapping:
        raise ReplayError(
            f"{path}: no column maps to a metric; pass --map COLUMN=METRIC (columns: {', '.join(columns)}; "
            f"metrics: {', '.join(metric_names)})"
        )
    if config.device_column is not None and config.device_column not in columns:
        raise ReplayError(
            f"{path}: no column '{config.device_column}' (--device-column); columns: {', '.join(columns)}"
        )
    return mapping


def _row(
    path: Path, line_no: int, record: dict[str, Any], time_column: str, mapping: dict[str, str], config: ReplayConfig
) -> _Row | None:
    raw_time = record.get(time_column)
    try:
        moment = parse_timestamp(str(raw_time))
    except (ValueError, OverflowError, OSError):
        raise ReplayError(
            f"{path}:{line_no}: {time_column}={raw_time!r} is not a timestamp; use ISO-8601 "
            f"(2013-07-04 00:00:00, naive = UTC) or epoch seconds"
        ) from None
    device_id = config.device_id if config.device_column is None else str(record.get(config.device_column, ""))
    values: dict[str, float] = {}
    for column, metric in mapping.items():
        raw = record.get(column)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ReplayError(
                f"{path}:{line_no}: {column}={raw!r} is not a number; fix the value, or drop '{column}' from --map"
            ) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ReplayError(f"{path}:{line_no}: {column}={raw!r} is not a finite number")
        if column in config.convert:
            value = round(CONVERSIONS[config.convert[column]](value), 6)
        values[metric] = value
    if not values:
        return None
    return _Row(int(round(moment.timestamp() * 1000)), device_id, values)


def _render(
    rows: list[_Row], config: ReplayConfig, catalogue: ReplayCatalogue, files: Sequence[str | Path]
) -> tuple[list[str], list[str], Counter]:
    seq: Counter = Counter()
    identity: dict[str, tuple[str, str, frozenset[str]]] = {}
    lines, keys = [], []
    for row in rows:
        if row.device_id not in identity:
            identity[row.device_id] = catalogue.identity(row.device_id, row.ms, config, files)
        device_type, site_id, reported = identity[row.device_id]
        unreported = set(row.values) - reported
        if unreported:
            raise ReplayError(
                f"device {row.device_id} is a {device_type} device, whose type has no metric {sorted(unreported)} "
                f"in the catalogue (it has {', '.join(sorted(reported)) or 'none'}); map to those, or declare the "
                f"metric: `lakehouse catalog import metrics.csv` with a row {device_type},{sorted(unreported)[0]},"
                f"UNIT,VALID_MIN,VALID_MAX"
            )
        seq[row.device_id] += 1
        reading = {
            "device_id": row.device_id,
            "device_type": device_type,
            "site_id": site_id,
            "event_time": _fmt(row.ms),
            "seq": seq[row.device_id],
            # Contract metrics in contract order, then the catalogue's others (bronze rescues those).
            **{m: row.values[m] for m in METRICS if m in row.values},
            **{m: row.values[m] for m in sorted(row.values) if m not in METRICS},
        }
        lines.append(json.dumps(reading, separators=(",", ":")))
        keys.append(row.device_id)
    return lines, keys, seq


@dataclass
class ReplayCatalogue:
    """What a replay needs of the catalogue: each device's type and site, each type's metrics (in force
    now), and the devices this replay registers."""

    devices: dict[str, Entry]
    types: set[str]
    metrics_by_type: dict[str, frozenset[str]]
    new_devices: list[Entry] = field(default_factory=list)

    @classmethod
    def load(cls, settings: Settings) -> ReplayCatalogue:
        from lakehouse.catalogue_store import ensure_catalogue, state_of

        state = state_of(ensure_catalogue(settings))
        by_type: dict[str, set[str]] = {}
        for entry in state.of_kind("metric"):
            by_type.setdefault(entry.get("device_type"), set()).add(entry.get("metric"))
        return cls(
            devices={e.get("device_id"): e for e in state.of_kind("device")},
            types={e.get("device_type") for e in state.of_kind("device_type")},
            metrics_by_type={t: frozenset(m) for t, m in by_type.items()},
        )

    @property
    def metric_names(self) -> list[str]:
        names = {m for metrics in self.metrics_by_type.values() for m in metrics}
        return [m for m in METRICS if m in names] + sorted(names - set(METRICS))

    def identity(
        self, device_id: str, first_ms: int, config: ReplayConfig, files: Sequence[str | Path]
    ) -> tuple[str, str, frozenset[str]]:
        """Type, site and metrics of a device; an unknown one is registered (``--register``) or refused."""
        if not _IDENTIFIER.match(device_id):
            raise ReplayError(
                f"'{device_id}' (from --device-column {config.device_column}) is not a device id; use letters, "
                f"digits, '-', '_', '.' or ':'"
            )
        known = self.devices.get(device_id)
        if known is None:
            known = self._register(device_id, first_ms, config, files)
        device_type = known.get("device_type")
        return device_type, known.get("site_id"), self.metrics_by_type.get(device_type, frozenset())

    def _register(self, device_id: str, first_ms: int, config: ReplayConfig, files: Sequence[str | Path]) -> Entry:
        device_type = config.register_device_type
        first = datetime.fromtimestamp(first_ms / 1000, tz=UTC).replace(tzinfo=None)
        types = ", ".join(sorted(self.types))
        if device_type is None:
            raise ReplayError(
                f"device {device_id} is not in the catalogue. Register it as you replay:\n"
                f"  lakehouse replay {' '.join(str(f) for f in files)} --device {device_id} --register "
                f"--device-type TYPE\n"
                f"(installed at its first reading, {first:%Y-%m-%d %H:%M:%S}; known types: {types}), or import it "
                f"first: `lakehouse catalog import devices.csv` with a row {device_id},TYPE,SITE,INSTALLED_AT"
            )
        if device_type not in self.types:
            raise ReplayError(
                f"--device-type {device_type}: not a device type of the catalogue (known: {types}); import it "
                f"first: `lakehouse catalog import types.csv` with a row {device_type},REPORTING_INTERVAL_S,"
                f"SILENCE_AFTER_S"
            )
        values = {
            "device_id": device_id,
            "device_type": device_type,
            "site_id": config.site_id or "unassigned",
            "installed_at": first,
            "retired_at": None,
        }
        entry = Entry("device", values, None, f"lakehouse replay --register ({files[0]})")
        self.devices[device_id] = entry
        self.new_devices.append(entry)
        return entry

    def register_new_devices(self, settings: Settings) -> None:
        if not self.new_devices:
            return
        from lakehouse.catalogue_store import import_entries

        names = sorted(describe_key(e.key) for e in self.new_devices)
        import_entries(settings, self.new_devices, files=[f"lakehouse replay --register ({', '.join(names)})"])


def _fmt(ms: int) -> str:
    return format_event_time(datetime.fromtimestamp(ms / 1000, tz=UTC))
