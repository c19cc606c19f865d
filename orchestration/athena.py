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
from dataclasses import dataclass, field
from typing import Any

from lakehouse.config import Settings
from lakehouse.contract import (
    BRONZE_PARTITION_COLUMN,
    EARLIEST_EVENT_TIME,
    FIELDS,
    LATEST_EVENT_TIME,
)
from lakehouse.errors import LakehouseError
from lakehouse.source_contracts import SOURCES

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
    each source of ``lakehouse.source_contracts`` (customer, accelerometer, step_trainer), and the one-row table the
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


# The ops records (lakehouse/ops.py) as Glue tables over their NDJSON, for analysts and QuickSight. Times are
# ISO-8601 strings with an offset (`from_iso8601_timestamp(started_at)` in Athena); the records' sample rows
# stay in the files (the JSON SerDe skips fields a table does not declare).
OPS_COLUMNS = {
    "ops_runs": [
        ("run_id", "string"),
        ("mode", "string"),
        ("step", "string"),
        ("status", "string"),
        ("rows_in", "bigint"),
        ("rows_out", "bigint"),
        ("rows_rejected", "bigint"),
        ("seconds", "double"),
        ("detail", "string"),
        ("bronze_batch_ids", "array<bigint>"),
        ("started_at", "string"),
        ("finished_at", "string"),
        ("cycle_started_at", "string"),
        ("recorded_at", "string"),
        ("backfill_from", "string"),
        ("backfill_to", "string"),
    ],
    "ops_gate_results": [
        ("run_id", "string"),
        ("layer", "string"),
        ("scope", "string"),
        ("suite", "string"),
        ("expectation", "string"),
        ("rule", "string"),
        ("column", "string"),
        ("severity", "string"),
        ("success", "boolean"),
        ("element_count", "bigint"),
        ("unexpected_count", "bigint"),
        ("unexpected_percent", "double"),
        ("missing_count", "bigint"),
        ("partition", "string"),
        ("observed_value", "string"),
        ("details", "string"),
        ("validated_at", "string"),
    ],
}


def databases(settings: Settings) -> dict[str, str]:
    """The Glue databases ``athena init`` creates, by role: ``<athena_schema>_bronze``, ``_secrets``, ``_ops``."""
    base = settings.athena_schema
    return {"bronze": f"{base}_bronze", "secrets": f"{base}_secrets", "ops": f"{base}_ops"}


