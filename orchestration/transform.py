"""Run dbt in-process: seeds, staging and silver, then gold, with their tests.

``transform(settings, "silver")`` builds the seeds, the staging views and the silver tables and runs their
data tests; ``"gold"`` builds the gold tables and their tests; ``None`` builds everything. dbt runs with the
repository's ``dbt_project`` as project and profiles directory, the target named by
``settings.dbt_target`` and every setting dbt needs as a var on its command line (:func:`dbt_connection_vars`):
``lake_root``, so the models read ``<lake>/bronze/readings`` and (target ``local``) write
``<lake>/warehouse.duckdb``; ``pii_salt_file``, the file the STEDI models read their PII salt from
(:func:`pii_salt_file`); the Athena settings for the ``athena`` target. The process environment is never
changed for dbt (profiles.yml and the models fall back to ``LAKEHOUSE_*`` variables only for a plain ``dbt``
run by hand), with one exception: an AWS endpoint override, which dbt-athena gives only to its Athena
client, so its Glue and S3 clients need botocore's ``AWS_ENDPOINT_URL``.

A failing model or test does not raise: the result says ``success=False`` and ``failures`` names each
failed node with dbt's message. dbt's own progress lines go to standard output as dbt prints them.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.catalogue_store import ensure_catalogue, modelled_metrics
from lakehouse.config import DBT_ARTIFACTS_DIR, DBT_PROJECT_DIR, Settings
from lakehouse.errors import LakehouseError
from lakehouse.lake import Lake
from orchestration.build_cache import BUILT_DEFINITIONS

# What each layer builds, as a dbt selection. Seeds carry the `silver` tag; `+` adds the staging views.
LAYER_SELECTION = {
    "silver": "+tag:silver",
    "gold": "tag:gold",
}
# dbt nodes that produce a relation (the rest are tests).
_BUILT_RESOURCE_TYPES = ("model", "seed", "snapshot")
_FAILED_STATUSES = ("error", "fail", "runtime error")


@dataclass(frozen=True)
class ModelRun:
    name: str
    status: str
    rows_affected: int | None
    seconds: float
    message: str | None


@dataclass(frozen=True)
class TransformResult:
    success: bool
    seconds: float
    models: list[ModelRun] = field(default_factory=list)  # models, seeds and snapshots
    failures: list[str] = field(default_factory=list)
    tests: list[ModelRun] = field(default_factory=list)  # data tests and unit tests, named as dbt names them

    def model(self, name: str) -> ModelRun:
        for run in self.models:
            if run.name == name:
                return run
        raise KeyError(f"model '{name}' did not run in this transform; ran: {[m.name for m in self.models]}")


def dbt_vars(settings: Settings, vars: dict[str, Any] | None = None) -> dict[str, Any]:
    """The vars dbt runs with: the settings' own, then ``vars``."""
    own = {"future_tolerance_s": settings.future_tolerance_s, "consent_policy": settings.consent_policy}
    return {**own, **(vars or {})}


def dbt_connection_vars(settings: Settings, pii_salt_file: str | None = None) -> dict[str, str]:
    """Where dbt reads and writes, from the settings (the one source of truth), as the vars that
    dbt_project/profiles.yml and the sources read: the lake root, the PII salt file, and for the `athena`
    target the Athena settings. Raises ConfigError naming a missing Athena setting before dbt starts."""
    connection = {"lake_root": settings.lake_root.root}
    if pii_salt_file is not None:
        connection["pii_salt_file"] = pii_salt_file
    if settings.dbt_target == "athena":
        from lakehouse.aws import require_athena

        require_athena(settings)
        connection |= {
            "aws_region": settings.aws_region,
            "athena_work_group": settings.athena_work_group,
            "athena_results_uri": settings.athena_results_uri,
            "athena_data_uri": settings.athena_data_uri,
            "athena_schema": settings.athena_schema,
        }
    return connection


