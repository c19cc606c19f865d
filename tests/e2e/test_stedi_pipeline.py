"""End to end for the STEDI curation: the simulator's three sources land through the same Spark job as the
readings, the cycle builds the trusted and curated zones, and every table matches the simulator's known
answers, under both consent policies.

One cycle runs once for the module (with a small readings fleet beside, as a real lake has); the
``any_time`` policy is then built over the same bronze with ``lakehouse transform``'s function.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import duckdb
import pytest

from lakehouse.config import Settings

pytestmark = pytest.mark.e2e

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
TABLES = {
    "customer_trusted": "trusted.customer_trusted",
    "accelerometer_trusted": "trusted.accelerometer_trusted",
    "step_trainer_trusted": "trusted.step_trainer_trusted",
    "customers_curated": "curated.customers_curated",
    "machine_learning_curated": "curated.machine_learning_curated",
}


def sql(settings: Settings, query: str) -> list[tuple]:
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        return con.execute(query).fetchall()


def parquet_count(uri: str) -> int:
    with duckdb.connect() as con:
        return con.execute(f"select count(*) from read_parquet('{uri}/*/*.parquet')").fetchall()[0][0]


def customer_key(settings: Settings, email: str) -> str:
    salt = settings.lake_root.local_path("_secrets", "pii_salt").read_text().strip()
    return hashlib.sha256((salt + email.lower()).encode()).hexdigest()


@pytest.fixture(scope="module")
def stedi_lake(spark, tmp_path_factory):
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig
    from ingestion.stedi import StediConfig, produce_stedi
    from orchestration.cycle import run_cycle

    settings = Settings(lake=str(tmp_path_factory.mktemp("stedi-e2e") / "lake"))
    produce(settings, FleetConfig(devices=8, readings=800, dirty_rate=0.0, seed=5, start=START))
    produced = produce_stedi(settings, StediConfig(customers=24, seed=3))
    report = run_cycle(settings, spark=spark, echo=lambda _line: None)
    return settings, produced.answers, report


@pytest.fixture(scope="module")
def any_time_lake(stedi_lake):
    from orchestration.transform import transform

    settings, answers, _ = stedi_lake
    settings = settings.with_overrides(consent_policy="any_time")
    for layer in ("silver", "gold"):
        result = transform(settings, layer)
        assert result.success, result
    return settings, answers


def test_the_cycle_lands_and_curates_the_three_sources(stedi_lake):
    _, _, report = stedi_lake
    assert report.success, report.failure


def test_every_landed_line_of_each_source_is_a_bronze_row(stedi_lake):
    settings, answers, _ = stedi_lake
    lake = settings.lake_root
    for source, landed in answers["landing"].items():
        assert parquet_count(lake.bronze(source)) == landed["lines"], source


@pytest.mark.parametrize("model", list(TABLES))
def test_each_model_holds_the_known_number_of_rows_since_consent(stedi_lake, model):
    settings, answers, _ = stedi_lake
    assert sql(settings, f"select count(*) from {TABLES[model]}") == [(answers["policies"]["since_consent"][model],)]


def known_customers_are_there(settings: Settings, expected: dict[str, list[str]]) -> None:
    trusted = sorted(e for (e,) in sql(settings, "select email from trusted.customer_trusted"))
    curated = {k for (k,) in sql(settings, "select customer_key from curated.customers_curated")}
    assert trusted == expected["customer_trusted"]
    assert curated == {customer_key(settings, e) for e in expected["customers_curated"]}


def test_the_trusted_and_curated_customers_are_the_known_ones_since_consent(stedi_lake):
    settings, answers, _ = stedi_lake
    known_customers_are_there(settings, answers["contents"]["since_consent"])


# The tests below rebuild the same warehouse under the any_time policy (module fixture): keep them last.
@pytest.mark.parametrize("model", list(TABLES))
def test_each_model_holds_the_known_number_of_rows_any_time(any_time_lake, model):
    settings, answers = any_time_lake
    assert sql(settings, f"select count(*) from {TABLES[model]}") == [(answers["policies"]["any_time"][model],)]


def test_the_trusted_and_curated_customers_are_the_known_ones_any_time(any_time_lake):
    settings, answers = any_time_lake
    known_customers_are_there(settings, answers["contents"]["any_time"])


def test_every_table_says_which_policy_built_it(any_time_lake):
    settings, _ = any_time_lake
    for table in TABLES.values():
        assert sql(settings, f"select distinct consent_policy from {table}") == [("any_time",)], table
