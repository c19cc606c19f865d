"""The STEDI gates in the silver gate, on a lake built as a cycle builds it (the silver step with the real
dbt), first with the known-answer scenario (clean but for the warnings it holds on purpose), then with a
broken batch added."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from expectations.runner import run_gate
from lakehouse import ops
from lakehouse.config import Settings
from orchestration.transform import transform

STEDI_SUITES = ["silver__stedi_customer", "silver__stedi_accelerometer", "silver__stedi_step_trainer"]


def failed(result) -> dict[str, tuple[str, int | None]]:
    """expectation -> (severity, unexpected rows) of every failed STEDI expectation."""
    return {o.expectation: (o.severity, o.unexpected_count) for o in result.failures if o.suite in STEDI_SUITES}


@pytest.fixture(scope="module")
def gated(stedi, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    lake = tmp_path_factory.mktemp("stedi_gates")
    stedi.write_scenario(lake)
    stedi.write_sensor_readings(lake)
    settings = Settings.load(env={}, cwd=lake, lake=str(lake), pii_salt=stedi.salt)
    built = transform(settings, "silver")
    assert built.success, built.failures
    clean = run_gate(settings, "silver", run_id="clean")

    # A broken batch: a customer who "consented" before registering, a conflicting copy of a reading.
    broken_customer = stedi.customer("ivan", "SN-I", research=-60)
    stedi.write_bronze(lake, "customer", [broken_customer], batch_id=2)
    conflicting = stedi.accelerometer("bob", 5, 2.95)  # bob at minute 5 was 2.05
    stedi.write_bronze(lake, "accelerometer", [conflicting], batch_id=2)
    rebuilt = transform(settings, "silver")
    assert rebuilt.success, rebuilt.failures
    broken = run_gate(settings, "silver", run_id="broken")
    return SimpleNamespace(settings=settings, clean=clean, broken=broken)


def test_the_silver_gate_validates_the_stedi_sources_when_the_lake_has_them(gated):
    assert gated.clean.suite_names == ["silver__readings", "silver__rejected_readings", *STEDI_SUITES]


def test_the_scenario_passes_with_warnings_for_what_the_models_drop_or_resolve(gated):
    assert gated.clean.success, gated.clean.format_report()
    assert failed(gated.clean) == {
        "reading_user_is_a_customer": ("warning", 1),  # ghost
        "serial_number_belongs_to_a_customer": ("warning", 1),  # SN-X
        "serial_number_in_one_customers_latest_record": ("warning", 2),  # grace and heidi share SN-G
    }
    # exact copies (a re-landed file) are not conflicts
    passed = {o.expectation for o in gated.clean.results if o.success and o.suite in STEDI_SUITES}
    assert {"one_reading_per_user_and_timestamp", "one_reading_per_serial_and_time"} <= passed
    assert "research_consent_not_before_registration" in passed


def test_a_consent_before_registration_fails_the_gate_and_a_conflicting_copy_warns(gated):
    assert not gated.broken.success
    assert failed(gated.broken) == {
        "reading_user_is_a_customer": ("warning", 1),
        "serial_number_belongs_to_a_customer": ("warning", 1),
        "serial_number_in_one_customers_latest_record": ("warning", 2),
        "research_consent_not_before_registration": ("error", 1),
        "one_reading_per_user_and_timestamp": ("warning", 2),
    }
    assert "research_consent_not_before_registration" in gated.broken.format_report()


def test_gate_records_carry_no_personal_data(gated):
    records = [r for r in ops.read(gated.settings.lake_root, "ops_gate_results") if r["suite"] in STEDI_SUITES]
    assert records
    text = repr(records)
    assert "@example.com" not in text and "Example" not in text and "8015551212" not in text


def test_the_stedi_frames_are_athena_sql_on_the_staging_glue_tables():
    import sqlglot

    from expectations import stedi as stedi_gate
    from expectations.athena import AthenaTarget

    target = AthenaTarget(region="eu-west-1", s3_staging_dir="s3://lake-results/athena/")
    for frame in stedi_gate.frames(target.table):
        parsed = sqlglot.parse_one(frame.sql, read="athena")
        tables = {(t.db, t.name) for t in parsed.find_all(sqlglot.exp.Table) if t.name}
        assert ("lakehouse_staging", frame.view.split(".")[1]) in tables, frame.suite
        assert all(db == "lakehouse_staging" for db, _ in tables), tables
