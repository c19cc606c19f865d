"""gates.toml: one place for severities and thresholds, checked against the suites and the dbt project."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from expectations.config import load_gate_config
from expectations.runner import run_gate
from lakehouse.config import REPO_ROOT
from lakehouse.errors import LakehouseError

GATES_TOML = REPO_ROOT / "expectations" / "gates.toml"
DBT = REPO_ROOT / "dbt_project"


def _accepted_values(models_yml: Path, model: str, column: str) -> list[str]:
    models = yaml.safe_load(models_yml.read_text())["models"]
    columns = next(m for m in models if m["name"] == model)["columns"]
    tests = next(c for c in columns if c["name"] == column)["data_tests"]
    accepted = next(t["accepted_values"] for t in tests if isinstance(t, dict) and "accepted_values" in t)
    return accepted.get("arguments", accepted)["values"]


def _edited_config(tmp_path: Path, old: str, new: str) -> Path:
    text = GATES_TOML.read_text()
    assert old in text
    path = tmp_path / "gates.toml"
    path.write_text(text.replace(old, new))
    return path


def test_the_shipped_config_gives_every_rule_of_every_suite_a_severity():
    from expectations import bronze, gold, silver, stedi
    from lakehouse.config import Settings
    from lakehouse.fleet import default_fleet

    config = load_gate_config(GATES_TOML)
    fleet = default_fleet()
    specs = [
        bronze.readings_suite(config, Settings(), fleet),
        bronze.increment_suite(config, Settings()),
        silver.readings_suite(config, fleet, future_tolerance_s=300, lookback=silver.Lookback.everything_new()),
        silver.rejected_suite(config, fleet),
        gold.hourly_suite(config, fleet),
        gold.anomalies_suite(config, fleet),
        gold.health_suite(config),
        *(suite(config) for suite in stedi.SUITES.values()),
    ]

    suites = [spec.build() for spec in specs]  # raises when a rule has no severity or a key is unknown

    assert {s.name for s in suites} == set(config.rules)
    assert all(e.meta["severity"] in ("error", "warning") for s in suites for e in s.expectations)


def test_a_misspelt_rule_is_an_error_that_names_the_file(gate_lake, tmp_path):
    path = _edited_config(tmp_path, "device_id_pattern = {", "device_id_patern = {")
    gate_lake.write_bronze(gate_lake.clean_readings(), batch_id=0)

    with pytest.raises(LakehouseError, match=r"gates.toml: no severity for rule 'device_id_pattern' of suite"):
        run_gate(gate_lake.settings.with_overrides(gates_config=str(path)), "bronze", run_id="r", batch_ids=[0])


def test_a_rule_the_suite_does_not_have_is_an_error(tmp_path):
    from expectations import gold
    from lakehouse.fleet import default_fleet

    path = _edited_config(
        tmp_path, "[gold__anomalies]\n", '[gold__anomalies]\nsparkle_check = { severity = "error" }\n'
    )

    with pytest.raises(LakehouseError, match=r"\[gold__anomalies\] configures rules the suite does not have"):
        gold.anomalies_suite(load_gate_config(path), default_fleet()).build()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'event_key_unique = { severity = "error" }',
            'event_key_unique = { severity = "fatal" }',
            r"event_key_unique: severity 'fatal' must be one of \['error', 'warning'\]",
        ),
        ("mostly = 0.99", "mostly = 99", r"event_time_not_in_future: mostly 99 must be a number in \(0, 1\]"),
        ("volume_min_cycles = 3", "", r"\[parameters\] has no 'volume_min_cycles'"),
    ],
)
def test_a_bad_value_is_an_error_that_names_the_setting(tmp_path, old, new, message):
    with pytest.raises(LakehouseError, match=message):
        load_gate_config(_edited_config(tmp_path, old, new))


def test_a_missing_config_file_names_the_setting_to_fix(tmp_path):
    with pytest.raises(LakehouseError, match="set `gates_config` in lakehouse.toml"):
        load_gate_config(tmp_path / "nowhere.toml")


def test_a_severity_changed_in_the_config_changes_the_gate_verdict(gate_lake, tmp_path):
    path = _edited_config(
        tmp_path, 'unit_scale_plausible = { severity = "warning"', 'unit_scale_plausible = { severity = "error"'
    )
    silver = gate_lake.silver_from(gate_lake.clean_readings())
    environmental = silver["device_type"] == "environmental"
    silver.loc[environmental, "temperature_c"] = silver.loc[environmental, "temperature_c"] * 9 / 5 + 32
    gate_lake.write_warehouse(silver)

    default = run_gate(gate_lake.settings, "silver", run_id="r")
    strict = run_gate(gate_lake.settings.with_overrides(gates_config=str(path)), "silver", run_id="r")

    assert default.success and not strict.success
    assert [o.severity for o in strict.failures] == ["error"]


def test_rejection_reasons_are_the_ones_the_dbt_project_documents():
    config = load_gate_config(GATES_TOML)
    documented = _accepted_values(
        DBT / "models" / "silver" / "_silver__models.yml", "silver_rejected_readings", "rejection_reason"
    )

    assert sorted(config.parameters["rejection_reasons"]) == sorted(documented)


@pytest.mark.parametrize(
    ("parameter", "model", "column"),
    [
        ("anomaly_kinds", "gold_anomalies", "anomaly_kind"),
        ("anomaly_severities", "gold_anomalies", "severity"),
        ("health_statuses", "gold_device_health", "health_status"),
    ],
)
def test_gold_value_sets_are_the_ones_the_dbt_project_documents(parameter, model, column):
    config = load_gate_config(GATES_TOML)

    documented = _accepted_values(DBT / "models" / "gold" / "_gold__models.yml", model, column)

    assert sorted(config.parameters[parameter]) == sorted(documented)


def test_the_silver_lookback_is_the_dbt_projects_lookback():
    config = load_gate_config(GATES_TOML)
    dbt_vars = yaml.safe_load((DBT / "dbt_project.yml").read_text())["vars"]

    assert config.parameters["silver_lookback_days"] == dbt_vars["lookback_days"]
