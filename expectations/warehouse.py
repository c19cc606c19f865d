"""The warehouse the gates validate in, behind one SQLAlchemy URL: DuckDB locally, Athena on AWS.

The gates never pull rows into Python. Each suite is validated by GX's SQL datasource on one query over
the increment, so the engine computes every metric (``expectations/engine.py``); the few questions the
runner asks itself (which dates a table holds, a table's columns, a count) go through the same engine.
Which warehouse is only a matter of the URL built from the settings:

- locally ``duckdb+gates:///<lake>/warehouse.duckdb?access_mode=read_only`` for silver and gold, and for
  bronze an in-memory DuckDB whose view ``bronze_readings`` is the increment's Parquet files (a pyarrow
  dataset, so a lake on S3 is read the same way, with ``Settings.aws_endpoint_url`` / ``aws_region``);
- on AWS ``awsathena+rest://...`` (PyAthena) on the Glue tables (``expectations/athena.py``).

``duckdb+gates`` is duckdb-engine's dialect without transactions. duckdb-engine begins a transaction when
SQLAlchemy checks a connection out and rolls it back when the connection goes back to the pool; DuckDB's
rollback discards a result that has not been fetched yet, and GX's ``execute_query`` returns the
connection before it fetches. So through plain ``duckdb://`` every metric came back empty: GX raised
``IndexError: list index out of range`` in ``SqlAlchemyExecutionEngine.resolve_metric_bundle`` and every
expectation failed with "Observed: N/A" (the same as GX issues #10738 and #11579). The gates only read,
so there is nothing to roll back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import duckdb_engine
import sqlalchemy as sa
from sqlalchemy.dialects import registry

from lakehouse.errors import LakehouseError

DIALECT = "duckdb.gates"
# DuckDB's memory for a gate (it spills larger joins and aggregates to disk); with GX and pandas imported
# the process stays under 1 GiB.
MEMORY_LIMIT = "512MB"
BRONZE_VIEW = "bronze_readings"


class ReadOnlyDuckDB(duckdb_engine.Dialect):
    """duckdb-engine for readers: no transaction around a checkout, so nothing discards a pending result.

    ``connect_args={"parquet_views": {name: {...}}}`` creates views over Parquet files on each new
    connection (see :func:`parquet_view`): DuckDB's reader for local files, a pyarrow dataset for S3 (no
    httpfs extension here); the arguments are plain data, so GX can keep them in its config.
    """

    def do_begin(self, connection: Any) -> None:
        pass

    def do_rollback(self, connection: Any) -> None:
        pass

    def do_commit(self, connection: Any) -> None:
        pass

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        views = cparams.pop("parquet_views", None) or {}
        connection = super().connect(*cargs, **cparams)
        for name, spec in views.items():
            if not spec or not spec["files"]:
                # An increment without bronze rows (every line of the batch quarantined): no view, so the
                # readings suite is skipped (no columns) and the increment suite still judges the batch.
                continue
            if spec["s3"] is None:
                # DuckDB's own Parquet reader: streams within its memory limit (a pyarrow dataset scanned
                # from DuckDB held 1.5 GiB for 2 M bronze rows).
                files = ", ".join("'" + f.replace("'", "''") + "'" for f in spec["files"])
                column = spec["partition_column"]
                connection.execute(
                    f"create view {name} as select * from read_parquet([{files}], hive_partitioning = true, "
                    f"hive_types = {{'{column}': varchar}}, union_by_name = true)"
                )
            else:
                connection.register(name, _dataset(**spec))
        return connection


registry.register(DIALECT, __name__, "ReadOnlyDuckDB")


def parquet_view(files: list[str], root: str, s3: dict[str, Any] | None, partition_column: str) -> dict[str, Any]:
    """A view over Parquet files below ``root`` (``<column>=<value>`` folders give ``partition_column``, as
    text); ``s3``: the endpoint and region of an S3 lake, None for a local one."""
    return {"files": list(files), "root": root, "s3": s3, "partition_column": partition_column}


def _dataset(files: list[str], root: str, s3: dict[str, Any] | None, partition_column: str) -> Any:
    import pyarrow as pa
    import pyarrow.dataset as ds

    filesystem = _filesystem(s3)
    partitioning = ds.partitioning(pa.schema([(partition_column, pa.string())]), flavor="hive")
    return ds.dataset(
        files, format="parquet", filesystem=filesystem, partitioning=partitioning, partition_base_dir=root
    )


def _filesystem(s3: dict[str, Any] | None) -> Any:
    from pyarrow import fs

    if s3 is None:
        return fs.LocalFileSystem()
    endpoint = urlparse(s3["endpoint_url"]) if s3.get("endpoint_url") else None
    return fs.S3FileSystem(
        region=s3.get("region"),
        endpoint_override=endpoint.netloc if endpoint else None,
        scheme=endpoint.scheme if endpoint else "https",
        connect_timeout=30,
        request_timeout=60,
    )


@dataclass
class SqlWarehouse:
    """What the gates ask of a warehouse, through one SQLAlchemy engine; GX gets the same URL and kwargs.

    ``tables`` maps the gates' logical names (``silver.silver_readings``) to the engine's; ``path`` says
    where the warehouse is, for messages.
    """

    url: str
    kwargs: dict[str, Any]
    tables: Any  # Callable[[str], str]: logical name -> SQL name
    path: str
    schemas: Any  # Callable[[str], tuple[str, str]]: logical name -> (information_schema schema, table)
    regexp_like: str = "regexp_matches"  # the engine's regex match function (Trino: regexp_like)
    _engine: Any = field(default=None, repr=False)

    @property
    def engine(self) -> Any:
        if self._engine is None:
            self._engine = sa.create_engine(self.url, **self.kwargs)
        return self._engine

    def table(self, logical: str) -> str:
        return self.tables(logical)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        with self.engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sa.text(sql), params or {}).fetchall()]

    def scalar(self, sql: str) -> Any:
        return self.rows(sql)[0][0]

    def dates(self, sql: str) -> list[str]:
        """The ISO dates a query returns in its first column (dates, timestamps or text)."""
        return [str(r[0])[:10] for r in self.rows(sql) if r[0] is not None]

    def _columns(self, logical: str) -> list[tuple[str, str]]:
        schema, name = self.schemas(logical)
        return self.rows(
            "select column_name, data_type from information_schema.columns where table_schema = :schema "
            "and table_name = :name order by ordinal_position",
            {"schema": schema, "name": name},
        )

    def columns(self, logical: str) -> list[str]:
        return [c for c, _ in self._columns(logical)]

    def column_type(self, logical: str, column: str) -> str:
        types = dict(self._columns(logical))
        if column not in types:
            raise LakehouseError(f"{self.table(logical)} ({self.path}) has no column {column}")
        return str(types[column]).lower()

    def require_table(self, logical: str, built_by: str) -> None:
        if not self._columns(logical):
            raise LakehouseError(
                f"table {self.table(logical)} does not exist in {self.path}; build it first "
                f"(`lakehouse transform {built_by}`)"
            )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _same_name(logical: str) -> str:
    return logical


def _split(logical: str) -> tuple[str, str]:
    schema, name = logical.split(".")
    return schema, name


@contextmanager
def open_local_warehouse(path: Path) -> Iterator[SqlWarehouse]:
    """The local DuckDB warehouse, read-only; every connection is closed on the way out, so dbt can take the
    writer lock next."""
    if not path.exists():
        raise LakehouseError(
            f"the warehouse {path} does not exist; build silver and gold first (`lakehouse transform`), "
            f"or point --lake at the lake that has it"
        )
    warehouse = SqlWarehouse(
        url=f"duckdb+gates:///{quote(str(path.resolve()))}?access_mode=read_only&memory_limit={MEMORY_LIMIT}",
        kwargs={},
        tables=_same_name,
        path=str(path),
        schemas=_split,
    )
    try:
        warehouse.scalar("select 1")
    except sa.exc.DBAPIError as exc:
        raise LakehouseError(
            f"cannot open the warehouse {path} read-only: {exc.orig}. If dbt is building right now, run the gate "
            f"after it finishes"
        ) from exc
    try:
        yield warehouse
    finally:
        warehouse.close()


@contextmanager
def open_local_bronze(view: dict[str, Any], where: str) -> Iterator[SqlWarehouse]:
    """An in-memory DuckDB whose view ``bronze_readings`` reads the given Parquet files (``parquet_view``)."""
    warehouse = SqlWarehouse(
        url=f"duckdb+gates:///:memory:?memory_limit={MEMORY_LIMIT}",
        kwargs={"connect_args": {"parquet_views": {BRONZE_VIEW: view}}},
        tables=lambda logical: BRONZE_VIEW if logical == "bronze.readings" else logical,
        path=where,
        schemas=lambda logical: ("main", BRONZE_VIEW) if logical == "bronze.readings" else _split(logical),
    )
    try:
        yield warehouse
    finally:
        warehouse.close()
