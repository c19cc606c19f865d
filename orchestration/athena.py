"""Athena: the Glue databases and external tables over bronze that dbt's `athena` target reads (readings,
the STEDI sources customer / accelerometer / step_trainer) and the PII salt table of the curated models.

``athena_ddl`` renders the statements from the reading contract (so the table can never drift from the
Parquet the Spark job writes); ``athena_init`` runs them through Athena and returns them. The table is
partitioned by ``event_date`` with *partition projection*: Athena computes the partitions from the
table properties instead of a catalog of partitions, so new bronze dates need no ``MSCK REPAIR`` and
queries that filter on event_date read only those folders.

The dbt source ``bronze.readings`` (dbt_project/models/staging/_bronze__sources.yml) expects the table
``<database>.readings`` with ``<database>`` = dbt var ``bronze_schema`` (default: the target schema +
``_bronze``, i.e. ``lakehouse_bronze`` with the profile's defaults).
"""

from __future__ import annotations

import time
from typing import Any

from lakehouse.config import Settings
from lakehouse.contract import (
    BRONZE_PARTITION_COLUMN,
    EARLIEST_EVENT_TIME,
    FIELDS,
    LATEST_EVENT_TIME,
)
from lakehouse.errors import LakehouseError
from lakehouse.sources import SOURCES

DEFAULT_DATABASE = "lakehouse_bronze"
TABLE = "readings"
_HIVE_TYPES = {"string": "string", "long": "bigint", "double": "double", "timestamp": "timestamp"}
SALT_TABLE = "pii_salt"
SALT_FOLDER = ("_secrets", "pii_salt")  # under the lake: one text object holding the salt
# Bronze bookkeeping columns (contract.BRONZE_METADATA_COLUMNS) and their Parquet types.
_METADATA_TYPES = {
    "_rescued_data": "string",
    "_ingested_at": "timestamp",
    "_source_file": "string",
    "_batch_id": "bigint",
    "_schema_version": "int",
}


