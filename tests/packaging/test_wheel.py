"""The wheel is the product: installed into a fresh environment outside the checkout, it has everything the
CLI needs, the dbt project included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.config import REPO_ROOT

UV = Path(sys.executable).parent / "uv"


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert completed.returncode == 0, f"{args[0]} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment outside the checkout with only the built wheel (and its pinned dependencies)."""
    root = tmp_path_factory.mktemp("installed")
    _run(UV, "build", "--wheel", "--out-dir", root / "dist", REPO_ROOT, cwd=root)
    (wheel,) = (root / "dist").glob("*.whl")
    _run(UV, "venv", "--quiet", "--python", sys.executable, root / "venv", cwd=root)
    python = root / "venv" / "bin" / "python"
    _run(UV, "pip", "install", "--quiet", "--python", python, "-c", REPO_ROOT / "requirements.lock", wheel, cwd=root)
    return root / "venv"


def _clean_env(home: Path) -> dict[str, str]:
    # No PYTHONPATH or checkout on the path: what runs is what the wheel installed.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LAKEHOUSE_", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    return env


def test_the_installed_cli_starts_outside_the_checkout(installed, tmp_path):
    env = _clean_env(tmp_path)
    top = _run(installed / "bin" / "lakehouse", "--help", cwd=tmp_path, env=env).stdout
    assert "produce" in top and "transform" in top and "dashboard" in top
    dashboard = _run(installed / "bin" / "lakehouse", "dashboard", "--help", cwd=tmp_path, env=env).stdout
    assert "Streamlit dashboard" in dashboard


def test_the_installed_package_finds_its_own_dbt_project_and_gate_config(installed, tmp_path):
    env = _clean_env(tmp_path)
    probe = (
        "import json, lakehouse, lakehouse.config as c; "
        "print(json.dumps({'package': lakehouse.__file__, 'project': str(c.DBT_PROJECT_DIR), "
        "'artifacts': str(c.DBT_ARTIFACTS_DIR), 'gates': c.Settings().gates_config}))"
    )
    found = json.loads(_run(installed / "bin" / "python", "-c", probe, cwd=tmp_path, env=env).stdout)
    assert Path(found["package"]).is_relative_to(installed)
    assert Path(found["project"]).is_relative_to(installed), "the dbt project must come from the wheel"
    assert Path(found["gates"]).is_file() and Path(found["gates"]).is_relative_to(installed)
    assert Path(found["artifacts"]).is_relative_to(tmp_path), "dbt's target/ and logs/ go to the user's cache"


def test_dbt_parses_the_packaged_project_from_another_folder(installed, tmp_path):
    env = _clean_env(tmp_path) | {"LAKEHOUSE_LAKE": str(tmp_path / "lake")}
    project = _run(
        installed / "bin" / "python", "-c", "from lakehouse.config import DBT_PROJECT_DIR as d; print(d)", cwd=tmp_path
    ).stdout.strip()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run(
        installed / "bin" / "dbt",
        "parse",
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target-path",
        elsewhere / "target",
        "--log-path",
        elsewhere / "logs",
        cwd=elsewhere,
        env=env,
    )
    manifest = json.loads((elsewhere / "target" / "manifest.json").read_text())
    models = {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    assert {"silver_readings", "gold_anomalies", "machine_learning_curated"} <= models
