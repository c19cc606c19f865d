"""Fixtures shared by every test area. One Spark session serves the whole test run (starting a JVM costs
seconds); areas keep their own fixtures in their folder's conftest.py."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def same_rows(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]]) -> bool:
    """Equal rows, floats equal to 1e-9 relative (parallel aggregation may change the last bits)."""
    if len(left) != len(right):
        return False
    for a, b in zip(left, right, strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not (math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(x) and math.isnan(y))):
                    return False
            elif x != y:
                return False
    return True


@pytest.fixture
def rows_equal() -> Callable[[list[tuple[Any, ...]], list[tuple[Any, ...]]], bool]:
    """``same_rows``: equal rows, floats compared to 1e-9 relative."""
    return same_rows
