"""Seeds and views are built again only when what they are built from changes (orchestration/build_cache.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from lakehouse.config import Settings
from orchestration.build_cache import bronze_tables_with_files, project_digest

DAY = datetime(2026, 3, 1)
VARS = {"reference_time": "2026-03-10 00:00:00"}
SEEDS_AND_VIEWS = {
    "unit_conversions",
    "stg_catalogue__changes",
    "catalogue_devices",
    "catalogue_device_types",
    "catalogue_metrics",
    "stg_bronze__readings",
    "silver_readings",
    "silver_rejected_readings",
}


def built(lake) -> set[str]:
    return {model.name for model in lake.result.models}


def write_hour(bronze, lake: Path, hour: int) -> None:
    rows = bronze.series(2, DAY + timedelta(hours=hour), 360, 10, first_seq=hour * 360 + 1)
    bronze.write(lake, rows, batch_id=hour, ingested_at=DAY + timedelta(hours=hour + 1))


def test_a_second_build_in_the_same_process_leaves_the_seeds_and_views_as_built(tmp_path, bronze, lake_builder):
    write_hour(bronze, tmp_path, 8)
    first = lake_builder(vars=VARS)
    assert first.result.success, first.result.failures
    assert built(first) >= SEEDS_AND_VIEWS

    write_hour(bronze, tmp_path, 9)
    second = lake_builder(vars=VARS)
    assert second.result.success, second.result.failures
    assert not SEEDS_AND_VIEWS & built(second)
    assert {"silver_classified_readings", "gold_anomalies"} <= built(second)
    # The views were not rebuilt, and show the new readings all the same.
    assert second.query("select count(*) from silver.silver_readings") == [(720,)]


def test_the_seeds_and_views_are_built_again_when_what_they_are_built_from_changes(tmp_path, bronze, lake_builder):
    write_hour(bronze, tmp_path, 8)
    assert lake_builder(vars=VARS).result.success

    other_vars = lake_builder(vars={**VARS, "lookback_days": 5})
    assert built(other_vars) >= SEEDS_AND_VIEWS
    assert not SEEDS_AND_VIEWS & built(lake_builder(vars={**VARS, "lookback_days": 5}))

    full_refresh = lake_builder(vars={**VARS, "lookback_days": 5}, full_refresh=True)
    assert built(full_refresh) >= SEEDS_AND_VIEWS

    (tmp_path / "warehouse.duckdb").unlink()
    new_warehouse = lake_builder(vars={**VARS, "lookback_days": 5})
    assert new_warehouse.result.success, new_warehouse.result.failures
    assert built(new_warehouse) >= SEEDS_AND_VIEWS
    assert new_warehouse.query("select count(*) from silver.silver_readings") == [(360,)]


def test_the_first_file_of_a_bronze_table_changes_what_the_views_are_built_from(tmp_path):
    settings = Settings.load(env={}, cwd=tmp_path, lake=str(tmp_path))
    (tmp_path / "bronze" / "readings" / "event_date=2026-03-01").mkdir(parents=True)
    (tmp_path / "bronze" / "customer").mkdir(parents=True)
    assert bronze_tables_with_files(settings) == []
    (tmp_path / "bronze" / "readings" / "event_date=2026-03-01" / "part-0.parquet").write_bytes(b"")
    assert bronze_tables_with_files(settings) == ["readings"]


def test_the_project_digest_follows_the_project_files_not_what_dbt_writes(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "target").mkdir()
    model = tmp_path / "models" / "a_model.sql"
    model.write_text("select 1 as a")
    digest = project_digest(tmp_path)
    (tmp_path / "target" / "manifest.json").write_text("{}")
    assert project_digest(tmp_path) == digest
    model.write_text("select 2 as a")
    assert project_digest(tmp_path) != digest
