"""The Athena path, built without an AWS account: GX's SQL datasource on a PyAthena URL, one query asset
and whole-table batch definition per frame, the suites' SQL valid Athena SQL. Nothing here connects."""

from __future__ import annotations

from datetime import datetime

import duckdb
import great_expectations as gx
import pytest
import sqlglot
from sqlalchemy.engine import make_url

from expectations import bronze, gold, silver
from expectations.athena import AthenaTarget, add_frame, athena_datasource, event_date_literal
from expectations.config import load_gate_config
from expectations.gold import HOURLY_COLUMNS
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

TARGET = AthenaTarget(region="eu-west-1", s3_staging_dir="s3://lake-results/athena/", work_group="gates")
DAY = "2026-03-01"


def _frames(target: AthenaTarget) -> dict[str, str]:
    """Every kind of frame the gates send to Athena, with the SQL the runner builds for it."""
    config = load_gate_config(Settings().gates_config)
    lookback = silver.Lookback(floor=datetime(2026, 2, 26), new_batch_ids=(7, 8), days=3)
    return {
        "bronze__readings": bronze.readings_sql(target.table("bronze.readings"), DAY, [7, 8], f"date '{DAY}'"),
        "silver__readings": silver.readings_sql(target.table("silver.silver_readings"), DAY, lookback),
        "silver__rejected_readings": silver.rejected_sql(target.table("silver.silver_rejected_readings"), DAY),
        "gold__sensor_metrics_hourly": gold.hourly_sql(
            target.table("gold.gold_sensor_metrics_hourly"),
            target.table("silver.silver_readings"),
            DAY,
            config.parameters["order_decimals"],
            list(HOURLY_COLUMNS),
        ),
        "gold__anomalies": gold.anomalies_sql(target.table("gold.gold_anomalies"), DAY),
        "gold__device_health": gold.health_sql(target.table("gold.gold_device_health")),
    }


def test_the_connection_string_is_pyathenas_with_the_dbt_targets_databases():
    url = make_url(TARGET.connection_string)

    assert url.drivername == "awsathena+rest"
    assert url.host == "athena.eu-west-1.amazonaws.com" and url.port == 443
    assert url.database == "lakehouse_silver"
    assert url.query == {
        "s3_staging_dir": "s3://lake-results/athena/",
        "work_group": "gates",
        "catalog_name": "awsdatacatalog",
    }
    assert TARGET.table("gold.gold_anomalies") == '"lakehouse_gold"."gold_anomalies"'


def test_the_datasource_is_gxs_sql_datasource_on_the_pyathena_dialect():
    datasource = athena_datasource(TARGET)

    assert type(datasource).__name__ == "SQLDatasource"
    assert datasource.name == "athena"
    assert datasource.connection_string == TARGET.connection_string
    assert datasource.get_engine().dialect.name == "awsathena"  # an engine is built; nothing is connected
    assert datasource.kwargs["connect_args"]["config"].read_timeout == TARGET.timeout_s


@pytest.mark.parametrize("suite", list(_frames(TARGET)))
def test_each_frame_is_a_query_asset_with_a_whole_table_batch_definition(suite):
    datasource = athena_datasource(TARGET)
    query = _frames(TARGET)[suite]

    asset, batch_definition = add_frame(datasource, suite, DAY, query)

    assert type(asset).__name__ == "QueryAsset"
    assert asset.name == f"{suite} {DAY}"
    assert asset.query == query
    assert datasource.get_asset(f"{suite} {DAY}") is asset
    assert batch_definition.name == "frame"
    assert batch_definition.partitioner is None
    assert batch_definition.data_asset is asset


@pytest.mark.parametrize(("suite", "query"), list(_frames(TARGET).items()))
def test_each_frame_query_is_valid_athena_sql_on_the_glue_tables(suite, query):
    parsed = sqlglot.parse_one(query, read="athena")

    tables = {(t.db, t.name) for t in parsed.find_all(sqlglot.exp.Table) if t.name}
    layer = suite.split("__")[0]
    assert any(db == f"lakehouse_{layer}" for db, _ in tables), tables
    assert all(db.startswith("lakehouse_") for db, _ in tables), tables


def test_the_frame_queries_athena_runs_are_the_ones_duckdb_runs_locally(gate_lake):
    """The same SQL text, on DuckDB with schemas named like the Glue databases, returns the local frames."""
    gate_lake.write_warehouse(gate_lake.silver_from(gate_lake.clean_readings()))
    frames = _frames(TARGET)
    con = duckdb.connect(str(gate_lake.lake.warehouse))
    try:
        for layer in ("silver", "gold"):
            con.execute(f"create schema lakehouse_{layer}")
            for (table,) in con.execute(
                f"select table_name from information_schema.tables where table_schema = '{layer}'"
            ).fetchall():
                con.execute(f"create view lakehouse_{layer}.{table} as select * from {layer}.{table}")
        rows = {suite: len(con.execute(frames[suite]).df()) for suite in frames if not suite.startswith("bronze")}
    finally:
        con.close()

    assert rows["silver__readings"] == 192
    assert rows["silver__rejected_readings"] == 0
    assert rows["gold__sensor_metrics_hourly"] == len(gate_lake.query("select * from gold.gold_sensor_metrics_hourly"))
    assert rows["gold__device_health"] == 8


def test_validation_definitions_and_the_checkpoint_are_built_for_athena_frames():
    config = load_gate_config(Settings().gates_config)
    spec = gold.anomalies_suite(config)
    _, batch_definition = add_frame(athena_datasource(TARGET), spec.name, DAY, _frames(TARGET)[spec.name])

    definition = gx.ValidationDefinition(name=f"{spec.name} {DAY}", data=batch_definition, suite=spec.build())
    checkpoint = gx.Checkpoint(
        name="gate_gold", validation_definitions=[definition], result_format=spec.result_format, actions=[]
    )

    assert definition.data.data_asset.datasource.name == "athena"
    assert definition.suite.name == "gold__anomalies"
    assert len(definition.suite.expectations) == len(spec.expectations)
    assert checkpoint.result_format["unexpected_index_column_names"][0] == "anomaly_id"


def test_bronze_types_are_checked_by_sqlalchemy_type_name_on_athena():
    config = load_gate_config(Settings().gates_config)

    suite = bronze.readings_suite(config, Settings(), engine="sql").build()

    seq = next(e for e in suite.expectations if e.meta["name"] == "seq_has_type_long")
    assert seq.type_list == ["BIGINT", "BigInteger"]
    assert event_date_literal(DAY, "date") == "date '2026-03-01'"
    assert event_date_literal(DAY, "varchar") == "'2026-03-01'"


def test_a_lakehouse_on_athena_needs_an_athena_target_for_its_gates(gate_lake):
    from expectations.runner import run_gate

    settings = gate_lake.settings.with_overrides(dbt_target="athena")

    with pytest.raises(LakehouseError, match="dbt_target is athena but no Athena target was given"):
        run_gate(settings, "silver", run_id="r")
