"""End to end through `lakehouse demo` (the README's first command): a readings fleet and the STEDI
simulator's three sources land through the same Spark job, the cycle builds gold and the trusted and
curated zones, and every STEDI table matches the simulator's known answers, under both consent policies.

The demo runs once for the module; the ``any_time`` policy is then built over the same bronze with
``lakehouse transform``'s function.
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
    """`lakehouse demo` through its command line (in-process, sharing the session's Spark): a small
    readings fleet and a STEDI dataset of 24 customers, one cycle."""
    from ingestion.stedi import read_answers
    from lakehouse.cli import main

    lake = tmp_path_factory.mktemp("stedi-e2e") / "lake"
    outputs: list[str] = []
    capture = pytest.MonkeyPatch()
    capture.setattr("builtins.print", lambda *a, **_k: outputs.append(" ".join(str(x) for x in a)))
    try:
        args = ["--readings", "800", "--devices", "8", "--stedi-customers", "24", "--seed", "3"]
        code = main(["--lake", str(lake), "demo", *args])
    finally:
        capture.undo()
    settings = Settings(lake=str(lake))
    return settings, read_answers(settings), DemoRun(code, "\n".join(outputs))


class DemoRun:
    def __init__(self, code: int, output: str) -> None:
        self.code, self.output = code, output


@pytest.fixture(scope="module")
def any_time_lake(stedi_lake):
    from orchestration.transform import transform

    settings, answers, _ = stedi_lake
    settings = settings.with_overrides(consent_policy="any_time")
    for layer in ("silver", "gold"):
        result = transform(settings, layer)
        assert result.success, result
    return settings, answers


def test_the_demo_exits_0_and_prints_a_row_per_stage_and_where_to_look(stedi_lake):
    _, _, demo = stedi_lake
    assert demo.code == 0, demo.output
    rows = [line.split()[0] for line in demo.output.splitlines() if line.split()]
    for stage in ("produce", "produce_stedi", "bronze", "gate_bronze", "silver", "gate_silver", "gold", "gate_gold"):
        assert stage in rows, f"no '{stage}' row in:\n{demo.output}"
    assert "curated.machine_learning_curated" in demo.output, "the next steps show the curated zone"


def test_the_demo_builds_gold_beside_the_curated_zone(stedi_lake):
    settings, _, _ = stedi_lake
    assert sql(settings, "select count(*) > 0 from gold.gold_sensor_metrics_hourly") == [(True,)]


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