def dbt_args(
    settings: Settings,
    layer: str | None = None,
    *,
    full_refresh: bool = False,
    vars: dict[str, Any] | None = None,
    select: str | None = None,
    unit_tests: bool = False,
    data_tests: bool = True,
    command: str = "build",
    connection: dict[str, str] | None = None,
) -> list[str]:
    """The dbt command line that :func:`transform` runs (also handy to print for a user); ``connection``:
    :func:`dbt_connection_vars`, added to the vars."""
    if layer is not None and layer not in LAYER_SELECTION:
        raise ValueError(f"layer '{layer}' is not one of {sorted(LAYER_SELECTION)} (or None for everything)")
    project = str(DBT_PROJECT_DIR)
    args = [command, "--project-dir", project, "--profiles-dir", project, "--target", settings.dbt_target]
    if DBT_ARTIFACTS_DIR != DBT_PROJECT_DIR:
        args += ["--target-path", str(DBT_ARTIFACTS_DIR / "target"), "--log-path", str(DBT_ARTIFACTS_DIR / "logs")]
    all_vars = {**dbt_vars(settings, vars), **(connection or {})}
    args += ["--vars", json.dumps(all_vars, sort_keys=True, default=str)]
    selection = select or (LAYER_SELECTION[layer] if layer else None)
    if selection:
        args += ["--select", selection]
    if full_refresh and command in ("build", "run", "seed"):
        args.append("--full-refresh")
    excluded = ([] if data_tests else ["test"]) + ([] if unit_tests else ["unit_test"])
    if excluded and command in ("build", "test"):
        args += ["--exclude-resource-type", *excluded]
    return args


def transform(
    settings: Settings,
    layer: str | None = None,
    *,
    full_refresh: bool = False,
    vars: dict[str, Any] | None = None,
    select: str | None = None,
    unit_tests: bool = False,
    data_tests: bool = True,
) -> TransformResult:
    """Build a layer with ``dbt build`` in this process; see the module docstring.

    ``select`` (a dbt selection such as ``"silver_readings+"``) replaces the layer's own selection.
    ``vars`` are passed to dbt (``reference_time``, ``lookback_days``, ...); ``future_tolerance_s``
    comes from the settings unless ``vars`` overrides it. Data tests always run; dbt's unit tests
    (logic on fixed inputs, not the data) only with ``unit_tests=True``, as dbt recommends for
    production runs: they belong to development and CI (``cd dbt_project && dbt build`` runs them,
    and so do the tests in tests/dbt). ``data_tests=False`` leaves the data tests out too (intermediate
    builds of a test scenario; production runs keep them).
    """
    lake = settings.lake_root
    if settings.dbt_target == "local" and not lake.is_local:
        raise LakehouseError(
            f"dbt target 'local' keeps its DuckDB warehouse inside the lake, but the lake {lake.root} is "
            f"not a local folder; use --target athena for an s3:// lake, or a local --lake"
        )
    # Silver reads the catalogue from the lake (a new lake gets the default catalogue first), and models a
    # column per metric the catalogue declares.
    vars = {"metrics": modelled_metrics(ensure_catalogue(settings)), **(vars or {})}
    # Seeds and views this process already built from the same inputs are left as they are (see
    # orchestration/build_cache.py): they are most of a small cycle's fixed cost.
    planned = BUILT_DEFINITIONS.plan(settings, layer, select, dbt_vars(settings, vars), full_refresh)
    started = time.perf_counter()
    with pii_salt_file(settings) as salt_file, _aws_endpoint(settings.aws_endpoint_url):
        args = dbt_args(
            settings,
            layer,
            full_refresh=full_refresh,
            vars=vars,
            select=select,
            unit_tests=unit_tests,
            data_tests=data_tests,
            connection=dbt_connection_vars(settings, salt_file),
        )
        result = _invoke(args + list(planned.exclusions))
    seconds = time.perf_counter() - started
    summary = _summarise(result, seconds)
    BUILT_DEFINITIONS.after_run(planned, settings, summary.success)
    return summary


