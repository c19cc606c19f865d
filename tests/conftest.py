"""Fixtures shared by every test area. One Spark session serves the whole test run (starting a JVM costs
seconds); areas keep their own fixtures in their folder's conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def spark():
    from lakehouse.config import Settings
    from spark.session import build_session

    os.environ.setdefault("PYSPARK_PYTHON", str(Path(os.sys.executable)))
    session = build_session(Settings(spark_master="local[2]"), app_name="lakehouse-tests")
    yield session
    session.stop()


@pytest.fixture
def lake_settings(tmp_path):
    """Settings for a fresh, empty lake in a temporary folder."""
    from lakehouse.config import Settings

    return Settings(lake=str(tmp_path / "lake"))
