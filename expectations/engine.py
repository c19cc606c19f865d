"""Great Expectations, set up from code for one gate run: an ephemeral context, a pandas data source per
layer, a dataframe asset and validation definition per suite, and the layer's checkpoint ``gate_<layer>``.

Each frame (a partition, or a slice of one) is validated by running the checkpoint on it. Results stay in
the context's in-memory store; with Data Docs on, the docs site is built at ``<lake>/gx/data_docs/`` once,
after the last frame (on a local lake the results are also kept in ``<lake>/gx/validations/`` so the
index lists earlier runs; GX 1.x has no S3 stores, so on S3 the site is built in a temporary folder and
uploaded, its index listing this run).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from expectations.result import ExpectationOutcome
from expectations.suites import SuiteSpec
from lakehouse.config import Settings
from lakehouse.storage import storage_for

DOCS_SITE = "lake"


@contextmanager
def quiet() -> Iterator[None]:
    """Keep GX's warnings, log lines and progress bars out of the terminal."""
    logger = logging.getLogger("great_expectations")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class GateEngine:
    def __init__(self, layer: str, run_id: str, settings: Settings, docs: bool) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
        config = DataContextConfig(
            store_backend_defaults=defaults,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            analytics_enabled=False,
        )
        lake = settings.lake_root
        self._docs_staging: str | None = None
        if docs and lake.is_local:
            # Results kept under the lake too, so the docs index lists the earlier runs that built docs.
            config.stores[defaults.validation_results_store_name] = {
                "class_name": "ValidationResultsStore",
                "store_backend": _folder_backend(lake.local_path("gx", "validations")),
            }
            docs_folder = lake.local_path("gx", "data_docs")
        elif docs:
            # GX 1.x stores only on local folders: docs are built in a temporary folder, then uploaded.
            self._docs_staging = tempfile.mkdtemp(prefix="gx-data-docs-")
            docs_folder = Path(self._docs_staging)
        if docs:
            config.data_docs_sites = {
                DOCS_SITE: {
                    "class_name": "SiteBuilder",
                    "store_backend": _folder_backend(docs_folder),
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                }
            }
        self._gx = gx
        self.layer = layer
        self.run_id = run_id
        self.lake = settings.lake_root
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        self.source = self.context.data_sources.add_pandas(name=layer)
        self._definitions: dict[str, Any] = {}
        self._specs: dict[str, SuiteSpec] = {}
        self._suites: dict[str, Any] = {}
        self.sql_source: Any = None
        self._checkpoint: Any = None
        self._checkpoint_suite: str | None = None
        self.docs = docs

    def register(self, spec: SuiteSpec) -> None:
        gx = self._gx
        asset = self.source.add_dataframe_asset(name=spec.name)
        batch_definition = asset.add_batch_definition_whole_dataframe("frame")
        suite = self.context.suites.add(spec.build())
        self._suites[spec.name] = suite
        self._definitions[spec.name] = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=spec.name, data=batch_definition, suite=suite)
        )
        self._specs[spec.name] = spec

    def validate(
        self, suite: str, frame: Any, partition: str | None, parameters: dict[str, Any] | None = None
    ) -> list[ExpectationOutcome]:
        """Run the layer's checkpoint with one suite on one frame."""
        from great_expectations.core.run_identifier import RunIdentifier

        checkpoint = self._checkpoint_for(suite)
        run = RunIdentifier(run_name=f"{self.run_id} {partition or 'table'}", run_time=datetime.now(UTC))
        result = checkpoint.run(
            batch_parameters={"dataframe": frame}, expectation_parameters=parameters or {}, run_id=run
        )
        (validation,) = result.run_results.values()
        return [to_outcome(suite, r, partition) for r in validation.results]

    def use_sql_datasource(self, datasource: Any) -> None:
        """Validate queries on a SQL datasource (Athena); adding it to the context tests its connection."""
        self.sql_source = self.context.data_sources.add_sql(name_or_datasource=datasource)

    def validate_query(self, suite: str, query: str, partition: str | None) -> list[ExpectationOutcome]:
        """Run the layer's checkpoint with one suite on a query of the SQL datasource (GX computes in SQL)."""
        from great_expectations.core.run_identifier import RunIdentifier

        from expectations.athena import add_frame

        _, batch_definition = add_frame(self.sql_source, suite, partition or "table", query)
        definition = self.context.validation_definitions.add(
            self._gx.ValidationDefinition(
                name=f"{suite} {partition or 'table'}", data=batch_definition, suite=self._suites[suite]
            )
        )
        checkpoint = self.context.checkpoints.add_or_update(
            self._gx.Checkpoint(
                name=f"gate_{self.layer}",
                validation_definitions=[definition],
                result_format=self._specs[suite].result_format,
                actions=[],
            )
        )
        self._checkpoint_suite = None
        run = RunIdentifier(run_name=f"{self.run_id} {partition or 'table'}", run_time=datetime.now(UTC))
        (validation,) = checkpoint.run(run_id=run).run_results.values()
        return [to_outcome(suite, r, partition) for r in validation.results]

    def _checkpoint_for(self, suite: str) -> Any:
        """The layer's checkpoint ``gate_<layer>``, pointed at one suite (re-pointing costs, so it is kept)."""
        if self._checkpoint_suite != suite:
            spec = self._specs[suite]
            self._checkpoint = self.context.checkpoints.add_or_update(
                self._gx.Checkpoint(
                    name=f"gate_{self.layer}",
                    validation_definitions=[self._definitions[suite]],
                    result_format=spec.result_format,
                    actions=[],
                )
            )
            self._checkpoint_suite = suite
        return self._checkpoint

    def build_docs(self) -> str:
        """Build Data Docs under ``<lake>/gx/data_docs/``; returns the index page's URI."""
        self.context.build_data_docs(site_names=[DOCS_SITE])
        index = self.lake.uri("gx", "data_docs", "index.html")
        if self._docs_staging is None:
            return f"file://{index}"
        staging = Path(self._docs_staging)
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = self.lake.uri("gx", "data_docs", str(path.relative_to(staging)))
            storage_for(target).write_bytes(target, path.read_bytes())
        return index

    def close(self) -> None:
        """Remove the temporary Data Docs folder of an S3 lake, built or not."""
        if self._docs_staging is not None:
            shutil.rmtree(self._docs_staging, ignore_errors=True)
            self._docs_staging = None


