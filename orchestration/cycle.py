"""One cycle: bronze, gate bronze, silver, gate silver, gold, gate gold.

A gate with an error-severity failure stops the cycle before the next layer: nothing is deleted, the
failed increment stays where it is, and later layers keep their previous contents. Every step's status,
row counts and duration go to ``ops_runs`` and to the terminal.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakehouse import ops
from lakehouse.config import Settings
from lakehouse.errors import GateFailed, StepFailed
from lakehouse.warehouse import READING_TABLES

Echo = Callable[[str], None]


@dataclass
class StepResult:
    step: str
    status: str  # ok | failed | skipped
    rows_in: int | None = None
    rows_out: int | None = None
    rows_rejected: int | None = None
    seconds: float = 0.0
    detail: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def rows_per_second(self) -> float | None:
        if self.rows_in is None or not self.seconds:
            return None
        return self.rows_in / self.seconds


@dataclass
class CycleReport:
    run_id: str
    started_at: datetime
    steps: list[StepResult] = field(default_factory=list)
    failure: str | None = None
    bronze_batch_ids: list[int] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.failure is None

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.step == name)


STEPS = ("bronze", "gate_bronze", "silver", "gate_silver", "gold", "gate_gold")


def run_cycle(
    settings: Settings,
    *,
    run_id: str | None = None,
    echo: Echo = print,
    spark=None,
    should_stop: Callable[[], bool] = lambda: False,
    retries: int = 0,
    backoff_s: float = 5.0,
) -> CycleReport:
    """Run one cycle; returns its report. Never raises for a failed step: the report says what failed.

    A failed bronze, silver or gold step is retried up to ``retries`` times with exponential backoff (a
    failed gate is not: the data will not change by waiting). ``should_stop`` is asked before each step;
    when it says yes the rest of the cycle is skipped, so a signal never cuts a step in half.
    """
    preflight(settings)
    report = CycleReport(run_id=run_id or ops.new_run_id(), started_at=datetime.now(UTC))
    runner = CycleSteps(settings, report, echo, spark)
    runner.run_steps(STEPS, should_stop=should_stop, retries=retries, backoff_s=backoff_s)
    runner.send_alerts()
    record(settings, report)
    return report


def preflight(settings: Settings) -> None:
    """Refuse to start a cycle that would fail for want of a setting: raises ConfigError naming it and the fix
    (the Athena target's work group and locations, EMR Serverless' application and role)."""
    from lakehouse import aws

    if settings.dbt_target == "athena":
        aws.require_athena(settings)
    if settings.bronze_on == "emr-serverless":
        aws.require_emr_serverless(settings)


def raise_for_failure(report: CycleReport) -> None:
    """Turn a failed report into the CLI's error (exit 3 for a gate, 4 for a step)."""
    if report.success:
        return
    failed = next(s for s in report.steps if s.status == "failed")
    if failed.step.startswith("gate_"):
        raise GateFailed(report.failure)
    raise StepFailed(report.failure)


