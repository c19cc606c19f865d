"""What the gates need from the lake itself: bronze's partitions and Parquet files (listed, not read: the
warehouse reads them, ``expectations/warehouse.py``) and the batch manifests. Reading only; nothing here
writes or deletes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlparse

from lakehouse.errors import LakehouseError
from lakehouse.lake import Lake
from lakehouse.storage import storage_for

MANIFEST_JOB = "bronze_readings"


def check_partition(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise LakehouseError(f"partition '{value}' is not an event date; write it as YYYY-MM-DD") from None


def date_ranges(dates: list[str]) -> list[tuple[str, str]]:
    """Consecutive event dates as (first, last) ranges: a year of daily increments is one range, so the SQL
    stays short and partition pruning simple however many dates an increment has."""
    ranges: list[list[date]] = []
    for day in sorted({date.fromisoformat(d) for d in dates}):
        if ranges and day - ranges[-1][1] == timedelta(days=1):
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [(first.isoformat(), last.isoformat()) for first, last in ranges]


# --- bronze -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    batch_id: int
    lines: int
    bronze_rows: int
    quarantine_rows: int
    event_dates: tuple[str, ...]
    uri: str


def read_manifests(lake: Lake) -> dict[int, Manifest]:
    """Every bronze batch manifest under ``_manifests/bronze_readings/``, by batch id."""
    folder = lake.manifests(MANIFEST_JOB)
    storage = storage_for(folder)
    manifests: dict[int, Manifest] = {}
    for uri in storage.list(folder, suffix=".json"):
        try:
            data = json.loads(storage.read_bytes(uri))
            manifest = Manifest(
                batch_id=int(data["batch_id"]),
                lines=int(data["lines"]),
                bronze_rows=int(data["bronze_rows"]),
                quarantine_rows=int(data["quarantine_rows"]),
                event_dates=tuple(data["event_dates"]),
                uri=uri,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LakehouseError(
                f"bronze manifest {uri} cannot be read ({exc!r}); it must hold batch_id, lines, bronze_rows, "
                f"quarantine_rows and event_dates as the bronze job writes them"
            ) from exc
        manifests[manifest.batch_id] = manifest
    return manifests


class BronzeFiles:
    """The bronze Parquet files of a lake: a local folder, or S3 (endpoint and region from the settings)."""

    def __init__(self, settings: Any) -> None:
        from pyarrow import fs

        lake = settings.lake_root
        self._s3: dict[str, Any] | None = None
        if lake.is_local:
            self.filesystem = fs.LocalFileSystem()
            self.root = lake.bronze_readings
        else:
            self._s3 = {"endpoint_url": settings.aws_endpoint_url, "region": settings.aws_region}
            endpoint = urlparse(settings.aws_endpoint_url) if settings.aws_endpoint_url else None
            self.filesystem = fs.S3FileSystem(
                region=settings.aws_region,
                endpoint_override=endpoint.netloc if endpoint else None,
                scheme=endpoint.scheme if endpoint else "https",
                connect_timeout=30,
                request_timeout=60,
            )
            self.root = lake.bronze_readings.split("://", 1)[1]
        self.uri = lake.bronze_readings

    def _listing(self, folder: str) -> list[Any]:
        from pyarrow import fs

        return self.filesystem.get_file_info(fs.FileSelector(folder, allow_not_found=True))

    def partitions(self) -> list[str]:
        """The event dates bronze holds (folders ``event_date=YYYY-MM-DD``)."""
        from pyarrow import fs

        prefix = "event_date="
        return sorted(
            i.base_name[len(prefix) :]
            for i in self._listing(self.root)
            if i.type == fs.FileType.Directory and i.base_name.startswith(prefix)
        )

    def files(self, partition: str) -> list[str]:
        """The Parquet files of one event-date partition (hidden and temporary files left out)."""
        from pyarrow import fs

        return sorted(
            i.path
            for i in self._listing(f"{self.root}/event_date={partition}")
            if i.type == fs.FileType.File
            and i.base_name.endswith(".parquet")
            and not i.base_name.startswith((".", "_"))
        )

    @property
    def s3(self) -> dict[str, Any] | None:
        """The S3 endpoint and region of the lake, for a view over its files; None on a local lake."""
        return self._s3
