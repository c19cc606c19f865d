"""The same dbt project on Athena: `dbt compile --target athena` against Glue and Athena served by moto on
loopback, every compiled model parsed as Athena SQL; and the bronze table DDL of `athena_init`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import sqlglot

from lakehouse.config import DBT_PROJECT_DIR, Settings
from lakehouse.contract import BRONZE_METADATA_COLUMNS, FIELDS
from lakehouse.source_contracts import SOURCES
from orchestration.athena import athena_ddl, athena_init
from tests.support.athena_standin import TRINO_FUNCTIONS

BUCKET = "lakehouse-athena"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def aws():
    """moto in server mode on 127.0.0.1, with the staging bucket and the Glue databases dbt expects."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    glue = session.client("glue", endpoint_url=endpoint)
    for database in ("lakehouse", "lakehouse_bronze"):
        glue.create_database(DatabaseInput={"Name": database})
    try:
        yield SimpleNamespace(endpoint=endpoint, env=env, session=session)
    finally:
        server.stop()


def test_every_model_compiles_for_athena_and_parses_as_athena_sql(aws, tmp_path):
    target_path = tmp_path / "target"
    env = {
        **os.environ,
        **aws.env,
        "LAKEHOUSE_LAKE": f"s3://{BUCKET}/lake",
        "LAKEHOUSE_ATHENA_RESULTS_URI": f"s3://{BUCKET}/athena-results/",
        "LAKEHOUSE_ATHENA_DATA_URI": f"s3://{BUCKET}/warehouse/",
        "LAKEHOUSE_ATHENA_WORK_GROUP": "primary",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    dbt = Path(sys.executable).parent / "dbt"
    completed = subprocess.run(
        [
            str(dbt), "compile", "--target", "athena", "--select", "resource_type:model",
            "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(target_path), "--log-path", str(tmp_path / "logs"),
        ],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]

    models = sorted((DBT_PROJECT_DIR / "models").rglob("*.sql"))
    compiled = sorted(
        # data tests compile into folders named after their .yml file
        p
        for p in (target_path / "compiled" / "lakehouse" / "models").rglob("*.sql")
        if not p.parent.suffix
    )
    assert sorted(p.name for p in compiled) == sorted(p.name for p in models)
    for path in compiled:
        sql = path.read_text()
        assert "::" not in sql, f"{path.name}: Athena has no '::' casts"
        statements = sqlglot.parse(sql, read="athena", error_level=sqlglot.ErrorLevel.RAISE)
        assert len([s for s in statements if s is not None]) == 1, path.name
    # Only functions Trino has (a macro falling back to a DuckDB function fails here, as Athena would), and
    # no exact number divided by a decimal literal (DECIMAL in Trino, which rounds the quotient's scale).
    for path in compiled:
        tree = sqlglot.parse_one(path.read_text(), read="athena")
        unknown = sorted({str(f.this) for f in tree.find_all(sqlglot.exp.Anonymous)} - TRINO_FUNCTIONS)
        assert not unknown, f"{path.name}: functions Trino does not have: {unknown}"
        for division in tree.find_all(sqlglot.exp.Div):
            for side in (division.this, division.expression):
                literal = side.unnest() if isinstance(side, sqlglot.exp.Paren) else side
                is_decimal = isinstance(literal, sqlglot.exp.Literal) and "." in literal.name
                assert not is_decimal, f"{path.name}: divides by the DECIMAL literal {literal.name}: {division.sql()}"
    # STEDI: the curated customer key reads the salt from its Glue table when the query runs
    curated = next(p for p in compiled if p.name == "customers_curated.sql").read_text()
    assert "lower(to_hex(sha256(to_utf8((select max(salt) from lakehouse_secrets.pii_salt) || lower(" in curated


def test_athena_sources_read_the_glue_table_and_models_land_in_prefixed_databases(aws, tmp_path):
    # The compile above writes manifest.json; reading it again here keeps the tests independent.
    test_every_model_compiles_for_athena_and_parses_as_athena_sql(aws, tmp_path)
    silver = tmp_path / "target" / "compiled" / "lakehouse" / "models" / "staging" / "stg_bronze__readings.sql"
    text = silver.read_text()
    assert '"lakehouse_bronze"."readings"' in text
    gold = next((tmp_path / "target" / "compiled").rglob("gold_sensor_metrics_hourly.sql")).read_text()
    assert '"lakehouse_silver"."silver_readings"' in gold
    assert "approx_percentile(" in gold


def _athena_settings(aws, **overrides) -> Settings:
    return Settings.load(
        env={},
        lake=f"s3://{BUCKET}/lake",
        aws_endpoint_url=aws.endpoint,
        athena_work_group="primary",
        athena_results_uri=f"s3://{BUCKET}/athena-results/",
        athena_data_uri=f"s3://{BUCKET}/warehouse/",
        **overrides,
    )


def test_athena_init_creates_the_bronze_table_with_partition_projection(aws, monkeypatch):
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    settings = _athena_settings(aws)
    client = aws.session.client("athena", endpoint_url=aws.endpoint)
    statements = athena_init(settings, athena=client, echo=lambda _line: None).statements

    executed = [
        client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
        for query_id in client.list_query_executions()["QueryExecutionIds"]
    ]
    assert sorted(executed) == sorted(statements)
    create_table = next(s for s in statements if "`lakehouse_bronze`.`readings`" in s)
    for statement in statements:
        sqlglot.parse_one(statement, read="athena")
    columns = [line.strip().split("`")[1] for line in create_table.splitlines() if line.startswith("  `")]
    assert columns == [f.name for f in FIELDS] + list(BRONZE_METADATA_COLUMNS)
    assert "PARTITIONED BY (`event_date` date)" in create_table
    assert f"LOCATION 's3://{BUCKET}/lake/bronze/readings/'" in create_table
    assert "'projection.event_date.type' = 'date'" in create_table
    assert (
        f"'storage.location.template' = 's3://{BUCKET}/lake/bronze/readings/event_date=${{event_date}}/'"
        in create_table
    )


def test_athena_init_creates_a_table_per_stedi_source_and_stores_the_pii_salt_where_curated_reads_it(aws, monkeypatch):
    for name, value in aws.env.items():
        monkeypatch.setenv(name, value)
    settings = _athena_settings(aws, pii_salt="a-secret-salt-of-the-test")
    client = aws.session.client("athena", endpoint_url=aws.endpoint)
    statements = athena_init(settings, athena=client, echo=lambda _line: None).statements

    for source in SOURCES.values():
        create = next(s for s in statements if f"`lakehouse_bronze`.`{source.name}`" in s)
        sqlglot.parse_one(create, read="athena")
        columns = [line.strip().split("`")[1] for line in create.splitlines() if line.startswith("  `")]
        assert columns == list(source.columns) + list(BRONZE_METADATA_COLUMNS)
        assert f"LOCATION 's3://{BUCKET}/lake/bronze/{source.name}/'" in create
    salt_table = next(s for s in statements if "`lakehouse_secrets`.`pii_salt`" in s)
    assert f"LOCATION 's3://{BUCKET}/lake/_secrets/pii_salt/'" in salt_table
    stored = aws.session.client("s3", endpoint_url=aws.endpoint).get_object(
        Bucket=BUCKET, Key="lake/_secrets/pii_salt/salt.txt"
    )
    assert stored["Body"].read() == b"a-secret-salt-of-the-test\n"
    assert all("a-secret-salt" not in s for s in statements), "the salt is data, never SQL text"


def test_athena_ddl_refuses_a_local_lake(tmp_path):
    from lakehouse.errors import LakehouseError

    with pytest.raises(LakehouseError, match="s3://"):
        athena_ddl(Settings.load(env={}, lake=str(tmp_path)))


def test_the_gates_athena_target_comes_from_the_same_settings_as_dbt():
    from orchestration.athena import athena_target
    from orchestration.transform import dbt_connection_vars

    settings = Settings.load(
        env={
            "LAKEHOUSE_ATHENA_WORK_GROUP": "analytics",
            "LAKEHOUSE_ATHENA_RESULTS_URI": "s3://b/athena-results/",
            "LAKEHOUSE_ATHENA_DATA_URI": "s3://b/warehouse/",
            "LAKEHOUSE_ATHENA_SCHEMA": "plant7",
            "LAKEHOUSE_AWS_REGION": "eu-west-1",
        },
        lake="s3://b/lake",
        dbt_target="athena",
    )
    target = athena_target(settings)
    assert (target.region, target.work_group, target.s3_staging_dir, target.schema) == (
        "eu-west-1",
        "analytics",
        "s3://b/athena-results/",
        "plant7",
    )
    assert target.database("silver") == "plant7_silver"
    assert dbt_connection_vars(settings) == {
        "lake_root": "s3://b/lake",
        "aws_region": "eu-west-1",
        "athena_work_group": "analytics",
        "athena_results_uri": "s3://b/athena-results/",
        "athena_data_uri": "s3://b/warehouse/",
        "athena_schema": "plant7",
    }