class CycleSteps:
    """The steps of a cycle, one method each (``_bronze``, ``_gate_silver``, ...), for ``run_cycle`` and for
    the other ways of running them (``lakehouse stream``'s micro-cycles, ``lakehouse backfill``).

    ``dbt_vars`` go to every dbt step; ``selection`` replaces a layer's dbt selection (``{"silver": ...}``);
    ``event_dates`` are the silver gate's partitions (set by the bronze step when it runs);
    ``gold_partitions`` the gold gate's (None: all of gold); ``data_tests`` False leaves dbt's data tests out
    of the dbt steps (a stream's micro-cycles between its full ones: the gates still run).
    """

    def __init__(
        self,
        settings: Settings,
        report: CycleReport,
        echo: Echo = print,
        spark=None,
        *,
        dbt_vars: dict[str, Any] | None = None,
        selection: dict[str, str] | None = None,
        event_dates: list[str] | None = None,
        gold_partitions: list[str] | None = None,
        data_tests: bool = True,
    ) -> None:
        self.settings = settings
        self.report = report
        self.echo = echo
        self.spark = spark
        self.dbt_vars = dbt_vars
        self.selection = selection or {}
        self.event_dates: list[str] = list(event_dates or [])
        self.gold_partitions = gold_partitions
        self.data_tests = data_tests
        self.gate_failures: list[dict] = []

    def run_steps(
        self,
        steps: tuple[str, ...] | list[str],
        *,
        should_stop: Callable[[], bool] = lambda: False,
        retries: int = 0,
        backoff_s: float = 5.0,
    ) -> CycleReport:
        """Run ``steps`` in order; after a failure (or when ``should_stop`` says so) the rest are skipped."""
        for name in steps:
            if not self.report.failure and should_stop():
                self.report.failure = f"stopped by a signal before step '{name}'"
            if self.report.failure:
                self.report.steps.append(StepResult(name, "skipped", detail=f"skipped: {self.report.failure}"))
                continue
            self.run_step(name, retries=0 if name.startswith("gate_") else retries, backoff_s=backoff_s)
        return self.report

    def send_alerts(self) -> None:
        """Failed gates always; new anomalies once gold passed its gate. A sink that fails is reported
        and retried next cycle: alerting never fails the cycle itself."""
        from orchestration.alerts import new_anomalies_from_warehouse, send_alerts

        gold_ok = any(s.step == "gate_gold" and s.status == "ok" for s in self.report.steps)
        try:
            anomalies = new_anomalies_from_warehouse(self.settings) if gold_ok else None
            alerts = send_alerts(
                self.settings, self.report.run_id, anomalies=anomalies, gate_failures=self.gate_failures or None
            )
            self.echo(f"[{self.report.run_id}] {alerts.summary()}")
        except Exception as exc:  # noqa: BLE001 - reported, the cycle's data work is done
            self.echo(f"[{self.report.run_id}] alerts: not sent: {type(exc).__name__}: {exc}")

    def run_step(self, name: str, retries: int = 0, backoff_s: float = 5.0) -> None:
        self.echo(f"[{self.report.run_id}] {name} ...")
        started = time.monotonic()
        started_at = datetime.now(UTC)
        for attempt in range(retries + 1):
            try:
                result = getattr(self, f"_{name}")()
            except Exception as exc:  # a step's crash fails the cycle, it does not kill the scheduler
                result = StepResult(name, "failed", detail=f"{type(exc).__name__}: {exc}")
            if result.status != "failed" or attempt == retries:
                break
            delay = backoff_s * 2**attempt * (1 + random.random() / 2)
            self.echo(f"[{self.report.run_id}] {name}: attempt {attempt + 1} failed, retrying in {delay:.1f} s")
            time.sleep(delay)
        result.seconds = time.monotonic() - started
        result.started_at, result.finished_at = started_at, datetime.now(UTC)
        self.report.steps.append(result)
        if result.status == "failed":
            self.report.failure = f"step '{name}' failed: {result.detail}"
        self.echo(f"[{self.report.run_id}] {name}: {result.status} in {result.seconds:.1f} s. {result.detail}".rstrip())

    def _bronze(self) -> StepResult:
        if self.settings.bronze_on == "emr-serverless":
            from orchestration.emr import run_bronze_on_emr_serverless

            bronze = run_bronze_on_emr_serverless(self.settings, run_id=self.report.run_id, echo=self.echo)
        else:
            from spark.bronze_job import run_bronze

            # A schedule passes a function that starts its one session on first use (orchestration.schedule).
            spark = self.spark() if callable(self.spark) else self.spark
            bronze = run_bronze(self.settings, spark=spark)
        self.report.bronze_batch_ids = bronze.batch_ids
        self.event_dates = sorted({d for b in bronze.batches for d in b.event_dates})
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(bronze.quarantine_reasons().items()))
        detail = f"{len(bronze.batches)} batch(es)" + (f"; quarantined: {reasons}" if reasons else "")
        return StepResult("bronze", "ok", bronze.lines, bronze.bronze_rows, bronze.quarantine_rows, detail=detail)

    def _gate(self, layer: str, **scope: Any) -> StepResult:
        from expectations.runner import run_gate

        if self.settings.dbt_target == "athena":
            from orchestration.athena import athena_target

            scope["athena"] = athena_target(self.settings)
        gate = run_gate(self.settings, layer, run_id=self.report.run_id, **scope)
        failed = [o for o in gate.results if not o.success]
        if not gate.success:
            from orchestration.alerts import gate_failures

            self.gate_failures.extend(gate_failures(gate))
        warnings = [o for o in failed if o.severity == "warning"]
        if not gate.success:
            return StepResult(f"gate_{layer}", "failed", detail=f"gate {layer} failed:\n{gate.format_report()}")
        if warnings:
            self.echo(gate.format_report())
        checked = len(gate.results)
        return StepResult(
            f"gate_{layer}",
            "ok",
            detail=f"{checked} expectation(s) passed" + (f", {len(warnings)} warning(s)" if warnings else ""),
        )

    def _gate_bronze(self) -> StepResult:
        if not self.report.bronze_batch_ids:
            return StepResult("gate_bronze", "ok", detail="no new bronze batches to validate")
        return self._gate("bronze", batch_ids=self.report.bronze_batch_ids)

    def _gate_silver(self) -> StepResult:
        return self._gate("silver", partitions=self.event_dates or None)

    def _gate_gold(self) -> StepResult:
        return self._gate("gold", partitions=self.gold_partitions)

    def _transform(self, layer: str) -> StepResult:
        from orchestration.transform import transform

        result = transform(
            self.settings, layer, vars=self.dbt_vars, select=self.selection.get(layer), data_tests=self.data_tests
        )
        if not result.success:
            return StepResult(layer, "failed", detail="dbt: " + "; ".join(result.failures))
        counts = layer_counts(self.settings)
        built = sum(1 for m in result.models if m.status in ("success", "pass"))
        if layer == "silver":
            return StepResult(
                "silver",
                "ok",
                counts.get("bronze"),
                counts.get("silver_readings"),
                counts.get("silver_rejected_readings"),
                detail=f"dbt: {built} node(s) ok" + self._rejections(),
            )
        return StepResult(
            "gold",
            "ok",
            counts.get("silver_readings"),
            counts.get("gold_sensor_metrics_hourly"),
            detail=f"dbt: {built} node(s) ok",
        )

    def _rejections(self) -> str:
        """When silver rejected a large share of this cycle's readings: the top reasons, an example, the fix."""
        from lakehouse.rejections import summarise

        lake = self.settings.lake_root
        if not lake.is_local or not lake.warehouse.exists():
            return ""
        import duckdb

        batches = self.report.bronze_batch_ids
        where = f"batch_id in ({', '.join(str(b) for b in batches)})" if batches else "true"
        with duckdb.connect(str(lake.warehouse), read_only=True) as con:
            rejections = summarise(
                lambda sql: con.execute(sql).fetchall(), WAREHOUSE_TABLES["silver_readings"],
                WAREHOUSE_TABLES["silver_rejected_readings"], where,
            )  # fmt: skip
        return "\n" + rejections.format() if rejections.is_large else ""

    def _silver(self) -> StepResult:
        return self._transform("silver")

    def _gold(self) -> StepResult:
        return self._transform("gold")


