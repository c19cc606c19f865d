"""The catalogue in the lake: ``<lake>/catalogue/changes/v<version>.parquet``, one file per version.

Each file holds every entry one import brought (device types, metrics and devices together, told apart by
``kind``), with ``version``, ``recorded_at`` (when it was imported), ``valid_from`` (the event time from
which the entry is in force) and ``source`` (file:line). One file per version makes an import atomic for
every reader: a local file appears by rename, an S3 object by one PUT; there is never half a version.
Files are never rewritten, so the whole history stays readable: DuckDB reads the folder with
``read_parquet``, Athena through the Glue table ``<schema>_catalogue.changes`` (orchestration/athena.py),
dbt through the source ``catalogue.changes`` and the models ``catalogue_device_types``,
``catalogue_metrics`` and ``catalogue_devices`` (each row with its validity interval).

A lake without a catalogue gets the *default catalogue* the first time anything needs one
(:func:`ensure_catalogue`): the simulator's four device types, their limits and its 1,000 devices
(``lakehouse/defaults/``, ``lakehouse/registry.py``), as version 1.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.catalogue import (
    SINCE_ALWAYS,
    CatalogueError,
    Entry,
    Problems,
    State,
    describe_key,
    read_import_file,
    resolve_valid_from,
    validate_import,
)
from lakehouse.config import Settings
from lakehouse.contract import DEVICE_TYPES_SEED, LIMITS_SEED, METRICS
from lakehouse.registry import REGISTRY_SIZE, fleet
from lakehouse.storage import LocalStorage, S3Storage, Storage

CHANGES_TABLE = "changes"
DEFAULT_SOURCE = "default catalogue (the simulator's fleet: lakehouse/defaults/, lakehouse/registry.py)"
_VERSION_FILE = re.compile(r"v(\d{6,})\.parquet$")
_TS = pa.timestamp("us")
SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("version", pa.int64()),
        ("recorded_at", _TS),
        ("valid_from", _TS),
        ("source", pa.string()),
        ("device_type", pa.string()),
        ("reporting_interval_s", pa.float64()),
        ("silence_after_s", pa.float64()),
        ("description", pa.string()),
        ("metric", pa.string()),
        ("device_id", pa.string()),
        ("unit", pa.string()),
        ("valid_min", pa.float64()),
        ("valid_max", pa.float64()),
        ("alert_min", pa.float64()),
        ("alert_max", pa.float64()),
        ("max_jump", pa.float64()),
        ("site_id", pa.string()),
        ("installed_at", _TS),
        ("retired_at", _TS),
    ]
)
_VALUE_COLUMNS = [f.name for f in SCHEMA][5:]


@dataclass(frozen=True)
class Version:
    version: int
    recorded_at: datetime
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class ImportReport:
    version: int | None  # None: nothing changed, no version written
    added: int
    changed: int
    unchanged: int
    files: tuple[str, ...]

    def summary(self) -> str:
        if self.version is None:
            return f"catalogue unchanged: the {self.unchanged} row(s) of {', '.join(self.files)} are already in force"
        return (
            f"catalogue version {self.version}: {self.added} new, {self.changed} changed, {self.unchanged} unchanged "
            f"(from {', '.join(self.files)})"
        )


def changes_uri(settings: Settings) -> str:
    return settings.lake_root.uri("catalogue", CHANGES_TABLE)


def _storage(settings: Settings) -> Storage:
    if settings.lake_root.is_local:
        return LocalStorage()
    from ingestion.sinks import aws_client

    return S3Storage(aws_client("s3", settings.aws_endpoint_url, region_name=settings.aws_region))


def read_versions(settings: Settings, storage: Storage | None = None) -> list[Version]:
    """Every version of the catalogue, oldest first (empty: the lake has no catalogue yet)."""
    storage = storage or _storage(settings)
    versions = []
    for uri in storage.list(changes_uri(settings), ".parquet"):
        if not _VERSION_FILE.search(uri):
            continue
        table = pq.read_table(io.BytesIO(storage.read_bytes(uri)))
        rows = table.to_pylist()
        entries = tuple(
            Entry(
                row["kind"],
                {k: row[k] for k in _VALUE_COLUMNS if k in row},
                row["valid_from"],
                row["source"] or "",
            )
            for row in rows
        )
        number = int(_VERSION_FILE.search(uri).group(1))
        recorded = rows[0]["recorded_at"] if rows else None
        versions.append(Version(number, recorded, entries))
    return sorted(versions, key=lambda v: v.version)


def state_of(versions: Sequence[Version]) -> State:
    """The latest entry per key: greatest valid_from, then the later version (what an import changes)."""
    latest: dict[tuple[str, ...], tuple[tuple[datetime, int], Entry]] = {}
    for version in versions:
        for entry in version.entries:
            rank = (entry.valid_from, version.version)
            if entry.key not in latest or rank >= latest[entry.key][0]:
                latest[entry.key] = (rank, entry)
    return State({key: entry for key, (_, entry) in latest.items()})


def modelled_metrics(versions: Sequence[Version]) -> list[str]:
    """The metrics silver and gold model, a column each (dbt var ``metrics``): the contract's, which are
    bronze columns, then every other metric the catalogue has ever declared, by name."""
    declared = {e.get("metric") for v in versions for e in v.entries if e.kind == "metric"}
    return [*METRICS, *sorted(declared - set(METRICS))]


def in_force(versions: Sequence[Version], kind: str, at: datetime) -> dict[tuple[str, ...], Entry]:
    """The entries of ``kind`` in force at event time ``at`` (naive UTC), by key."""
    chosen: dict[tuple[str, ...], tuple[tuple[datetime, int], Entry]] = {}
    for version in versions:
        for entry in version.entries:
            if entry.kind != kind or entry.valid_from > at:
                continue
            rank = (entry.valid_from, version.version)
            if entry.key not in chosen or rank >= chosen[entry.key][0]:
                chosen[entry.key] = (rank, entry)
    return {key: entry for key, (_, entry) in chosen.items()}


def ensure_catalogue(settings: Settings, storage: Storage | None = None) -> list[Version]:
    """The catalogue's versions; a lake without one gets the default catalogue first (version 1)."""
    storage = storage or _storage(settings)
    versions = read_versions(settings, storage)
    if not versions:
        now = utc_now()
        _write_version(settings, storage, 1, now, default_entries())
        versions = read_versions(settings, storage)
    return versions