def ops_ddl(settings: Settings, database: str) -> list[str]:
    """CREATE EXTERNAL TABLE statements over ``<lake>/ops/ops_runs/`` and ``<lake>/ops/ops_gate_results/``."""
    lake = settings.lake_root
    statements = []
    for table, columns in OPS_COLUMNS.items():
        statements.append(
            f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (\n"
            + ",\n".join(f"  `{name}` {kind}" for name, kind in columns)
            + "\n)\nROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n"
            + "WITH SERDEPROPERTIES ('ignore.malformed.json' = 'false')\n"
            + f"STORED AS TEXTFILE\nLOCATION '{_s3(lake.ops(table))}'"
        )
    return statements


@dataclass
class InitReport:
    """What ``athena init`` did: each object, created now or already there, and the statements it ran."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"created {name}" for name in self.created] + [f"already there: {name}" for name in self.existing]
        return "\n".join(lines + [f"athena init: {len(self.created)} created, {len(self.existing)} already there"])


def athena_init(settings: Settings, *, echo=print, athena: Any = None, glue: Any = None) -> InitReport:
    """Create the Glue databases and tables of the Athena target (idempotent): bronze (readings and the STEDI
    sources, partition projection on event_date), the ops records and the PII salt table. Reports what it
    created and what was already there; with ``settings.pii_salt`` set, stores the salt where the salt
    table reads it. Clients default to the one door to AWS (lakehouse/aws.py)."""
    from lakehouse import aws

    aws.require_athena(settings)
    names = databases(settings)
    statements = athena_ddl(settings, names["bronze"]) + [
        f"CREATE DATABASE IF NOT EXISTS `{names['ops']}`",
        *ops_ddl(settings, names["ops"]),
    ]
    if settings.pii_salt:
        from lakehouse.storage import storage_for

        # The salt lives in one S3 object only the pipeline may read; curated models read it at query time.
        uri = settings.lake_root.uri(*SALT_FOLDER, "salt.txt")
        storage_for(uri, settings).write_bytes(uri, (settings.pii_salt + "\n").encode())
    athena = athena or aws.client(settings, "athena")
    glue = glue or aws.client(settings, "glue")
    report = InitReport()
    for statement in statements:
        name = _object_name(statement)
        existed = _exists(glue, name)
        run_query(settings, statement, client=athena)
        report.statements.append(statement)
        (report.existing if existed else report.created).append(name)
    echo(report.summary())
    return report


def _object_name(statement: str) -> str:
    """``database`` or ``database.table`` of a CREATE statement."""
    head = statement.split("(", 1)[0] if "TABLE" in statement.split("\n", 1)[0] else statement
    return ".".join(part for part in head.split("`")[1::2])


def _exists(glue: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    from lakehouse.aws import aws_call_error

    database, _, table = name.partition(".")
    try:
        if table:
            glue.get_table(DatabaseName=database, Name=table)
        else:
            glue.get_database(Name=database)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
            return False
        raise aws_call_error(exc, "glue") from exc


def run_query(settings: Settings, statement: str, *, client: Any = None, database: str | None = None) -> str:
    """Run one statement on Athena in the settings' work group, writing results under ``athena_results_uri``;
    waits up to ``athena_query_timeout_s``. Returns the query id; a failed query or AWS call raises
    :class:`lakehouse.aws.AwsCallFailed` naming the operation and the error."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lakehouse import aws

    client = client or aws.client(settings, "athena")
    request: dict[str, Any] = {"QueryString": statement, "WorkGroup": settings.athena_work_group or "primary"}
    if settings.athena_results_uri:
        request["ResultConfiguration"] = {"OutputLocation": settings.athena_results_uri}
    if database:
        request["QueryExecutionContext"] = {"Database": database}
    operation = "StartQueryExecution"
    try:
        query_id = client.start_query_execution(**request)["QueryExecutionId"]
        operation = "GetQueryExecution"
        _wait(client, query_id, statement, settings.athena_query_timeout_s)
    except (ClientError, BotoCoreError) as exc:
        raise aws.aws_call_error(exc, "athena", operation) from exc
    return query_id


def _wait(client: Any, query_id: str, statement: str, timeout_s: float) -> None:
    from lakehouse.aws import AwsCallFailed

    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        status = client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        state = status["State"]
        if state == "SUCCEEDED":
            return
        first_line = statement.strip().splitlines()[0]
        if state in ("FAILED", "CANCELLED"):
            reason = status.get("StateChangeReason", "no reason given")
            raise AwsCallFailed(
                "athena", "StartQueryExecution", f"query {query_id} {state.lower()}: {reason} ({first_line} ...)"
            )
        if time.monotonic() > deadline:
            raise AwsCallFailed(
                "athena",
                "GetQueryExecution",
                f"query {query_id} still {state} after {timeout_s:.0f} s ({first_line} ...); check the work "
                f"group's capacity or raise athena_query_timeout_s",
            )
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def athena_target(settings: Settings) -> Any:  # -> expectations.athena.AthenaTarget
    """The gates' Athena target, from the settings (the same work group, results folder and schema as dbt)."""
    from expectations.athena import AthenaTarget
    from lakehouse import aws

    aws.require_athena(settings)
    return AthenaTarget(
        region=settings.aws_region,
        s3_staging_dir=settings.athena_results_uri,
        work_group=settings.athena_work_group,
        schema=settings.athena_schema,
        timeout_s=settings.aws_read_timeout_s,
    )
