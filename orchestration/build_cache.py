"""Whether a dbt run must build the seeds and views again, or may leave them as an earlier run built them.

A view holds no data: new bronze rows reach it without rebuilding it, and a seed changes only with its
CSV. Rebuilding them costs dbt a fixed 0.1-0.2 s each (five seeds and views before silver, two views
between silver and gold), which is most of a small incremental cycle. So a process that runs cycles
(the scheduler, ``lakehouse stream``, a benchmark) rebuilds them only when what they are built from
has changed since it last built them with the same selection:

- the dbt project's files (models, macros, seeds, ``dbt_project.yml``, profiles);
- the vars, the target and the lake;
- which bronze tables hold files: the staging views read a table's Parquet only once it has some
  (``stedi_bronze``), so the first file of a table changes a view's SQL;
- the warehouse itself: a deleted or replaced DuckDB file holds none of them.

The memory is the process's: a new process builds everything once. A failed run forgets, so the next
run builds everything again. ``--full-refresh`` always builds everything.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.config import DBT_PROJECT_DIR, Settings

# What dbt builds that new data does not change, as `--exclude` arguments.
UNCHANGED_BY_DATA = ("resource_type:seed", "config.materialized:view")
# Folders of the dbt project that hold what dbt writes, not what it builds from.
_OUTPUT_FOLDERS = {"target", "logs", "dbt_packages", "lint"}


@dataclass(frozen=True)
class BuildInputs:
    """What a run's seeds and views are built from (a digest), and the warehouse they were built in."""

    digest: str
    warehouse: tuple[int, int] | None  # (device, inode) of the local DuckDB file; None on Athena or before


def project_digest(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """A digest of the dbt project's own files (not its target/ or logs/)."""
    digest = hashlib.sha256()
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if path.is_file() and relative.parts[0] not in _OUTPUT_FOLDERS:
            digest.update(str(relative).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def bronze_tables_with_files(settings: Settings) -> list[str]:
    """Bronze tables of a local lake that hold Parquet (an S3 lake: none looked at, its views read Glue)."""
    lake = settings.lake_root
    if not lake.is_local:
        return []
    bronze = lake.local_path("bronze")
    if not bronze.is_dir():
        return []
    return sorted(table.name for table in bronze.iterdir() if next(table.glob("*/*.parquet"), None) is not None)


def warehouse_identity(settings: Settings) -> tuple[int, int] | None:
    lake = settings.lake_root
    if settings.dbt_target != "local" or not lake.is_local:
        return None
    try:
        stat = lake.warehouse.stat()
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


def build_inputs(settings: Settings, dbt_vars: dict[str, Any]) -> BuildInputs:
    parts = {
        "project": project_digest(),
        "vars": dbt_vars,
        "target": settings.dbt_target,
        "lake": settings.lake_root.root,
        "bronze_tables_with_files": bronze_tables_with_files(settings),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return BuildInputs(digest=digest, warehouse=warehouse_identity(settings))


@dataclass(frozen=True)
class PlannedRun:
    """A dbt run about to start: its selection, what its seeds and views are built from, and the dbt
    arguments that leave them out (empty when they must be built)."""

    selection_key: str
    inputs: BuildInputs
    exclusions: tuple[str, ...]


class BuiltDefinitions:
    """The process's memory of the seeds and views it built: per selection, from which inputs."""

    def __init__(self) -> None:
        self._built: dict[str, BuildInputs] = {}
        self._lock = threading.Lock()

    def plan(
        self,
        settings: Settings,
        layer: str | None,
        select: str | None,
        dbt_vars: dict[str, Any],
        full_refresh: bool,
    ) -> PlannedRun:
        """The run of a layer or selection: it leaves out the seeds and views when this process built them
        for the same selection from these very inputs."""
        selection_key = json.dumps([layer, select])
        inputs = build_inputs(settings, dbt_vars)
        with self._lock:
            unchanged = not full_refresh and self._built.get(selection_key) == inputs
        return PlannedRun(selection_key, inputs, ("--exclude", *UNCHANGED_BY_DATA) if unchanged else ())

    def after_run(self, run: PlannedRun, settings: Settings, success: bool) -> None:
        """Remember a successful run that built the seeds and views (with the warehouse as it left it);
        forget after a failed run, so that the next run builds everything."""
        with self._lock:
            if not success:
                self._built.pop(run.selection_key, None)
            elif not run.exclusions:
                self._built[run.selection_key] = BuildInputs(run.inputs.digest, warehouse_identity(settings))

    def forget(self) -> None:
        with self._lock:
            self._built.clear()


BUILT_DEFINITIONS = BuiltDefinitions()
