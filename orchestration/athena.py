"""Athena: the Glue database and external table over bronze that dbt's `athena` target reads.

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

DEFAULT_DATABASE = "lakehouse_bronze"
TABLE = "readings"
_HIVE_TYPES = {"string": "string", "long": "bigint", "double": "double", "timestamp": "timestamp"}
# Bronze bookkeeping columns (contract.BRONZE_METADATA_COLUMNS) and their Parquet types.
_METADATA_TYPES = {
    "_rescued_data": "string",
    "_ingested_at": "timestamp",
    "_source_file": "string",
    "_batch_id": "bigint",
    "_schema_version": "int",
}


def athena_ddl(settings: Settings, database: str = DEFAULT_DATABASE) -> list[str]:
    """CREATE DATABASE and CREATE EXTERNAL TABLE statements for bronze readings on ``settings.lake``."""
    lake = settings.lake_root
    if lake.is_local:
        raise LakehouseError(
            f"Athena reads bronze from S3, but the lake {lake.root} is a local folder; "
            f"pass --lake s3://bucket/prefix (or set LAKEHOUSE_LAKE)"
        )
    location = lake.bronze_readings.replace("s3a://", "s3://").replace("s3n://", "s3://").rstrip("/") + "/"
    columns = [f"  `{f.name}` {_HIVE_TYPES[f.type]}" for f in FIELDS]
    columns += [f"  `{name}` {kind}" for name, kind in _METADATA_TYPES.items()]
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
    return [
        f"CREATE DATABASE IF NOT EXISTS `{database}`",
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{TABLE}` (\n"
        + ",\n".join(columns)
        + f"\n)\nPARTITIONED BY (`{column}` date)\nSTORED AS PARQUET\nLOCATION '{location}'\n"
        + f"TBLPROPERTIES (\n{table_properties}\n)",
    ]


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