WAREHOUSE_TABLES = {table.name: table.relation for table in READING_TABLES}


def layer_counts(settings: Settings) -> dict[str, int]:
    """Row counts of bronze, quarantine and the warehouse tables (absent tables are left out)."""
    import duckdb

    lake = settings.lake_root
    counts: dict[str, int] = {}
    if not lake.is_local:
        return counts
    with duckdb.connect(str(lake.warehouse), read_only=True) if lake.warehouse.exists() else duckdb.connect() as con:
        for name, path in (("bronze", lake.bronze_readings), ("quarantine", lake.quarantine_readings)):
            if any(Path(path).glob("*/*.parquet")):
                counts[name] = con.execute(f"select count(*) from read_parquet('{path}/*/*.parquet')").fetchall()[0][0]
        existing = {
            f"{s}.{t}"
            for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        }
        for name, table in WAREHOUSE_TABLES.items():
            if table in existing:
                counts[name] = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    return counts


def record(settings: Settings, report: CycleReport, mode: str = "cycle", **extra: Any) -> None:
    """Append the report's steps to ``ops_runs``: one row per step, with the run's ``mode`` (cycle, stream,
    backfill), the bronze batches it covered and any ``extra`` fields (a backfill's range)."""
    rows = [
        {
            **extra,
            "mode": mode,
            "bronze_batch_ids": report.bronze_batch_ids,
            "run_id": report.run_id,
            "step": s.step,
            "status": s.status,
            "rows_in": s.rows_in,
            "rows_out": s.rows_out,
            "rows_rejected": s.rows_rejected,
            "seconds": round(s.seconds, 3),
            "detail": s.detail[:2000],
            "started_at": s.started_at,
            "finished_at": s.finished_at,
            "cycle_started_at": report.started_at,
            "recorded_at": datetime.now(UTC),
        }
        for s in report.steps
    ]
    ops.append(settings.lake_root, "ops_runs", rows, settings=settings)