def default_entries() -> list[Entry]:
    """The simulator's device types, limits and fleet, in force since always."""
    entries: list[Entry] = []
    with DEVICE_TYPES_SEED.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            values = {
                "device_type": row["device_type"],
                "reporting_interval_s": float(row["reporting_interval_s"]),
                "silence_after_s": float(row["silence_after_s"]),
                "description": row["description"],
            }
            entries.append(Entry("device_type", values, SINCE_ALWAYS, f"{DEVICE_TYPES_SEED.name}:{line}"))
    with LIMITS_SEED.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            values: dict[str, Any] = {"device_type": row["device_type"], "metric": row["metric"], "unit": row["unit"]}
            values["device_id"] = None
            for column in ("valid_min", "valid_max", "alert_min", "alert_max", "max_jump"):
                values[column] = float(row[column]) if row[column] else None
            entries.append(Entry("metric", values, SINCE_ALWAYS, f"{LIMITS_SEED.name}:{line}"))
    for device in fleet(REGISTRY_SIZE):
        values = {
            "device_id": device.device_id,
            "device_type": device.device_type,
            "site_id": device.site_id,
            "installed_at": device.installed_at.replace(tzinfo=None),
            "retired_at": None,
        }
        entries.append(Entry("device", values, SINCE_ALWAYS, f"lakehouse/registry.py device {device.index}"))
    return entries


