"""Great Expectations, set up from code for one gate run: an ephemeral context, one SQL data source on the
warehouse (DuckDB locally, Athena on AWS: the URL decides, ``expectations/warehouse.py``), and per suite a
query asset over the whole increment, its batch definition, validation definition and the layer's
checkpoint ``gate_<layer>``. GX computes every metric in the warehouse; no row reaches Python.

A suite is validated in two passes, so its cost is a few scans of the increment however many expectations
it has. GX's SUMMARY results run, for every column expectation, one query for its sample of unexpected
values and one for the sample rows, even when nothing is unexpected: silver's 42 expectations made 83
queries over the increment. The first pass asks only for the verdicts (``BOOLEAN_ONLY``: GX bundles the
aggregates of a query into one SELECT, 4 queries for silver); the second asks for counts and sample rows
of the failed expectations only. A passed expectation is recorded with the increment's row count and, when
it has no ``mostly`` (so every checked row passed), no unexpected rows; a passed ``mostly`` rule's count is
not computed. With Data Docs on, the first pass is the SUMMARY one, so the docs show every figure.

Results stay in the context's in-memory store; with Data Docs on, the docs site is built at
``<lake>/gx/data_docs/`` once, after the last suite (on a local lake the results are also kept in
``<lake>/gx/validations/`` so the index lists earlier runs; GX 1.x has no S3 stores, so on S3 the site is
built in a temporary folder and uploaded, its index listing this run).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from expectations.result import ExpectationOutcome
from expectations.suites import SuiteSpec
from lakehouse.config import Settings
from lakehouse.storage import storage_for

DOCS_SITE = "lake"
VERDICTS = {"result_format": "BOOLEAN_ONLY"}


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


def sql_datasource(name: str, warehouse: Any) -> Any:  # -> great_expectations SQLDatasource
    """GX's SQL datasource on a warehouse's URL and engine arguments. Building it does not connect."""
    from great_expectations.datasource.fluent import SQLDatasource

    return SQLDatasource(name=name, connection_string=warehouse.url, kwargs=warehouse.kwargs)


def add_increment(datasource: Any, suite: str, label: str, query: str) -> tuple[Any, Any]:
    """What one suite validates: a query asset over the increment and its whole-table batch definition."""
    asset = datasource.add_query_asset(name=f"{suite} {label}", query=query)
    return asset, asset.add_batch_definition_whole_table("increment")


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
        self.source: Any = None
        self._specs: dict[str, SuiteSpec] = {}
        self._suites: dict[str, Any] = {}
        self.docs = docs

    def use_warehouse(self, warehouse: Any) -> None:
        """Validate on this warehouse from now on (bronze's increment summary shares bronze's)."""
        name = f"{self.layer}_{len(self.context.data_sources.all())}"
        self.source = self.context.data_sources.add_sql(name_or_datasource=sql_datasource(name, warehouse))

    def register(self, spec: SuiteSpec) -> None:
        self._suites[spec.name] = self.context.suites.add(spec.build())
        self._specs[spec.name] = spec

    def validate(
        self,
        suite: str,
        query: str,
        partition: str | None,
        rows: int,
        parameters: dict[str, Any] | None = None,
    ) -> list[ExpectationOutcome]:
        """Validate one suite on the increment ``query`` (``rows`` rows) with the layer's checkpoint."""
        from great_expectations.core.run_identifier import RunIdentifier

        gx = self._gx
        spec = self._specs[suite]
        _, batch_definition = add_increment(self.source, suite, partition or "increment", query)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(
                name=f"{suite} {partition or 'increment'}", data=batch_definition, suite=self._suites[suite]
            )
        )
        checkpoint = self.context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"gate_{self.layer}",
                validation_definitions=[definition],
                result_format=spec.result_format if self.docs else VERDICTS,
                actions=[],
            )
        )
        run = RunIdentifier(run_name=f"{self.run_id} {partition or 'increment'}", run_time=datetime.now(UTC))
        (validation,) = checkpoint.run(expectation_parameters=parameters or {}, run_id=run).run_results.values()
        outcomes = [to_outcome(suite, r, partition) for r in validation.results]
        if self.docs:
            return outcomes
        failed = [r.expectation_config for r in validation.results if not r.success]
        details = self._details(spec, batch_definition, failed, partition, parameters) if failed else {}
        return [details.get(o.expectation) or _passed(o, spec, rows) for o in outcomes]

    def _details(
        self,
        spec: SuiteSpec,
        batch_definition: Any,
        failed: list[Any],
        partition: str | None,
        parameters: dict[str, Any] | None,
    ) -> dict[str, ExpectationOutcome]:
        """Counts, observed values and sample rows of the failed expectations (GX's SUMMARY), by name."""
        from great_expectations.validator.v1_validator import Validator

        expectations = [c.to_domain_obj() for c in failed]
        for expectation in expectations:
            expectation.id = None  # a copy: the suite's own expectations stay in the suite
        suite = self._gx.ExpectationSuite(name=f"{spec.name} failures", expectations=expectations)
        validator = Validator(batch_definition=batch_definition, result_format=spec.result_format)
        result = validator.validate_expectation_suite(suite, parameters or {})
        outcomes = [to_outcome(spec.name, r, partition) for r in result.results]
        return {o.expectation: o for o in outcomes}

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
        """Close GX's connections to the warehouses (so dbt can take DuckDB's writer lock next) and remove
        the temporary Data Docs folder of an S3 lake, built or not."""
        for datasource in self.context.data_sources.all().values():
            datasource.get_execution_engine().engine.dispose()
            datasource.get_engine().dispose()
        if self._docs_staging is not None:
            shutil.rmtree(self._docs_staging, ignore_errors=True)
            self._docs_staging = None


def _passed(outcome: ExpectationOutcome, spec: SuiteSpec, rows: int) -> ExpectationOutcome:
    """A passed expectation of the verdicts pass, with the counts its verdict implies (see the docstring)."""
    if not outcome.success or outcome.element_count is not None:
        return outcome
    expectation = next(e for e in spec.expectations if e.meta["name"] == outcome.expectation)
    if not spec.is_row_check(expectation):
        return outcome
    every_row = spec.config.rule(spec.name, outcome.rule).mostly >= 1.0
    return replace(outcome, element_count=rows, unexpected_count=0 if every_row else None)


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
        sample_rows=[
            _value_first(row, kwargs.get("column"))
            for row in body.get("partial_unexpected_index_list") or []
            if isinstance(row, dict)
        ],
    )


def _value_first(row: dict[str, Any], column: str | None) -> dict[str, Any]:
    """A sample row with the checked column's value first, then the columns that identify the row."""
    if column not in row:
        return dict(row)
    return {column: row[column], **{k: v for k, v in row.items() if k != column}}


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
