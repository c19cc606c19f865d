"""Specification of settings: defaults < lakehouse.toml < LAKEHOUSE_* environment < flags."""

from __future__ import annotations

import pytest

from lakehouse.config import ConfigError, Settings


def test_defaults_use_a_local_lake_and_the_duckdb_target(tmp_path):
    settings = Settings.load(env={}, cwd=tmp_path)
    assert settings.lake == "./lake"
    assert settings.dbt_target == "local"


def test_the_config_file_overrides_defaults_and_the_environment_overrides_the_file(tmp_path):
    (tmp_path / "lakehouse.toml").write_text('[lakehouse]\nlake = "/data/lake"\nmax_quarantine_share = 0.1\n')
    settings = Settings.load(env={"LAKEHOUSE_LAKE": "s3://bucket/lake"}, cwd=tmp_path)
    assert settings.lake == "s3://bucket/lake"
    assert settings.max_quarantine_share == 0.1


def test_flags_override_everything(tmp_path):
    settings = Settings.load(env={"LAKEHOUSE_LAKE": "/env/lake"}, cwd=tmp_path, lake="/flag/lake")
    assert settings.lake == "/flag/lake"


def test_an_unknown_setting_in_the_file_names_the_file_and_the_known_settings(tmp_path):
    (tmp_path / "lakehouse.toml").write_text('lakee = "/typo"\n')
    with pytest.raises(ConfigError, match=r"lakehouse.toml: unknown setting 'lakee'.*known settings"):
        Settings.load(env={}, cwd=tmp_path)


def test_a_bad_number_in_the_environment_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="LAKEHOUSE_MAX_QUARANTINE_SHARE"):
        Settings.load(env={"LAKEHOUSE_MAX_QUARANTINE_SHARE": "lots"}, cwd=tmp_path)


def test_an_unknown_dbt_target_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="local, athena"):
        Settings.load(env={"LAKEHOUSE_DBT_TARGET": "snowflake"}, cwd=tmp_path)
