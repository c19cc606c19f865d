"""The Athena path, built without an AWS account: GX's SQL datasource on a PyAthena URL, one query asset
and whole-table batch definition per suite over the increment, the suites' SQL and the metric queries GX
builds from the suites valid Trino SQL. Nothing here connects to AWS."""

from __future__ import annotations

from datetime import datetime

import duckdb
import great_expectations as gx
import pandas as pd
import pytest
import sqlglot
from sqlalchemy.engine import make_url

from expectations import bronze, gold, silver
from expectations.athena import AthenaTarget, athena_warehouse
from expectations.config import load_gate_config
from expectations.engine import add_increment, sql_datasource
from expectations.gold import HOURLY_COLUMNS
from lakehouse.config import Settings
from lakehouse.contract import BRONZE_METADATA_COLUMNS, FIELDS
from lakehouse.errors import LakehouseError
from lakehouse.fleet import default_fleet

TARGET = AthenaTarget(region="eu-west-1", s3_staging_dir="s3://lake-results/athena/", work_group="gates")
DAY = "2026-03-01"
RANGES = [("2026-02-27", "2026-03-01"), ("2026-03-05", "2026-03-05")]  # an increment of four dates
FLEET = default_fleet()  # a new lake's catalogue: the simulator's fleet


def athena_datasource(target: AthenaTarget):
    return sql_datasource("athena", athena_warehouse(target))


