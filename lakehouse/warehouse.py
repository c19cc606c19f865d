"""The warehouse's tables and their columns: one home for the names that gates, alerts, status, the
dashboards and the QuickSight definitions read.

Table names live here once. Columns are not written again at all: each dbt model documents its columns in
the YAML beside it (``dbt_project/models/<layer>/_<layer>__models.yml``), and :meth:`WarehouseTable.columns`
reads them from there, so a column renamed in a model is renamed for every reader, and a reader that
names an undocumented column fails at once, naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import yaml

from lakehouse.config import DBT_PROJECT_DIR


@dataclass(frozen=True)
class WarehouseTable:
    schema: str  # the dbt layer schema (DuckDB: the schema itself; Athena: <athena_schema>_<schema>)
    name: str

    @property
    def relation(self) -> str:
        """``schema.name``, as the local warehouse and the gates query it."""
        return f"{self.schema}.{self.name}"

    def columns(self) -> tuple[str, ...]:
        """The columns the model documents, in the YAML's order."""
        return documented_columns(self.name)


SILVER_READINGS = WarehouseTable("silver", "silver_readings")
SILVER_REJECTED = WarehouseTable("silver", "silver_rejected_readings")
GOLD_HOURLY = WarehouseTable("gold", "gold_sensor_metrics_hourly")
GOLD_DAILY = WarehouseTable("gold", "gold_sensor_metrics_daily")
GOLD_ANOMALIES = WarehouseTable("gold", "gold_anomalies")
GOLD_DEVICE_HEALTH = WarehouseTable("gold", "gold_device_health")

# What `lakehouse status`, the cycle summary and the dashboards count, in pipeline order.
READING_TABLES = (SILVER_READINGS, SILVER_REJECTED, GOLD_HOURLY, GOLD_ANOMALIES, GOLD_DEVICE_HEALTH)


@cache
def _documented_models() -> dict[str, tuple[str, ...]]:
    models: dict[str, tuple[str, ...]] = {}
    for path in sorted((DBT_PROJECT_DIR / "models").glob("*/_*__models.yml")):
        for model in yaml.safe_load(path.read_text()).get("models") or []:
            models[model["name"]] = tuple(column["name"] for column in model.get("columns") or [])
    return models


def documented_columns(model: str) -> tuple[str, ...]:
    """The documented columns of the dbt model ``model``; a KeyError names the models that exist."""
    models = _documented_models()
    if model not in models:
        raise KeyError(f"no documented dbt model '{model}' under {DBT_PROJECT_DIR / 'models'}; known: {sorted(models)}")
    return models[model]
