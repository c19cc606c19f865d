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

# `make test` runs two pytest workers (pytest-xdist): each writes dbt's target/ and logs/ in a folder of its
# own (read by lakehouse.config, and inherited by the `lakehouse` subprocesses tests start), so that two
# dbt runs at once never share a manifest.
if os.environ.get("PYTEST_XDIST_WORKER"):
    import __main__

    # A worker's main module (execnet's) has no file, which PySpark takes for its own doctest runner: it
    # would print "Skipping doctests" and exit the worker when a test imports pyspark.sql.connect.
    if getattr(__main__, "__spec__", None) is None and not hasattr(__main__, "__file__"):
        __main__.__file__ = "pytest-xdist-worker"
    os.environ["LAKEHOUSE_DBT_ARTIFACTS_DIR"] = str(
        REPO_ROOT / "test-output" / "dbt" / os.environ["PYTEST_XDIST_WORKER"]
    )


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


@pytest.fixture(scope="session")
def athena_standin(tmp_path_factory):
    """A local Athena for the whole session: moto in server mode on 127.0.0.1 whose Athena queries DuckDB
    executes (tests/support/athena_standin.py), with dummy credentials in the environment for the clients
    dbt-athena and PyAthena build. Yields ``endpoint``, ``standin`` and ``bucket`` (created)."""
    import logging
    import socket
    from types import SimpleNamespace

    import boto3
    from moto.server import ThreadedMotoServer

    from tests.support.athena_standin import AthenaStandIn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    endpoint = f"http://127.0.0.1:{port}"
    patch = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }.items():
        patch.setenv(name, value)
    patch.delenv("AWS_PROFILE", raising=False)
    standin = AthenaStandIn(endpoint, cache_dir=str(tmp_path_factory.mktemp("athena-standin")))
    standin.install()
    bucket = "lake-standin"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    try:
        yield SimpleNamespace(endpoint=endpoint, standin=standin, bucket=bucket)
    finally:
        standin.uninstall()
        patch.undo()
        server.stop()


# Test files that share the dashboards' demo lake (a session fixture: three cycles served to a browser),
# which each worker would otherwise build once for itself.
DEMO_LAKE_FILES = ("test_browser.py", "test_quicksight.py", "test_never_blocks_the_pipeline.py")


def pytest_collection_modifyitems(config, items):
    """With ``--dist loadgroup``: one group per test file (module fixtures are built once), except the
    files of the demo lake, which run in one group on one worker."""
    for item in items:
        name = Path(str(item.fspath)).name
        group = "dashboards-demo-lake" if name in DEMO_LAKE_FILES else str(item.fspath)
        item.add_marker(pytest.mark.xdist_group(group))