@contextmanager
def pii_salt_file(settings: Settings) -> Iterator[str | None]:
    """The file dbt reads the curated tables' PII salt from while it runs (var ``pii_salt_file``).

    The curated STEDI models hash customer e-mails with a secret salt (dbt_project/macros/stedi/pii.sql).
    dbt must not see the salt itself: anything rendered into SQL lands in its target/ folder, manifest and
    logs. So the SQL reads a file at query time:

    - ``Settings.pii_salt`` set: a private temporary copy (mode 0600, removed afterwards);
    - otherwise, on a local lake, ``<lake>/_secrets/pii_salt``, written with a random value the first
      time (:func:`local_pii_salt`): the demo and local runs need no setup, the salt stays with the lake
      it protects and never enters the repository;
    - otherwise (an S3 lake): None. On Athena the models read the Glue table ``<schema>_secrets.pii_salt``.
    """
    if settings.pii_salt:
        with tempfile.TemporaryDirectory(prefix="lakehouse-pii-") as folder:
            path = Path(folder) / "pii_salt"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(settings.pii_salt.strip())
            yield str(path)
        return
    lake = settings.lake_root
    yield str(local_pii_salt(lake)) if lake.is_local else None


def local_pii_salt(lake: Lake) -> Path:
    """``<lake>/_secrets/pii_salt``; created with 32 random bytes (hex, mode 0600) when it does not exist."""
    path = lake.local_path("_secrets", "pii_salt")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it first: use theirs
            return path
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
    return path


def _invoke(args: list[str]):
    from dbt.cli.main import dbtRunner

    try:
        return dbtRunner().invoke(args)
    finally:
        _release_duckdb()


def _release_duckdb() -> None:
    """Close the DuckDB database that dbt-duckdb keeps open for the life of the process.

    dbt-duckdb caches one database instance per process across invocations; until it is closed, the
    warehouse file stays locked for other processes (GX, the duckdb CLI, a dashboard), and this process
    cannot open it with another configuration (read-only, for example).
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing is held open
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        if environment is not None:
            environment.close()
            DuckDBConnectionManager._ENV = None


def _summarise(result: Any, seconds: float) -> TransformResult:
    models: list[ModelRun] = []
    tests: list[ModelRun] = []
    failures: list[str] = []
    node_results = getattr(result.result, "results", None) or []
    for node_result in node_results:
        node = node_result.node
        status = str(node_result.status.value if hasattr(node_result.status, "value") else node_result.status)
        message = node_result.message
        rows = (node_result.adapter_response or {}).get("rows_affected")
        run = ModelRun(
            name=node.name,
            status=status,
            rows_affected=rows if isinstance(rows, int) and rows >= 0 else None,
            seconds=round(float(node_result.execution_time or 0.0), 3),
            message=message,
        )
        (models if node.resource_type in _BUILT_RESOURCE_TYPES else tests).append(run)
        if status in _FAILED_STATUSES:
            kind = node.resource_type
            detail = message or "failed"
            if kind == "test" and node_result.failures:
                detail = f"{node_result.failures} failing row(s): {detail}"
            failures.append(f"{kind} {node.name} ({node.original_file_path}): {detail}")
    if result.exception is not None:
        failures.append(f"dbt did not finish: {result.exception}")
    if not result.success and not failures:
        failures.append("dbt reported failure without a failing node; see dbt's output above and dbt_project/logs")
    return TransformResult(
        success=bool(result.success), seconds=round(seconds, 3), models=models, failures=failures, tests=tests
    )


@contextmanager
def _aws_endpoint(endpoint_url: str | None) -> Iterator[None]:
    """botocore's AWS_ENDPOINT_URL while dbt runs, when the settings override the AWS endpoint (a stand-in
    or LocalStack): dbt-athena passes its profile's endpoint_url to its Athena client only, not to the Glue
    and S3 clients it also builds. Without an override the environment is left alone."""
    if not endpoint_url:
        yield
        return
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved
