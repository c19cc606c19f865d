"""The gates on AWS: the same suites, run by GX's SQL datasource on Athena (PyAthena's SQLAlchemy dialect).

Locally the gates pull each partition into pandas (DuckDB in the warehouse, Parquet in bronze). On AWS the
tables are Glue tables that Athena queries, so nothing is pulled: each partition becomes a GX *query
asset* whose SELECT is the very SQL the local path runs on DuckDB (portable SQL, see ``silver.py`` and
``gold.py``), with a whole-table batch definition, validated by the layer's checkpoint. GX computes the
metrics in Athena. The bronze increment summary (manifests on S3) stays a small pandas frame.

Tables follow the dbt project's Athena target: Glue databases ``<schema>_bronze`` (table ``readings``,
created by ``orchestration.athena.athena_init``), ``<schema>_silver`` and ``<schema>_gold``, schema
``lakehouse`` unless set otherwise (dbt_project/profiles.yml).

Use: ``run_gate(settings, "silver", run_id=..., athena=AthenaTarget(region=..., s3_staging_dir=...))``.
Credentials come from the usual AWS chain. This path is built and its construction tested here
(tests/expectations/test_athena_path.py); it has not been run against a live Athena from this repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from lakehouse.errors import LakehouseError

DATASOURCE = "athena"


@dataclass(frozen=True)
class AthenaTarget:
    region: str
    s3_staging_dir: str  # s3://bucket/path/ for query results
    work_group: str = "primary"
    schema: str = "lakehouse"  # Glue database prefix: lakehouse_bronze, lakehouse_silver, lakehouse_gold
    catalog: str = "awsdatacatalog"
    timeout_s: float = 60.0  # per Athena API call

    def database(self, layer: str) -> str:
        return f"{self.schema}_{layer}"

    def table(self, logical: str) -> str:
        """``silver.silver_readings`` -> ``"lakehouse_silver"."silver_readings"``."""
        layer, name = logical.split(".")
        return f'"{self.database(layer)}"."{name}"'

    @property
    def connection_string(self) -> str:
        return (
            f"awsathena+rest://:@athena.{self.region}.amazonaws.com:443/{self.database('silver')}"
            f"?s3_staging_dir={quote_plus(self.s3_staging_dir)}&work_group={quote_plus(self.work_group)}"
            f"&catalog_name={quote_plus(self.catalog)}"
        )


def athena_datasource(target: AthenaTarget) -> Any:  # -> great_expectations SQLDatasource
    """GX's SQL datasource for Athena. Building it does not connect; adding it to a context does."""
    from great_expectations.datasource.fluent import SQLDatasource

    return SQLDatasource(
        name=DATASOURCE,
        connection_string=target.connection_string,
        kwargs={"connect_args": {"config": _botocore_config(target.timeout_s)}},
    )


def _botocore_config(timeout_s: float) -> Any:
    from botocore.config import Config

    return Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 5})


def add_frame(datasource: Any, suite: str, label: str, query: str) -> tuple[Any, Any]:
    """One frame to validate: a query asset (named after suite and frame) and its whole-table batch definition."""
    asset = datasource.add_query_asset(name=f"{suite} {label}", query=query)
    return asset, asset.add_batch_definition_whole_table("frame")


class AthenaWarehouse:
    """What the silver and gold gates ask of a warehouse, answered by Athena (see ``sources.Warehouse``)."""

    sliced = False  # Athena computes the metrics: no partition is pulled into memory

    def __init__(self, target: AthenaTarget, engine: Any) -> None:
        self.target = target
        self._engine = engine
        self.path = f"Athena ({target.catalog}, {target.region}, databases {target.database('*')})"

    def table(self, logical: str) -> str:
        return self.target.table(logical)

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        import sqlalchemy as sa

        with self._engine.connect() as connection:
            return list(connection.execute(sa.text(sql), params or {}))

    def require_table(self, logical: str, built_by: str) -> None:
        layer, name = logical.split(".")
        found = self._rows(
            "select count(*) from information_schema.tables where table_schema = :schema and table_name = :name",
            {"schema": self.target.database(layer), "name": name},
        )[0][0]
        if not found:
            raise LakehouseError(
                f"table {self.table(logical)} does not exist in Athena; build it first "
                f"(`lakehouse --target athena transform {built_by}`)"
            )

    def columns(self, logical: str) -> list[str]:
        layer, name = logical.split(".")
        rows = self._rows(
            "select column_name from information_schema.columns where table_schema = :schema "
            "and table_name = :name order by ordinal_position",
            {"schema": self.target.database(layer), "name": name},
        )
        return [r[0] for r in rows]

    def column_type(self, logical: str, column: str) -> str:
        layer, name = logical.split(".")
        rows = self._rows(
            "select data_type from information_schema.columns where table_schema = :schema "
            "and table_name = :name and column_name = :column",
            {"schema": self.target.database(layer), "name": name, "column": column},
        )
        if not rows:
            raise LakehouseError(f"{self.table(logical)} has no column {column}")
        return str(rows[0][0]).lower()

    def scalar(self, sql: str) -> Any:
        return self._rows(sql)[0][0]

    def dates(self, sql: str) -> list[str]:
        return [str(r[0])[:10] for r in self._rows(sql) if r[0] is not None]

    def validate(self, gate: Any, suite: str, sql: str, label: str, observed: dict[str, Any] | None = None) -> int:
        outcomes = gate.engine.validate_query(suite, sql, label)
        rows = max((o.element_count or 0 for o in outcomes), default=0)
        gate.add_outcomes(outcomes, rows=rows, observed=observed)
        return rows


@contextmanager
def open_athena(target: AthenaTarget) -> Iterator[AthenaWarehouse]:
    import sqlalchemy as sa

    engine = sa.create_engine(target.connection_string, connect_args={"config": _botocore_config(target.timeout_s)})
    try:
        yield AthenaWarehouse(target, engine)
    finally:
        engine.dispose()


def event_date_literal(partition: str, column_type: str) -> str:
    """The bronze partition value as a literal of the Glue column's type (date or string)."""
    return f"date '{partition}'" if column_type == "date" else f"'{partition}'"