def import_entries(
    settings: Settings,
    entries: Sequence[Entry],
    *,
    files: Sequence[str],
    effective_from: datetime | None = None,
    now: datetime | None = None,
    problems: Problems | None = None,
    storage: Storage | None = None,
) -> ImportReport:
    """Validate ``entries`` as a whole against the catalogue and write them as one new version, or raise
    :class:`CatalogueError` naming every problem and write nothing. Rows equal to what is in force are
    left out; when nothing changes no version is written."""
    storage = storage or _storage(settings)
    problems = problems or Problems()
    versions = ensure_catalogue(settings, storage)
    state = state_of(versions)
    validate_import(entries, state, problems)
    problems.raise_if_any(
        f"catalogue import refused, nothing changed ({len(problems.items)} problem(s) in {', '.join(files)}):"
    )
    now = now or utc_now()
    resolved = resolve_valid_from(entries, state, now, effective_from)
    added = changed = unchanged = 0
    kept = []
    for entry in resolved:
        current = state.entries.get(entry.key)
        if current is None:
            added += 1
        elif _same(current, entry):
            unchanged += 1
            continue
        else:
            changed += 1
        kept.append(entry)
    if not kept:
        return ImportReport(None, added, changed, unchanged, tuple(files))
    number = versions[-1].version + 1
    _write_version(settings, storage, number, now, kept)
    return ImportReport(number, added, changed, unchanged, tuple(files))


def import_files(
    settings: Settings,
    paths: Sequence[str | Path],
    *,
    effective_from: datetime | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """``lakehouse catalog import FILE...``: every file read and checked, then one version or nothing."""
    if not paths:
        raise CatalogueError("no files to import; pass one or more CSV or JSON catalogue files")
    problems = Problems()
    entries: list[Entry] = []
    for path in paths:
        entries.extend(read_import_file(Path(path), problems))
    return import_entries(
        settings, entries, files=[str(p) for p in paths], effective_from=effective_from, now=now, problems=problems
    )


def _same(current: Entry, new: Entry) -> bool:
    return all(current.values.get(k) == new.values.get(k) for k in set(current.values) | set(new.values)) and (
        new.valid_from >= current.valid_from  # the same values restated later change nothing
    )


def _write_version(settings: Settings, storage: Storage, number: int, now: datetime, entries: Sequence[Entry]) -> None:
    uri = f"{changes_uri(settings)}/v{number:06d}.parquet"
    if storage.exists(uri):
        raise CatalogueError(
            f"{uri} already exists: another catalogue import ran at the same time; run the import again"
        )
    rows = []
    for entry in entries:
        row = {name: None for name in SCHEMA.names}
        row.update({k: v for k, v in entry.values.items() if k in row})
        row.update(kind=entry.kind, version=number, recorded_at=now, valid_from=entry.valid_from, source=entry.source)
        rows.append(row)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buffer)
    storage.write_bytes(uri, buffer.getvalue())


def utc_now() -> datetime:
    """The current time, naive UTC to the second (the catalogue's timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def describe(entry: Entry) -> str:
    """One line for ``catalog list`` / ``show``."""
    v = entry.values
    since = "" if entry.valid_from == SINCE_ALWAYS else f"  (from {entry.valid_from:%Y-%m-%d %H:%M:%S})"
    if entry.kind == "device_type":
        text = f"{v['device_type']:<16} every {v['reporting_interval_s']:g} s, silent after {v['silence_after_s']:g} s"
    elif entry.kind == "metric":
        alerts = ", ".join(
            f"{name.split('_')[1]} {v[name]:g}" for name in ("alert_min", "alert_max") if v.get(name) is not None
        )
        text = (
            f"{describe_key(entry.key):<40} [{v['valid_min']:g}, {v['valid_max']:g}] {v['unit']}"
            + (f"; alert {alerts}" if alerts else "")
            + (f"; max jump {v['max_jump']:g}" if v.get("max_jump") is not None else "")
        )
    else:
        retired = f", retired {v['retired_at']:%Y-%m-%d %H:%M:%S}" if v.get("retired_at") else ""
        text = (
            f"{v['device_id']:<16} {v['device_type']:<16} {v['site_id']:<10} "
            f"installed {v['installed_at']:%Y-%m-%d %H:%M:%S}{retired}"
        )
    return text + since
