"""``lakehouse ingest-files``: put a user's newline-delimited JSON files into a source's landing folder.

Callable without the CLI::

    from ingestion.ingest_files import ingest_files
    report = ingest_files(settings, "customer", ["exports/customers.json", "exports/more/"])
    print(report.summary())

Each file is copied whole into ``<lake>/landing/<source>/YYYY/MM/DD/HH/`` (the UTC hour of the copy) under
the name ``<original stem>-<first 16 hex digits of its SHA-256>.json``:

- atomically: locally through a hidden temporary file and a rename, on an ``s3://`` lake by one PUT
  (:mod:`lakehouse.storage`), so bronze never reads half a file;
- once: a content that has landed before (under any hour) is not copied again, so running the command
  twice, or on a folder that gained files, lands nothing twice; a landed file is never overwritten.

Every path is checked before anything is copied: a missing or unreadable path is an error naming it.
Folders are searched recursively for ``*.json``, ``*.ndjson`` and ``*.jsonl`` files (names starting with
``.`` or ``_`` are skipped, as Spark skips them). The lines themselves are not judged here: bronze parses
them against the source's contract and quarantines what fails.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.source_contracts import get_source
from lakehouse.storage import Storage, storage_for

ACCEPTED_SUFFIXES = (".json", ".ndjson", ".jsonl")
_ACCEPTED_TEXT = "*.json, *.ndjson or *.jsonl"
_DIGEST_CHARS = 16
_LANDED_NAME = re.compile(rf"-([0-9a-f]{{{_DIGEST_CHARS}}})\.json$")


@dataclass(frozen=True)
class LandedFile:
    origin: str  # the file given (or what generated it)
    uri: str  # where it is in the landing zone
    bytes: int
    lines: int
    copied: bool  # False: the same content had landed before, at ``uri``


@dataclass
class IngestReport:
    source: str
    landing: str
    files: list[LandedFile] = field(default_factory=list)

    @property
    def copied(self) -> list[LandedFile]:
        return [f for f in self.files if f.copied]

    @property
    def already_landed(self) -> list[LandedFile]:
        return [f for f in self.files if not f.copied]

    def summary(self) -> str:
        lines = []
        for f in self.files:
            if f.copied:
                lines.append(f"copied   {f.origin} -> {f.uri} ({f.lines:,} lines, {f.bytes:,} bytes)")
            else:
                lines.append(f"skipped  {f.origin}: the same content already landed as {f.uri}")
        lines.append(
            f"ingest-files {self.source}: {len(self.copied)} file(s) copied "
            f"({sum(f.lines for f in self.copied):,} lines), {len(self.already_landed)} already landed, "
            f"into {self.landing}; `lakehouse bronze --once` lands them in bronze"
        )
        return "\n".join(lines)


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:_DIGEST_CHARS]


def landed_name(stem: str, data: bytes) -> str:
    """``<stem>-<digest>.json``; the stem is made safe and never starts with ``.`` or ``_`` (Spark would skip it)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).lstrip("._-").rstrip(".") or "file"
    return f"{safe}-{content_digest(data)}.json"


def count_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def landing_storage(settings: Settings) -> Storage:
    """Local folder, or S3 with the settings' endpoint and region (and timeouts on every call)."""
    return storage_for(settings.lake, settings)


class LandingFolder:
    """A source's landing folder that takes whole files, each at most once (by content digest)."""

    def __init__(self, settings: Settings, source: str, storage: Storage | None = None) -> None:
        self.source = get_source(source).name
        self.uri = settings.lake_root.landing(self.source)
        self.storage = storage or landing_storage(settings)
        self._landed: dict[str, str] | None = None

    def landed(self) -> dict[str, str]:
        """Digest -> URI of every file landed here under a digest name (listed once, then kept up to date)."""
        if self._landed is None:
            self._landed = {}
            for uri in self.storage.list(self.uri, suffix=".json"):
                match = _LANDED_NAME.search(uri)
                if match:
                    self._landed.setdefault(match.group(1), uri)
        return self._landed

    def land(self, data: bytes, stem: str, when: datetime, origin: str) -> LandedFile:
        digest = content_digest(data)
        lines = count_lines(data)
        if digest in self.landed():
            return LandedFile(origin, self.landed()[digest], len(data), lines, copied=False)
        when = when.astimezone(UTC)
        uri = f"{self.uri}/{when:%Y/%m/%d/%H}/{landed_name(stem, data)}"
        self.storage.write_bytes(uri, data)
        self.landed()[digest] = uri
        return LandedFile(origin, uri, len(data), lines, copied=True)


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files to ingest, in the order given (folders: their files sorted); every one checked readable."""
    if not paths:
        raise LakehouseError("ingest-files needs at least one file or folder to copy")
    files: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            raise LakehouseError(
                f"{given}: no such file or folder; give a newline-delimited JSON file, or a folder holding "
                f"{_ACCEPTED_TEXT} files"
            )
        if path.is_dir():
            found = sorted(
                f
                for f in path.rglob("*")
                if f.is_file()
                and f.suffix.lower() in ACCEPTED_SUFFIXES
                and not any(part.startswith((".", "_")) for part in f.relative_to(path).parts)
            )
            if not found:
                raise LakehouseError(
                    f"{given}: the folder holds no {_ACCEPTED_TEXT} files; "
                    f"name the files themselves if they have another extension"
                )
            files.extend(found)
        else:
            files.append(path)
    for f in files:
        if not os.access(f, os.R_OK):
            raise LakehouseError(f"{f}: cannot be read (permission denied); check the file's permissions")
        with f.open("rb") as handle:
            if handle.read(2) == b"\x1f\x8b":
                raise LakehouseError(f"{f}: is gzip-compressed; decompress it first (gunzip -k '{f}')")
    return files


def ingest_files(
    settings: Settings, source: str, paths: Sequence[str | Path], now: datetime | None = None
) -> IngestReport:
    """Copy ``paths`` (files or folders) into ``<lake>/landing/<source>/``; see the module docstring."""
    folder = LandingFolder(settings, source)
    files = collect_files(paths)  # all checked before the first copy
    when = now or datetime.now(UTC)
    report = IngestReport(source=folder.source, landing=folder.uri)
    for f in files:
        try:
            data = f.read_bytes()
        except OSError as exc:
            raise LakehouseError(f"{f}: cannot be read ({exc.strerror}); nothing after it was copied") from exc
        report.files.append(folder.land(data, f.stem, when, str(f)))
    return report
