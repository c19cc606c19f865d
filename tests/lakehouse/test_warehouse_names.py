"""One home for the warehouse's names: every reader takes table names and columns from lakehouse/warehouse.py,
whose columns are the ones the dbt models document."""

from __future__ import annotations

import pytest

from dashboards.quicksight.definitions import TABLES
from lakehouse import warehouse
from orchestration import alerts, cycle


def test_columns_are_the_ones_the_dbt_model_documents_in_its_order():
    assert warehouse.GOLD_ANOMALIES.columns()[:3] == ("anomaly_id", "device_id", "device_type")
    assert "rejection_reason" in warehouse.SILVER_REJECTED.columns()


def test_an_undocumented_model_is_named_with_the_ones_that_exist():
    with pytest.raises(KeyError, match="no documented dbt model 'gold_nothing'.*gold_anomalies"):
        warehouse.documented_columns("gold_nothing")


def test_alerts_read_every_documented_anomaly_column():
    assert warehouse.GOLD_ANOMALIES.columns() == alerts.ANOMALY_COLUMNS
    assert alerts.ANOMALIES_TABLE == "gold.gold_anomalies"


def test_the_cycle_counts_the_tables_of_the_kernel():
    assert {t.name: t.relation for t in warehouse.READING_TABLES} == cycle.WAREHOUSE_TABLES


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_quicksight_data_sets_name_only_documented_columns(table):
    documented = set(warehouse.documented_columns(table.name))
    assert {name for name, _ in table.columns} <= documented