def _folder_backend(folder: Path) -> dict[str, Any]:
    return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)}


def to_outcome(suite: str, result: Any, partition: str | None) -> ExpectationOutcome:
    """One GX ExpectationValidationResult as our outcome."""
    config = result.expectation_config
    meta = config.meta or {}
    kwargs = config.kwargs
    if meta.get("column_label"):
        column = meta["column_label"]
    elif "column" in kwargs:
        column = kwargs["column"]
    elif "column_A" in kwargs:
        column = f"{kwargs['column_A']}, {kwargs['column_B']}"
    elif "column_list" in kwargs:
        column = ", ".join(kwargs["column_list"])
    else:
        column = None
    body = result.result or {}
    details = ""
    mismatched = (body.get("details") or {}).get("mismatched") if isinstance(body.get("details"), dict) else None
    if mismatched and mismatched.get("missing"):
        details = f"missing columns: {mismatched['missing']}"
    exception = _exception_message(result.exception_info)
    if exception:
        details = f"could not be evaluated: {exception}"
    observed = body.get("observed_value")
    if isinstance(observed, list | dict):
        observed = None
    return ExpectationOutcome(
        suite=suite,
        expectation=meta.get("name", config.type),
        rule=meta.get("rule", config.type),
        column=column,
        severity=meta.get("severity", "error"),
        success=bool(result.success),
        element_count=body.get("element_count"),
        unexpected_count=body.get("unexpected_count"),
        unexpected_percent=body.get("unexpected_percent"),
        missing_count=body.get("missing_count"),
        partition=partition,
        note=config.notes if isinstance(config.notes, str) else " ".join(config.notes or []),
        observed_value=observed,
        details=details,
        partial_unexpected_list=list(body.get("partial_unexpected_list") or []),
        sample_rows=[dict(row) for row in body.get("partial_unexpected_index_list") or [] if isinstance(row, dict)],
    )


def _exception_message(info: Any) -> str:
    if not info:
        return ""
    if isinstance(info, dict) and "exception_message" in info:
        return info["exception_message"] if info.get("raised_exception") else ""
    if isinstance(info, dict):
        for value in info.values():
            message = _exception_message(value)
            if message:
                return message
    return ""
