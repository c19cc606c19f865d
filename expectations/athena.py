"""The gates on AWS: the same suites, the same code path, on Athena (PyAthena's SQLAlchemy dialect).

The runner validates every suite through GX's SQL datasource on a warehouse URL (``warehouse.py``); this
module only builds Athena's: ``awsathena+rest://`` on the Glue databases, with botocore timeouts and
retries. The suites' SQL is the same text DuckDB runs locally (portable SQL, see ``silver.py``,
``gold.py``, ``bronze.py``), and GX computes the metrics in Athena.

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

from expectations.warehouse import SqlWarehouse

DATASOURCE = "athena"


@dataclass(frozen=True)
class AthenaTarget:
    region: str
    s3_staging_dir: str  # s3://bucket/path/ for query results
    work_group: str = "primary"
    schema: str = "lakehouse"  # Glue database prefix: lakehouse_bronze, lakehouse_silver, lakehouse_gold
    catalog: str = "awsdatacatalog"
    timeout_s: float = 60.0  # per Athena API call
    endpoint_url: str | None = None  # another Athena endpoint (a local stand-in); None: AWS's for the region

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
            + (f"&endpoint_url={quote_plus(self.endpoint_url)}" if self.endpoint_url else "")
        )


def athena_warehouse(target: AthenaTarget) -> SqlWarehouse:
    """The Glue tables through PyAthena's SQLAlchemy dialect; building it does not connect."""
    return SqlWarehouse(
        url=target.connection_string,
        kwargs={"connect_args": {"config": _botocore_config(target.timeout_s)}},
        tables=target.table,
        path=f"Athena ({target.catalog}, {target.region}, databases {target.database('*')})",
        schemas=lambda logical: (target.database(logical.split(".")[0]), logical.split(".")[1]),
        regexp_like="regexp_like",
    )


def _botocore_config(timeout_s: float) -> Any:
    from botocore.config import Config

    return Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 5})


@contextmanager
def open_athena(target: AthenaTarget) -> Iterator[SqlWarehouse]:
    warehouse = athena_warehouse(target)
    try:
        yield warehouse
    finally:
        warehouse.close()
