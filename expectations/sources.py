"""Reading what the gates validate: bronze Parquet and manifests from the lake, silver and gold from the
local DuckDB warehouse. Reading only; nothing here writes or deletes.

Memory stays bounded: bronze is read one event-date partition at a time in chunks of at most
``max_rows`` rows; warehouse partitions larger than that are split into event-time slices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
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
        if lake.is_local:
            self.filesystem = fs.LocalFileSystem()
            self.root = lake.bronze_readings
        else:
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

    def chunks(self, partition: str, batch_ids: list[int] | None, max_rows: int) -> Iterator[Any]:
        """The rows of one partition (only those of ``batch_ids`` when given), ``max_rows`` at a time."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        files = self.files(partition)
        if not files:
            return
        dataset = ds.dataset(files, format="parquet", filesystem=self.filesystem)
        if batch_ids is not None and "_batch_id" not in dataset.schema.names:
            raise LakehouseError(
                f"bronze partition event_date={partition} has no _batch_id column ({files[0]}), so its rows "
                f"cannot be matched to batches; gate it with --partition instead of --batch"
            )
        row_filter = ds.field("_batch_id").isin(batch_ids) if batch_ids is not None else None
        pending: list[Any] = []
        size = 0
        for batch in dataset.to_batches(filter=row_filter, batch_size=min(max_rows, 1 << 17)):
            if batch.num_rows == 0:
                continue
            pending.append(batch)
            size += batch.num_rows
            if size >= max_rows:
                yield pa.Table.from_batches(pending, schema=dataset.schema)
                pending, size = [], 0
        if pending:
            yield pa.Table.from_batches(pending, schema=dataset.schema)


# --- warehouse --------------------------------------------------------------------------------------------


class Warehouse:
    """A read-only DuckDB connection to the local warehouse; use as ``with open_warehouse(path) as wh``.

    The gates ask the same of Athena (``expectations.athena.AthenaWarehouse``): table names, scalars,
    dates, columns, and ``validate`` a query. Here a query's rows are pulled into pandas for GX; a
    partition is pulled in slices when it is large (``sliced``).
    """

    sliced = True

    def __init__(self, connection: Any, path: Path) -> None:
        self._con = connection
        self.path = path

    def table(self, logical: str) -> str:
        return logical

    def validate(self, gate: Any, suite: str, sql: str, label: str | None, observed: dict | None = None) -> int:
        frame = self.frame(sql)
        gate.validate(suite, frame, label, observed=observed)
        return len(frame)

    def require_table(self, table: str, built_by: str) -> None:
        schema, name = table.split(".")
        found = self._con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchone()[0]
        if not found:
            raise LakehouseError(
                f"table {table} does not exist in {self.path}; build it first (`lakehouse transform {built_by}`)"
            )

    def columns(self, table: str) -> list[str]:
        schema, name = table.split(".")
        rows = self._con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position",
            [schema, name],
        ).fetchall()
        return [r[0] for r in rows]

    def scalar(self, sql: str) -> Any:
        return self._con.execute(sql).fetchone()[0]

    def slice_bounds(self, table: str, where: str, rows: int, max_rows: int) -> list[datetime]:
        """Event times that cut the rows of ``where`` into slices of about ``max_rows`` rows (DuckDB SQL)."""
        count = math.ceil(rows / max_rows)
        if count <= 1:
            return []
        cuts = ", ".join(f"{i / count:.6f}" for i in range(1, count))
        bounds = self.scalar(f"select quantile_disc(event_at, [{cuts}]) from {table} where {where}")
        return [b for b in bounds if b is not None]

    def dates(self, sql: str) -> list[str]:
        """The ISO dates a query returns in its first column."""
        return [row[0].isoformat() for row in self._con.execute(sql).fetchall() if row[0] is not None]

    def frame(self, sql: str):  # -> pandas.DataFrame
        """A query's rows as pandas, with text columns as categoricals.

        Sensor data repeats a few strings (device ids, types, sites, files) over millions of rows. GX
        copies the frame many times while it validates (each column check drops the column's nulls
        first); categorical copies move small integer codes instead of strings, which keeps a
        million-row frame to a few hundred MB and the gate several times faster.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        # Streamed in batches, so DuckDB does not hold a materialized copy of the result beside Arrow's.
        table = self._con.execute(sql).to_arrow_reader(100_000).read_all()
        for i, field in enumerate(table.schema):
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                table = table.set_column(i, field.name, pc.dictionary_encode(table.column(i)))
        return table.to_pandas(self_destruct=True, date_as_object=False)


@contextmanager
def open_warehouse(path: Path) -> Iterator[Warehouse]:
    """Open the warehouse read-only and close it on the way out, so dbt can take the writer lock next."""
    import duckdb

    if not path.exists():
        raise LakehouseError(
            f"the warehouse {path} does not exist; build silver and gold first (`lakehouse transform`), "
            f"or point --lake at the lake that has it"
        )
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise LakehouseError(
            f"cannot open the warehouse {path} read-only: {exc}. If dbt is building right now, run the gate "
            f"after it finishes"
        ) from exc
    try:
        yield Warehouse(connection, path)
    finally:
        connection.close()


def event_slices(partition: str, bounds: list[datetime]) -> list[tuple[str, str | None, str | None]]:
    """Split one event date at the given event times into slices (label, lower, upper).

    Bounds are SQL timestamp texts; the first slice has no lower bound and the last no upper bound, so rows
    whose event time lies outside the day (a wrong event_date) or is null are still read.
    """
    bounds = sorted(set(bounds))
    if not bounds:
        return [(partition, None, None)]
    slices = []
    for i in range(len(bounds) + 1):
        lower = bounds[i - 1] if i > 0 else None
        upper = bounds[i] if i < len(bounds) else None
        label_from = lower.strftime("%H:%M:%S") if lower else "start"
        label_to = upper.strftime("%H:%M:%S") if upper else "end"
        slices.append((f"{partition} [{label_from}-{label_to})", _sql_ts(lower), _sql_ts(upper)))
    return slices


def slice_condition(column: str, lower: str | None, upper: str | None) -> str:
    parts = []
    if lower:
        parts.append(f"{column} >= timestamp '{lower}'")
    if upper:
        parts.append(
            f"({column} < timestamp '{upper}' or {column} is null)" if not lower else f"{column} < timestamp '{upper}'"
        )
    return " and ".join(parts) or "true"


def _sql_ts(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if moment else None
