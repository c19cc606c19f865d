"""The catalogue: the user's device types, metrics and devices, as data (kept in the lake, never in code).

Three kinds of entry, each identified by a key:

- a **device type** (``device_type``): how often its devices report (``reporting_interval_s``) and after how
  long without a reading one is silent (``silence_after_s``);
- a **metric** of a device type (``device_type``, ``metric``), or a per-device override of it (``device_id``
  set): its ``unit``, the valid range ``valid_min``..``valid_max`` (outside it a reading is rejected),
  optional alert limits ``alert_min``/``alert_max`` and the largest plausible step ``max_jump``;
- a **device** (``device_id``): its ``device_type``, ``site_id``, ``installed_at`` and optional
  ``retired_at``.

The catalogue is versioned. Every import is one new version; every entry it brings has ``valid_from``: the
event time from which it is in force (readings are judged by the entry in force at their event time). An
entry for a key the catalogue does not know yet is in force from the beginning (:data:`SINCE_ALWAYS`)
unless the file says otherwise; a new entry for a known key takes effect from the import time, or from
``--effective-from``/a ``valid_from`` column. Nothing is ever overwritten: later versions are new rows.

This module is pure: it parses and validates import files into :class:`Entry` rows. Reading and writing
the catalogue in the lake is :mod:`lakehouse.catalogue_store`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakehouse.errors import LakehouseError

KINDS = ("device_type", "metric", "device")
SINCE_ALWAYS = datetime(1970, 1, 1)  # naive UTC, like every timestamp in the catalogue's Parquet

# The columns of each kind: required ones first. `valid_from` is optional on every kind.
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "device_type": (("device_type", "reporting_interval_s", "silence_after_s"), ("description",)),
    "metric": (
        ("device_type", "metric", "unit", "valid_min", "valid_max"),
        ("device_id", "alert_min", "alert_max", "max_jump"),
    ),
    "device": (("device_id", "device_type", "site_id", "installed_at"), ("retired_at",)),
}
_NUMBERS = {"reporting_interval_s", "silence_after_s", "valid_min", "valid_max", "alert_min", "alert_max", "max_jump"}
_TIMES = {"installed_at", "retired_at", "valid_from"}
# Names end up in SQL (metric names become columns): keep them to plain identifiers.
_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Column names of silver and gold that a metric (a silver column of its own) cannot take.
RESERVED_METRIC_NAMES = frozenset(
    {
        "device_id",
        "device_type",
        "site_id",
        "registered_site_id",
        "event_time",
        "event_at",
        "event_date",
        "event_hour",
        "seq",
        "battery_pct",
        "firmware",
        "unit_conversion",
        "ingested_at",
        "source_file",
        "batch_id",
        "schema_version",
        "copy_number",
        "rejection_reason",
        "rejected_metric",
        "rescued_data",
        "installed_at",
        "retired_at",
        "metric",
        "metric_value",
        "value",
    }
)
# What a device id or a device type may be: also the bronze gate's device_id check (expectations/bronze.py).
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
# Columns of `aws iot list-things` output (a thing's attributes become columns too).
_IOT_THING_COLUMNS = {"thingName": "device_id", "thingTypeName": "device_type"}
_IOT_IGNORED = {"thingArn", "version"}

IMPORT_HELP = """\
file formats (one file may hold several kinds; a `kind` column says which, else its columns do):
  device types  device_type, reporting_interval_s, silence_after_s [, description]
  metrics       device_type, metric, unit, valid_min, valid_max [, alert_min, alert_max, max_jump, device_id]
                (device_id set: an override of the type's limits for that one device)
  devices       device_id, device_type, site_id, installed_at [, retired_at]
  any row       [valid_from]: the event time from which the row is in force
CSV (comma, semicolon or tab separated), JSON (a list of rows, {"device_types": [...], "metrics": [...],
"devices": [...]}, or one object per line) and the JSON of `aws iot list-things` (thingName -> device_id,
thingTypeName -> device_type, attributes as columns)."""


class CatalogueError(LakehouseError):
    """An import the catalogue refuses as a whole; the message names each file, line and fix."""


@dataclass(frozen=True)
class Entry:
    """One row of the catalogue: an entry of a kind, in force from ``valid_from``."""

    kind: str
    values: Mapping[str, Any]
    valid_from: datetime | None = None  # None: decided when the import is applied (see module docstring)
    source: str = ""  # file:line it came from

    @property
    def key(self) -> tuple[str, ...]:
        return entry_key(self.kind, self.values)

    def get(self, name: str) -> Any:
        return self.values.get(name)


def entry_key(kind: str, values: Mapping[str, Any]) -> tuple[str, ...]:
    if kind == "device_type":
        return (kind, values["device_type"])
    if kind == "metric":
        return (kind, values["device_type"], values.get("device_id") or "", values["metric"])
    return (kind, values["device_id"])


def describe_key(key: tuple[str, ...]) -> str:
    kind = key[0]
    if kind == "metric":
        _, device_type, device_id, metric = key
        return f"metric {metric} of {device_type}" + (f" (device {device_id})" if device_id else "")
    return f"{kind.replace('_', ' ')} {key[1]}"


@dataclass
class Problems:
    """Every problem of an import, so the user fixes them all at once."""

    items: list[str] = field(default_factory=list)

    def add(self, where: str, what: str, fix: str) -> None:
        self.items.append(f"{where}: {what}; {fix}")

    def raise_if_any(self, headline: str) -> None:
        if self.items:
            shown = self.items[:20]
            more = f"\n  ... and {len(self.items) - 20} more" if len(self.items) > 20 else ""
            raise CatalogueError(f"{headline}\n  " + "\n  ".join(shown) + more)


# --- Reading import files ---------------------------------------------------------------------------------


def read_import_file(path: Path, problems: Problems) -> list[Entry]:
    """The entries of one CSV or JSON file; malformed lines and bad values are added to ``problems``."""
    if not path.is_file():
        problems.add(str(path), "no such file", "give the path of a CSV or JSON catalogue file")
        return []
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        problems.add(str(path), "the file is empty", "a catalogue file needs a header and rows (CSV) or rows (JSON)")
        return []
    first = text.lstrip()[:1]
    records = _json_records(path, text, problems) if first in "[{" else _csv_records(path, text, problems)
    entries = []
    for where, record in records:
        entry = _entry(where, record, problems)
        if entry is not None:
            entries.append(entry)
    return entries


def _csv_records(path: Path, text: str, problems: Problems) -> Iterator[tuple[str, dict[str, Any]]]:
    header = next(line for line in text.splitlines() if line.strip())
    delimiter = max((",", ";", "\t"), key=header.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    columns: list[str] | None = None
    for cells in reader:
        line_no = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if columns is None:
            columns = [c.strip() for c in cells]
            continue
        if len(cells) != len(columns):
            problems.add(
                f"{path}:{line_no}",
                f"{len(cells)} cells but the header has {len(columns)} ({delimiter!r} separated)",
                "give every row one cell per header column (quote a value that holds the separator)",
            )
            continue
        yield f"{path}:{line_no}", {c: v.strip() for c, v in zip(columns, cells, strict=True)}


def _json_records(path: Path, text: str, problems: Problems) -> Iterator[tuple[str, dict[str, Any]]]:
    decoder = json.JSONDecoder()
    try:
        document, end = decoder.raw_decode(text.lstrip())
        rest = text.lstrip()[end:].strip()
    except ValueError as exc:
        document, rest = None, "?"
        error = exc
    if rest:  # not one JSON document: one object per line
        yield from _ndjson_records(path, text, problems)
        return
    if document is None:
        problems.add(str(path), f"not JSON ({error})", "fix the syntax (a list of objects, or one object per line)")
        return
    starts = _element_lines(text)
    if isinstance(document, dict) and "things" in document:  # aws iot list-things
        for n, thing in enumerate(document["things"]):
            where = f"{path}:{starts.get(('things', n), '?')}"
            if not isinstance(thing, dict):
                problems.add(where, f"thing {n + 1} is not an object", "pass the output of `aws iot list-things`")
                continue
            yield where, _iot_thing(thing)
        return
    if isinstance(document, dict) and set(document) & {"device_types", "metrics", "devices"}:
        unknown = set(document) - {"device_types", "metrics", "devices"}
        if unknown:
            problems.add(str(path), f"unknown sections {sorted(unknown)}", "use device_types, metrics and devices")
        for section, kind in (("device_types", "device_type"), ("metrics", "metric"), ("devices", "device")):
            for n, row in enumerate(document.get(section, [])):
                where = f"{path}:{starts.get((section, n), '?')}"
                if not isinstance(row, dict):
                    problems.add(where, f"{section}[{n}] is not an object", "give each row as a JSON object")
                    continue
                yield where, {"kind": kind, **row}
        return
    rows = document if isinstance(document, list) else [document]
    for n, row in enumerate(rows):
        where = f"{path}:{starts.get((None, n), '?')}"
        if not isinstance(row, dict):
            problems.add(where, f"row {n + 1} is a JSON {type(row).__name__}", "give each row as a JSON object")
            continue
        yield where, row


def _ndjson_records(path: Path, text: str, problems: Problems) -> Iterator[tuple[str, dict[str, Any]]]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            problems.add(f"{path}:{line_no}", f"not JSON ({exc})", "fix the line or remove it")
            continue
        if not isinstance(row, dict):
            problems.add(f"{path}:{line_no}", "not a JSON object", "one object per line")
            continue
        yield f"{path}:{line_no}", row


def _element_lines(text: str) -> dict[tuple[str | None, int], int]:
    """Line number of each element of the top-level list, or of each list under a top-level key."""
    lines: dict[tuple[str | None, int], int] = {}
    decoder = json.JSONDecoder()

    def walk_list(start: int, section: str | None) -> int:
        i, n = start + 1, 0
        while True:
            while text[i] in " \t\r\n,":
                i += 1
            if text[i] == "]":
                return i + 1
            lines[(section, n)] = text.count("\n", 0, i) + 1
            _, i = decoder.raw_decode(text, i)
            n += 1

    try:
        i = len(text) - len(text.lstrip())
        if text[i] == "[":
            walk_list(i, None)
        elif text[i] == "{":
            i += 1
            while True:
                while text[i] in " \t\r\n,":
                    i += 1
                if text[i] == "}":
                    break
                key, i = decoder.raw_decode(text, i)
                while text[i] in " \t\r\n:":
                    i += 1
                if text[i] == "[":
                    i = walk_list(i, key)
                else:
                    _, i = decoder.raw_decode(text, i)
    except (ValueError, IndexError):
        pass  # line numbers are a courtesy; the document itself parsed
    return lines


def _iot_thing(thing: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": "device"}
    for key, value in thing.items():
        if key in _IOT_THING_COLUMNS:
            row[_IOT_THING_COLUMNS[key]] = value
        elif key == "attributes" and isinstance(value, dict):
            row.update(value)
        elif key not in _IOT_IGNORED:
            row[key] = value
    return row


def _kind_of(row: Mapping[str, Any]) -> str | None:
    kind = row.get("kind")
    if kind:
        return str(kind).strip()
    if "reporting_interval_s" in row:
        return "device_type"
    if "metric" in row:
        return "metric"
    if "device_id" in row:
        return "device"
    return None


def _entry(where: str, row: dict[str, Any], problems: Problems) -> Entry | None:
    kind = _kind_of(row)
    if kind not in KINDS:
        problems.add(
            where,
            f"cannot tell what this row is (kind {kind!r})" if kind else "cannot tell what this row is",
            "add a `kind` column (device_type, metric or device), or the columns of one kind (see --help)",
        )
        return None
    required, optional = COLUMNS[kind]
    known = set(required) | set(optional) | {"kind", "valid_from"}
    # A file of several kinds has every kind's columns: another kind's column left empty is no problem.
    unknown = sorted(c for c in set(row) - known if not _blank(row[c]))
    blank = [c for c in required if _blank(row.get(c))]
    if blank:
        problems.add(where, f"{kind} row without {', '.join(blank)}", f"give every {kind} row {', '.join(required)}")
        return None
    values: dict[str, Any] = {}
    ok = True
    for column in (*required, *optional):
        raw = row.get(column)
        if _blank(raw):
            values[column] = None
            continue
        try:
            values[column] = _parse_value(column, raw)
        except ValueError as exc:
            problems.add(where, f"{column}={raw!r} {exc}", _FIXES.get(column, f"fix {column}"))
            ok = False
    valid_from = None
    if not _blank(row.get("valid_from")):
        try:
            valid_from = parse_time(str(row["valid_from"]))
        except ValueError as exc:
            problems.add(where, f"valid_from={row['valid_from']!r} {exc}", _FIXES["valid_from"])
            ok = False
    if unknown:  # refused rather than dropped (e.g. an IoT thing attribute), so nothing is lost unnoticed
        problems.add(where, f"unknown {kind} columns {unknown}", f"a {kind} row has {', '.join(sorted(known))}")
        return None
    if not ok:
        return None
    entry = Entry(kind, values, valid_from, where)
    _check_entry(entry, problems)
    return entry


_FIXES = {
    "installed_at": "write a UTC date or time like 2013-07-04 or 2013-07-04T00:00:00Z",
    "retired_at": "write a UTC date or time like 2013-07-04 or 2013-07-04T00:00:00Z, or leave it empty",
    "valid_from": "write a UTC date or time like 2013-07-04 or 2013-07-04T00:00:00Z, or leave it empty",
    "metric": "use a lowercase name of letters, digits and '_', units in the name (e.g. flow_l_min)",
    "device_id": "use letters, digits, '-', '_', '.' or ':' (no spaces), up to 128 characters",
    "device_type": "use letters, digits, '-', '_', '.' or ':' (no spaces), up to 128 characters",
    "site_id": "use letters, digits, '-', '_', '.' or ':' (no spaces), up to 128 characters",
}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_time(text: str) -> datetime:
    """ISO-8601 date or time; naive means UTC. Returned naive (UTC)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError("is not a date or time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _parse_value(column: str, raw: Any) -> Any:
    if column in _NUMBERS:
        if isinstance(raw, bool):
            raise ValueError("is not a number")
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise ValueError("is not a number") from None
        if not math.isfinite(number):
            raise ValueError("is not a finite number")
        return number
    if column in _TIMES:
        return parse_time(str(raw))
    text = str(raw).strip()
    if column == "metric" and not _METRIC_NAME.match(text):
        raise ValueError("is not a metric name")
    if column == "metric" and text in RESERVED_METRIC_NAMES:
        raise ValueError("is the name of a silver column, not free for a metric")
    if column in ("device_id", "device_type", "site_id") and not _IDENTIFIER.match(text):
        raise ValueError("is not an identifier")
    return text


def _check_entry(entry: Entry, problems: Problems) -> None:
    v, where = entry.values, entry.source
    if entry.kind == "device_type":
        if v["reporting_interval_s"] <= 0:
            problems.add(where, "reporting_interval_s must be positive", "give the seconds between two readings")
        elif v["silence_after_s"] < v["reporting_interval_s"]:
            problems.add(
                where,
                f"silence_after_s {v['silence_after_s']:g} is shorter than reporting_interval_s "
                f"{v['reporting_interval_s']:g}",
                "a device is silent only after missing readings: give silence_after_s >= reporting_interval_s",
            )
    elif entry.kind == "metric":
        if v["valid_min"] > v["valid_max"]:
            problems.add(where, f"valid_min {v['valid_min']:g} > valid_max {v['valid_max']:g}", "swap them")
        if v["alert_min"] is not None and v["alert_max"] is not None and v["alert_min"] > v["alert_max"]:
            problems.add(where, f"alert_min {v['alert_min']:g} > alert_max {v['alert_max']:g}", "swap them")
        if v["max_jump"] is not None and v["max_jump"] <= 0:
            problems.add(where, "max_jump must be positive", "give the largest plausible step, or leave it empty")
    elif v["retired_at"] is not None and v["retired_at"] <= v["installed_at"]:
        problems.add(where, "retired_at is not after installed_at", "fix the dates, or leave retired_at empty")


# --- Validating an import against the catalogue ----------------------------------------------------------


@dataclass(frozen=True)
class State:
    """The entries in force now (latest valid_from per key), by key; what an import is checked against."""

    entries: Mapping[tuple[str, ...], Entry]

    def of_kind(self, kind: str) -> list[Entry]:
        return [e for k, e in sorted(self.entries.items()) if k[0] == kind]


def validate_import(entries: Sequence[Entry], state: State, problems: Problems) -> None:
    """Check the import as a whole against itself and the catalogue it would change."""
    seen: dict[tuple[Any, ...], str] = {}
    for entry in entries:
        slot = (*entry.key, entry.valid_from)
        if slot in seen:
            problems.add(
                entry.source,
                f"{describe_key(entry.key)} is given twice (also at {seen[slot]})",
                "keep one row per "
                + ("device" if entry.kind == "device" else entry.kind.replace("_", " "))
                + ", or give the rows different valid_from times",
            )
        else:
            seen[slot] = entry.source
    types = {e.get("device_type") for e in entries if e.kind == "device_type"}
    types |= {e.get("device_type") for e in state.of_kind("device_type")}
    devices = {e.get("device_id"): e for e in state.of_kind("device")}
    devices.update({e.get("device_id"): e for e in entries if e.kind == "device"})
    units: dict[str, tuple[str, str]] = {}
    for e in state.of_kind("metric"):
        units.setdefault(e.get("metric"), (e.get("unit"), f"the catalogue ({describe_key(e.key)})"))
    for entry in entries:
        if entry.kind in ("metric", "device") and entry.get("device_type") not in types:
            problems.add(
                entry.source,
                f"unknown device type '{entry.get('device_type')}'",
                "import the device type first (device_type, reporting_interval_s, silence_after_s), in this "
                f"or an earlier file; known types: {', '.join(sorted(types)) or 'none'}",
            )
        if entry.kind == "metric":
            metric, unit = entry.get("metric"), entry.get("unit")
            if metric in units and units[metric][0] != unit:
                problems.add(
                    entry.source,
                    f"metric {metric} in '{unit}' but {units[metric][1]} has it in '{units[metric][0]}'",
                    "a metric has one unit everywhere: use the same unit, or another metric name "
                    f"with the unit in it (e.g. {metric}_{_slug(unit)})",
                )
            units.setdefault(metric, (unit, entry.source))
            device_id = entry.get("device_id")
            if device_id:
                device = devices.get(device_id)
                if device is None:
                    problems.add(entry.source, f"override for unknown device {device_id}", "import the device first")
                elif device.get("device_type") != entry.get("device_type"):
                    problems.add(
                        entry.source,
                        f"override of {entry.get('device_type')} limits for device {device_id}, which is a "
                        f"{device.get('device_type')}",
                        f"set device_type to {device.get('device_type')}",
                    )


def _slug(unit: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", unit.lower()).strip("_") or "unit"


def resolve_valid_from(entries: Iterable[Entry], state: State, now: datetime, effective_from: datetime | None):
    """Entries with their ``valid_from`` decided: the row's own, else ``effective_from``, else
    :data:`SINCE_ALWAYS` for a new key and ``now`` for a key the catalogue already has."""
    resolved = []
    for entry in entries:
        if entry.valid_from is not None:
            resolved.append(entry)
        elif effective_from is not None:
            resolved.append(replace(entry, valid_from=effective_from))
        else:
            resolved.append(replace(entry, valid_from=now if entry.key in state.entries else SINCE_ALWAYS))
    return resolved
