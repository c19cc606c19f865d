"""A user's own STEDI export, and nothing else: the files are brought with `lakehouse ingest-files`, and
`lakehouse run` lands, gates and curates them on a lake that has no sensor readings at all."""

from __future__ import annotations

import duckdb
import pytest

from lakehouse.cli import main
from lakehouse.config import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def files_only_lake(spark, tmp_path_factory):
    from ingestion.stedi import StediConfig, generate
    from orchestration.cycle import run_cycle

    export = tmp_path_factory.mktemp("export")
    dataset = generate(StediConfig(customers=12, seed=8))
    for source, files in dataset.files.items():
        for n, lines in enumerate(files):
            path = export / source / f"{source}-{n}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n")
    lake = tmp_path_factory.mktemp("files-only") / "lake"
    for source in dataset.files:
        assert main(["--lake", str(lake), "ingest-files", "--source", source, str(export / source)]) == 0
    settings = Settings(lake=str(lake))
    report = run_cycle(settings, spark=spark, echo=lambda _line: None)
    return settings, dataset.answers, report


def test_a_lake_of_stedi_files_only_runs_a_whole_cycle(files_only_lake):
    _, _, report = files_only_lake
    assert report.success, report.failure
    assert {s.step: s.status for s in report.steps} == {
        step: "ok" for step in ("bronze", "gate_bronze", "silver", "gate_silver", "gold", "gate_gold")
    }


def test_its_curated_tables_hold_the_known_answers(files_only_lake):
    settings, answers, _ = files_only_lake
    expected = answers["policies"]["since_consent"]
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        for model, schema in (("customers_curated", "curated"), ("machine_learning_curated", "curated")):
            assert con.execute(f"select count(*) from {schema}.{model}").fetchall() == [(expected[model],)], model
        assert con.execute("select count(*) from silver.silver_readings").fetchall() == [(0,)]
