"""The privacy test of the curated zone, and the missing-salt message, with the real dbt in a subprocess
(as someone running dbt by hand would): `no_pii_columns` fails on models that leak an e-mail, by column
name or by values under an innocent name, in a copy of the project that adds them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lakehouse.config import DBT_PROJECT_DIR

LEAKY_MODELS = {
    # the e-mail under its own name
    "leaky_email_column": "select customer_key, email from {{ ref('customer_trusted') }} as c "
    "inner join {{ ref('customers_curated') }} as k on true limit 3",
    # the e-mail under a name no pattern catches
    "leaky_email_values": "select user_email as contact_ref, timestamp_ms from {{ ref('accelerometer_trusted') }}",
}
LEAKY_YML = """version: 2
models:
  - name: leaky_email_column
    description: A curated model that leaks the e-mail column.
    data_tests: [no_pii_columns]
  - name: leaky_email_values
    description: A curated model that leaks e-mail values under an innocent name.
    data_tests: [no_pii_columns]
"""


def dbt(project: Path, lake: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    environment.update(LAKEHOUSE_LAKE=str(lake), DBT_SEND_ANONYMOUS_USAGE_STATS="false", **env)
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"), *args,
            "--project-dir", str(project), "--profiles-dir", str(project),
            "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
        ],
        env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_no_pii_columns_fails_on_curated_models_that_leak_an_email(since_consent, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    curated = project / "models" / "curated"
    for name, sql in LEAKY_MODELS.items():
        (curated / f"{name}.sql").write_text(sql + "\n")
    (curated / "_leaky__models.yml").write_text(LEAKY_YML)
    salt_file = tmp_path / "salt"
    salt_file.write_text("a-salt-for-the-leak-test-0123456789")
    lake = since_consent.settings.lake_root.local_path()

    completed = dbt(
        project, lake, tmp_path, "build", "--select", "leaky_email_column", "leaky_email_values",
        LAKEHOUSE_PII_SALT_FILE=str(salt_file),
    )  # fmt: skip

    assert completed.returncode == 1, completed.stdout[-3000:]
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    tests = {r["unique_id"].split(".")[2]: r for r in results if r["unique_id"].startswith("test.")}
    assert {name: (r["status"], r["failures"]) for name, r in tests.items()} == {
        "no_pii_columns_leaky_email_column_": ("fail", 2),  # its name contains "mail"; its values are e-mails
        "no_pii_columns_leaky_email_values_": ("fail", 1),  # contact_ref holds e-mails
    }


def test_building_curated_without_a_salt_stops_with_how_to_set_it(since_consent, tmp_path):
    lake = since_consent.settings.lake_root.local_path()  # built with Settings.pii_salt: no _secrets folder
    assert not (lake / "_secrets").exists()

    completed = dbt(DBT_PROJECT_DIR, lake, tmp_path, "compile", "--select", "customers_curated")

    assert completed.returncode != 0
    output = " ".join((completed.stdout + completed.stderr).split())
    assert f"no PII salt: the salt file {lake}/_secrets/pii_salt does not exist" in output
    assert "LAKEHOUSE_PII_SALT" in output and "export LAKEHOUSE_PII_SALT_FILE=" in output
