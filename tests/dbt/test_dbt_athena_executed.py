"""The Athena target executed: the same dbt project built on the Athena stand-in (moto over HTTP, queries run
by DuckDB after sqlglot transpiles them from Trino; tests/support/athena_standin.py) and on the DuckDB target,
from the same bronze, gives the same rows in every model: full build, an incremental build after new bronze,
and a backfill.

Compared: doubles to 1e-9 relative, timestamps to the millisecond (Athena's precision), approximate
percentiles (``p50_value``, ``p95_value``: Athena's ``approx_percentile`` against DuckDB's exact
``quantile_cont``) within :data:`PERCENTILE_TOLERANCE` of the metric's range in the group.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import duckdb
import pytest

from lakehouse.config import Settings
from orchestration.athena import athena_init
from orchestration.transform import transform
from tests.dbt.conftest import DAY_1, REFERENCE_TIME, series, write_bronze, write_small_fleet

VARS = {"reference_time": REFERENCE_TIME.strftime("%Y-%m-%d %H:%M:%S")}
APPROXIMATE = {"p50_value", "p95_value"}
# approx_percentile's documented rank error is about 1 %; allowed: 2 % of the group's min..max range
PERCENTILE_TOLERANCE = 0.02


def athena_settings(standin: SimpleNamespace, **overrides: Any) -> Settings:
    bucket = standin.bucket
    return Settings(
        lake=f"s3://{bucket}/lake",
        dbt_target="athena",
        aws_endpoint_url=standin.endpoint,
        athena_work_group="primary",
        athena_results_uri=f"s3://{bucket}/athena-results/",
        athena_data_uri=f"s3://{bucket}/warehouse/",
        pii_salt="salt-of-the-athena-test",
        **overrides,
    )


def upload_bronze(local_lake: Path, standin: SimpleNamespace) -> None:
    """Bronze and the catalogue as the Spark job and the first transform would have written them to the S3
    lake (same files, same keys): both warehouses judge the readings by one catalogue."""
    from lakehouse.catalogue_store import ensure_catalogue

    ensure_catalogue(Settings(lake=str(local_lake)))
    s3 = boto3.client("s3", endpoint_url=standin.endpoint, region_name="us-east-1")
    files = [*(local_lake / "bronze").rglob("*.parquet"), *(local_lake / "catalogue").rglob("*.parquet")]
    for path in sorted(files):
        s3.put_object(Bucket=standin.bucket, Key=f"lake/{path.relative_to(local_lake)}", Body=path.read_bytes())


class Twins:
    """One bronze, two warehouses: DuckDB (target local) and Athena (the stand-in)."""

    def __init__(self, local: Path, standin: SimpleNamespace) -> None:
        self.local = Settings(lake=str(local), pii_salt="salt-of-the-athena-test")
        self.athena = athena_settings(standin)
        self.standin = standin
        self._cursor = None

    def build(self, **kwargs: Any) -> None:
        for settings in (self.local, self.athena):
            result = transform(settings, vars={**VARS, **kwargs.pop("vars", {})}, data_tests=False, **kwargs)
            assert result.success, (settings.dbt_target, result.failures, self.failed_queries())

    def failed_queries(self) -> list[str]:
        return [f"{o.reason}\n{q[:600]}" for q, o in self.standin.standin.log.queries if o.state != "SUCCEEDED"][-3:]

    def local_tables(self) -> list[tuple[str, str]]:
        with duckdb.connect(str(self.local.lake_root.warehouse), read_only=True) as con:
            return con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema not in ('main', 'information_schema', 'pg_catalog') order by 1, 2"
            ).fetchall()

    def local_rows(self, schema: str, table: str) -> tuple[list[str], list[tuple]]:
        with duckdb.connect(str(self.local.lake_root.warehouse), read_only=True) as con:
            columns = [c[0] for c in con.execute(f'describe "{schema}"."{table}"').fetchall()]
            return columns, con.execute(f'select * from "{schema}"."{table}"').fetchall()

    def athena_rows(self, schema: str, table: str, columns: list[str]) -> list[tuple]:
        from pyathena import connect

        if self._cursor is None:  # one client for every comparison: building a boto3 client is slow
            self._cursor = connect(
                s3_staging_dir=self.athena.athena_results_uri,
                region_name="us-east-1",
                endpoint_url=self.standin.endpoint,
                work_group="primary",
            ).cursor()
        cursor = self._cursor
        listed = ", ".join(f'"{c}"' for c in columns)
        cursor.execute(f'select {listed} from "{self.athena.athena_schema}_{schema}"."{table}"')
        return cursor.fetchall()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000, tzinfo=None)
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        return value.replace(" ", "")
    if isinstance(value, list):
        return str(value).replace(" ", "")
    return value


def _key(row: tuple) -> str:
    return repr([v for v in row if not isinstance(v, float)])


def assert_same_rows(twins: Twins) -> int:
    """Every model on both targets, row for row; returns how many tables were compared."""
    tables = twins.local_tables()
    assert len(tables) > 10, tables
    for schema, table in tables:
        columns, local = twins.local_rows(schema, table)
        athena = twins.athena_rows(schema, table, columns)
        local = sorted((tuple(_plain(v) for v in row) for row in local), key=_key)
        athena = sorted((tuple(_plain(v) for v in row) for row in athena), key=_key)
        assert len(local) == len(athena), f"{schema}.{table}: {len(local)} rows on DuckDB, {len(athena)} on Athena"
        for a, b in zip(local, athena, strict=True):
            for column, x, y in zip(columns, a, b, strict=True):
                where = f"{schema}.{table}.{column}: DuckDB {x!r}, Athena {y!r}\nrow {a}"
                if isinstance(x, float) and isinstance(y, float | int):
                    if column in APPROXIMATE:
                        spread = max(abs(v) for v in a if isinstance(v, float)) or 1.0
                        assert abs(x - y) <= PERCENTILE_TOLERANCE * spread, where
                    else:
                        assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), where
                else:
                    assert x == y, where
    return len(tables)


@pytest.fixture(scope="module")
def twins(athena_standin, tmp_path_factory) -> Twins:
    local = tmp_path_factory.mktemp("twin") / "lake"
    write_small_fleet(local)
    upload_bronze(local, athena_standin)
    twins = Twins(local, athena_standin)
    athena_init(twins.athena, echo=lambda _line: None)
    twins.build()
    return twins


def test_a_full_build_on_athena_equals_the_duckdb_target_in_every_model(twins):
    assert assert_same_rows(twins) >= 15


def test_an_incremental_build_after_new_bronze_equals_the_duckdb_target(twins):
    late = DAY_1 + timedelta(hours=12, minutes=30)
    rows = series(1, DAY_1 + timedelta(hours=12), 60, 30, first_seq=5000) + series(
        2, DAY_1 + timedelta(hours=11, minutes=30), 30, 10, first_seq=6000, vibration_mm_s=14.0
    )
    write_bronze(twins.local.lake, rows, batch_id=7, ingested_at=late)
    upload_bronze(Path(twins.local.lake), twins.standin)
    twins.build()
    assert assert_same_rows(twins) >= 15


def test_a_backfill_of_one_date_equals_the_duckdb_target(twins):
    twins.build(vars={"backfill_from": DAY_1.date().isoformat(), "backfill_to": DAY_1.date().isoformat()})
    assert assert_same_rows(twins) >= 15


def test_lakehouse_athena_init_creates_the_tables_once_and_says_so(athena_standin, monkeypatch, capsys, tmp_path):
    from lakehouse.cli import main

    monkeypatch.chdir(tmp_path)
    for name, value in {
        "LAKEHOUSE_AWS_ENDPOINT_URL": athena_standin.endpoint,
        "LAKEHOUSE_ATHENA_WORK_GROUP": "primary",
        "LAKEHOUSE_ATHENA_RESULTS_URI": f"s3://{athena_standin.bucket}/athena-results/",
        "LAKEHOUSE_ATHENA_DATA_URI": f"s3://{athena_standin.bucket}/warehouse/",
        "LAKEHOUSE_ATHENA_SCHEMA": "clitest",
    }.items():
        monkeypatch.setenv(name, value)
    argv = ["--lake", f"s3://{athena_standin.bucket}/cli-lake", "--target", "athena", "athena", "init"]

    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    second = capsys.readouterr().out

    tables = (
        "clitest_bronze.readings",
        "clitest_ops.ops_runs",
        "clitest_ops.ops_gate_results",
        "clitest_catalogue.changes",
    )
    for name in tables:
        assert f"created {name}" in first and f"already there: {name}" in second
    assert "athena init: 12 created, 0 already there" in first
    assert "athena init: 0 created, 12 already there" in second
    glue = boto3.client("glue", endpoint_url=athena_standin.endpoint, region_name="us-east-1")
    runs = glue.get_table(DatabaseName="clitest_ops", Name="ops_runs")["Table"]
    assert runs["StorageDescriptor"]["Location"] == f"s3://{athena_standin.bucket}/cli-lake/ops/ops_runs/"
    readings = glue.get_table(DatabaseName="clitest_bronze", Name="readings")["Table"]
    assert readings["Parameters"]["projection.enabled"] == "true"
    assert [k["Name"] for k in readings["PartitionKeys"]] == ["event_date"]