def athena_ddl(settings: Settings, database: str = DEFAULT_DATABASE) -> list[str]:
    """CREATE DATABASE and CREATE EXTERNAL TABLE statements for bronze on ``settings.lake``: the readings,
    each source of ``lakehouse.sources`` (customer, accelerometer, step_trainer), and the one-row table the
    curated STEDI models read the PII salt from (``<secrets database>.pii_salt``)."""
    lake = settings.lake_root
    if lake.is_local:
        raise LakehouseError(
            f"Athena reads bronze from S3, but the lake {lake.root} is a local folder; "
            f"pass --lake s3://bucket/prefix (or set LAKEHOUSE_LAKE)"
        )
    readings = [(f.name, _HIVE_TYPES[f.type]) for f in FIELDS] + list(_METADATA_TYPES.items())
    statements = [f"CREATE DATABASE IF NOT EXISTS `{database}`"]
    statements.append(_partitioned_table(database, TABLE, _s3(lake.bronze_readings), readings))
    for source in SOURCES.values():
        columns = [(f.column, f.bronze_type) for f in source.fields] + list(_METADATA_TYPES.items())
        statements.append(_partitioned_table(database, source.name, _s3(lake.bronze(source.name)), columns))
    statements += catalogue_ddl(settings, catalogue_database(database))
    secrets = secrets_database(database)
    statements += [
        f"CREATE DATABASE IF NOT EXISTS `{secrets}`",
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{secrets}`.`{SALT_TABLE}` (\n  `salt` string\n)\n"
        f"STORED AS TEXTFILE\nLOCATION '{_s3(lake.uri(*SALT_FOLDER))}'",
    ]
    return statements


def catalogue_database(database: str = DEFAULT_DATABASE) -> str:
    """The Glue database of the catalogue table: the bronze database's prefix + ``_catalogue``, which is
    the dbt default ``<target schema>_catalogue`` (var ``catalogue_schema``) of the source catalogue.changes."""
    return database.removesuffix("_bronze") + "_catalogue"


def catalogue_ddl(settings: Settings, database: str) -> list[str]:
    """The catalogue's Glue table ``<database>.changes``: every version's Parquet file, never rewritten
    (lakehouse/catalogue_store.py), so a plain unpartitioned table over the folder reads all of history."""
    from lakehouse.catalogue_store import SCHEMA, changes_uri

    kinds = {"string": "string", "int64": "bigint", "double": "double", "timestamp[us]": "timestamp"}
    columns = ",\n".join(f"  `{f.name}` {kinds[str(f.type)]}" for f in SCHEMA)
    return [
        f"CREATE DATABASE IF NOT EXISTS `{database}`",
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`changes` (\n{columns}\n)\n"
        f"STORED AS PARQUET\nLOCATION '{_s3(changes_uri(settings))}'",
    ]


def secrets_database(database: str = DEFAULT_DATABASE) -> str:
    """The Glue database of the PII salt table: the bronze database's prefix + ``_secrets``, which is the
    dbt default ``<target schema>_secrets`` (var ``pii_salt_table``) when bronze is ``<target schema>_bronze``."""
    return database.removesuffix("_bronze") + "_secrets"


def _s3(uri: str) -> str:
    return uri.replace("s3a://", "s3://").replace("s3n://", "s3://").rstrip("/") + "/"


def _partitioned_table(database: str, table: str, location: str, columns: list[tuple[str, str]]) -> str:
    """An external Parquet table partitioned by event_date with partition projection over ``location``."""
    column = BRONZE_PARTITION_COLUMN
    properties = {
        "projection.enabled": "true",
        f"projection.{column}.type": "date",
        f"projection.{column}.format": "yyyy-MM-dd",
        f"projection.{column}.range": f"{EARLIEST_EVENT_TIME:%Y-%m-%d},{LATEST_EVENT_TIME:%Y-%m-%d}",
        f"projection.{column}.interval": "1",
        f"projection.{column}.interval.unit": "DAYS",
        "storage.location.template": f"{location}{column}=${{{column}}}/",
        "classification": "parquet",
    }
    table_properties = ",\n".join(f"  '{key}' = '{value}'" for key, value in properties.items())
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (\n"
        + ",\n".join(f"  `{name}` {kind}" for name, kind in columns)
        + f"\n)\nPARTITIONED BY (`{column}` date)\nSTORED AS PARQUET\nLOCATION '{location}'\n"
        + f"TBLPROPERTIES (\n{table_properties}\n)"
    )


def athena_init(
    settings: Settings,
    *,
    database: str = DEFAULT_DATABASE,
    output_location: str | None = None,
    work_group: str = "primary",
    client: Any = None,
    timeout_s: float = 120.0,
) -> list[str]:
    """Create the bronze database and table in Athena (idempotent); returns the statements it ran.

    ``output_location`` is where Athena writes query results (``s3://bucket/path/``; default: the work
    group's setting). ``client`` is a boto3 Athena client (default: one from the usual AWS settings).
    """
    statements = athena_ddl(settings, database)
    if settings.pii_salt:
        from ingestion.ingest_files import landing_storage

        # The salt lives in one S3 object only the pipeline may read; curated models read it at query time.
        uri = settings.lake_root.uri(*SALT_FOLDER, "salt.txt")
        landing_storage(settings).write_bytes(uri, (settings.pii_salt + "\n").encode())
    if client is None:
        import boto3
        from botocore.config import Config

        client = boto3.client("athena", config=Config(connect_timeout=10, read_timeout=30, retries={"max_attempts": 5}))
    for statement in statements:
        request: dict[str, Any] = {"QueryString": statement, "WorkGroup": work_group}
        if output_location:
            request["ResultConfiguration"] = {"OutputLocation": output_location}
        query_id = client.start_query_execution(**request)["QueryExecutionId"]
        _wait(client, query_id, statement, timeout_s)
    return statements


def _wait(client: Any, query_id: str, statement: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        state = status["State"]
        if state == "SUCCEEDED":
            return
        if state in ("FAILED", "CANCELLED"):
            reason = status.get("StateChangeReason", "no reason given")
            raise LakehouseError(f"Athena query {query_id} {state.lower()}: {reason}\n{statement.splitlines()[0]} ...")
        if time.monotonic() > deadline:
            raise LakehouseError(
                f"Athena query {query_id} still {state} after {timeout_s:.0f} s: {statement.splitlines()[0]} ...; "
                f"check the work group's capacity or raise the timeout"
            )
        time.sleep(0.5)