def _frames(target: AthenaTarget) -> dict[str, str]:
    """Every kind of frame the gates send to Athena, with the SQL the runner builds for it."""
    config = load_gate_config(Settings().gates_config)
    lookback = silver.Lookback(floor=datetime(2026, 2, 26), new_batch_ids=(7, 8), days=3)
    return {
        "bronze__readings": bronze.readings_sql(
            target.table("bronze.readings"),
            [DAY, "2026-03-02"],
            [7, 8],
            "date",
            [f.name for f in FIELDS] + list(BRONZE_METADATA_COLUMNS),
            athena_warehouse(target).regexp_like,
        ),
        "silver__readings": silver.readings_sql(target.table("silver.silver_readings"), RANGES, lookback, FLEET),
        "silver__rejected_readings": silver.rejected_sql(target.table("silver.silver_rejected_readings"), RANGES),
        "gold__sensor_metrics_hourly": gold.hourly_sql(
            target.table("gold.gold_sensor_metrics_hourly"),
            target.table("silver.silver_readings"),
            RANGES,
            config.parameters["order_decimals"],
            list(HOURLY_COLUMNS),
            FLEET,
        ),
        "gold__anomalies": gold.anomalies_sql(target.table("gold.gold_anomalies"), RANGES),
        "gold__device_health": gold.health_sql(target.table("gold.gold_device_health"), FLEET),
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


def test_the_local_warehouse_is_the_same_datasource_on_a_duckdb_url(gate_lake):
    from expectations.warehouse import open_local_warehouse

    gate_lake.write_warehouse(gate_lake.silver_from(gate_lake.clean_readings()))
    with open_local_warehouse(gate_lake.lake.warehouse) as warehouse:
        datasource = sql_datasource("silver", warehouse)

        assert type(datasource).__name__ == "SQLDatasource"
        assert make_url(datasource.connection_string).drivername == "duckdb+gates"
        assert make_url(datasource.connection_string).query == {"access_mode": "read_only", "memory_limit": "512MB"}
        assert datasource.get_engine().dialect.name == "duckdb"
        assert warehouse.scalar("select count(*) from silver.silver_readings") == 192


@pytest.mark.parametrize("suite", list(_frames(TARGET)))
def test_each_suite_validates_one_query_asset_over_the_whole_increment(suite):
    datasource = athena_datasource(TARGET)
    query = _frames(TARGET)[suite]

    asset, batch_definition = add_increment(datasource, suite, "increment", query)

    assert type(asset).__name__ == "QueryAsset"
    assert asset.name == f"{suite} increment"
    assert asset.query == query
    assert datasource.get_asset(f"{suite} increment") is asset
    assert batch_definition.name == "increment"
    assert batch_definition.partitioner is None  # one batch, not one per event date
    assert batch_definition.data_asset is asset


@pytest.mark.parametrize(("suite", "query"), list(_frames(TARGET).items()))
def test_each_suite_query_is_valid_trino_sql_on_the_glue_tables(suite, query):
    parsed = sqlglot.parse_one(query, read="trino")

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
    spec = gold.anomalies_suite(config, FLEET)
    _, batch_definition = add_increment(athena_datasource(TARGET), spec.name, DAY, _frames(TARGET)[spec.name])

    definition = gx.ValidationDefinition(name=f"{spec.name} {DAY}", data=batch_definition, suite=spec.build())
    checkpoint = gx.Checkpoint(
        name="gate_gold", validation_definitions=[definition], result_format=spec.result_format, actions=[]
    )

    assert definition.data.data_asset.datasource.name == "athena"
    assert definition.suite.name == "gold__anomalies"
    assert len(definition.suite.expectations) == len(spec.expectations)
    assert checkpoint.result_format["unexpected_index_column_names"][0] == "anomaly_id"


def test_bronze_types_are_checked_by_the_type_names_duckdb_and_trino_give():
    config = load_gate_config(Settings().gates_config)

    suite = bronze.readings_suite(config, Settings(), FLEET).build()

    seq = next(e for e in suite.expectations if e.meta["name"] == "seq_has_type_long")
    assert (seq.column, seq.value_set) == ("chk_seq__type", ["bigint"])
    bronze_sql = _frames(TARGET)["bronze__readings"]
    assert "event_date in (date '2026-03-01', date '2026-03-02')" in bronze_sql  # the Glue column's type
    assert 'lower(typeof("seq")) as chk_seq__type' in bronze_sql


def test_a_lakehouse_on_athena_needs_an_athena_target_for_its_gates(gate_lake):
    from expectations.runner import run_gate

    settings = gate_lake.settings.with_overrides(dbt_target="athena")

    with pytest.raises(LakehouseError, match="dbt_target is athena but no Athena target was given"):
        run_gate(settings, "silver", run_id="r")


def _functions_trino_lacks(sql: str) -> set[str]:
    """Functions sqlglot does not know as Trino's (it parses them as anonymous calls)."""
    return {f.name.lower() for f in sqlglot.parse_one(sql, read="trino").find_all(sqlglot.exp.Anonymous)}


def test_the_metric_queries_gx_builds_from_every_suite_compile_to_valid_trino_for_athena(gate_lake, monkeypatch):
    """Every query GX runs for the gates (verdicts, counts, sample rows), compiled with PyAthena's dialect,
    parses as Trino. Recorded on DuckDB from real gate runs over spoiled data, so the failure-detail
    queries are among them."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine_module
    from pyathena.sqlalchemy.rest import AthenaRestDialect

    from expectations.runner import run_gate

    executed = []
    run_query = engine_module.SqlAlchemyExecutionEngine.execute_query

    def recording(self, query):
        executed.append(query)
        return run_query(self, query)

    monkeypatch.setattr(engine_module.SqlAlchemyExecutionEngine, "execute_query", recording)
    bronze_rows = gate_lake.clean_readings()
    bronze_rows.loc[0, "device_id"] = "bad-id"
    gate_lake.write_bronze(bronze_rows, batch_id=0)
    silver_rows = gate_lake.silver_from(gate_lake.clean_readings())
    gate_lake.write_warehouse(pd.concat([silver_rows, silver_rows.iloc[[0]]]))
    gate_lake.execute("update gold.gold_sensor_metrics_hourly set completeness = 2 where reading_count = 2")
    for layer in ("bronze", "silver", "gold"):
        run_gate(gate_lake.settings, layer, run_id="trino")

    dialect = AthenaRestDialect()
    compiled = [str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True})) for q in executed]
    assert len(compiled) > 10 and any("unexpected" in sql.lower() for sql in compiled)
    lacking = set()
    for sql in compiled:
        lacking |= _functions_trino_lacks(sql)  # parse_one raises on SQL that is not Trino
    assert lacking <= {"regexp_matches"}  # DuckDB's name in the local bronze SQL; on Athena: regexp_like


@pytest.mark.parametrize(("suite", "query"), list(_frames(TARGET).items()))
def test_each_suite_query_uses_only_functions_trino_has(suite, query):
    assert _functions_trino_lacks(query) == set()
