"""``run_gate``: validate what a cycle wrote to one layer, record every outcome, never delete anything.

The increment is the bronze batches of the cycle (``batch_ids``), or event dates (``partitions``), or the
whole layer. Each suite is validated once, on one query over the whole increment, inside the warehouse
(DuckDB locally, Athena on AWS; ``expectations/warehouse.py``): no row is pulled into Python, and the cost
grows with the increment's rows, not with the number of its event dates.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from expectations import bronze, gold, silver, stedi
from expectations.config import GateConfig, load_gate_config
from expectations.lake_files import check_partition, date_ranges, read_manifests
from expectations.result import LAYERS, ExpectationOutcome, GateResult, Layer
from lakehouse import ops, warehouse
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.fleet import load_fleet
from lakehouse.rejections import summarise

if TYPE_CHECKING:
    from expectations.athena import AthenaTarget

BRONZE_READINGS = "bronze.readings"  # locally a view over the increment's Parquet files; on Athena a Glue table
SILVER_READINGS = warehouse.SILVER_READINGS.relation
SILVER_REJECTED = warehouse.SILVER_REJECTED.relation
GOLD_HOURLY = warehouse.GOLD_HOURLY.relation
GOLD_ANOMALIES = warehouse.GOLD_ANOMALIES.relation
GOLD_HEALTH = warehouse.GOLD_DEVICE_HEALTH.relation


def run_gate(
    settings: Settings,
    layer: Layer,
    *,
    run_id: str,
    batch_ids: list[int] | None = None,
    partitions: list[str] | None = None,
    docs: bool = False,
    athena: AthenaTarget | None = None,
) -> GateResult:
    """Validate one layer's increment; the result says whether an error-severity expectation failed.

    Raises ``LakehouseError`` only for input it cannot validate (a missing table, partition or manifest);
    failed expectations are in the result, for the caller to act on. ``athena``: validate the Glue tables
    through Athena instead of the local warehouse and Parquet (see ``expectations/athena.py``).
    """
    if layer not in LAYERS:
        raise LakehouseError(f"unknown layer '{layer}'; gate one of {', '.join(LAYERS)}")
    if batch_ids is not None and partitions is not None:
        raise LakehouseError("give either batch ids or partitions for the increment, not both")
    if batch_ids is not None and layer == "gold":
        raise LakehouseError("the gold gate takes partitions (event dates), not batch ids")
    if settings.dbt_target == "athena" and athena is None:
        raise LakehouseError(
            "dbt_target is athena but no Athena target was given to the gate: pass "
            "athena=expectations.athena.AthenaTarget(region=..., s3_staging_dir=...) to run_gate"
        )
    partitions = sorted({check_partition(p) for p in partitions}) if partitions is not None else None
    batch_ids = sorted(set(batch_ids)) if batch_ids is not None else None
    config = load_gate_config(settings.gates_config)
    started = time.monotonic()

    from expectations.engine import GateEngine, quiet

    with quiet():
        engine = GateEngine(layer, run_id, settings, docs)
        if athena is not None:
            from expectations.athena import open_athena

            warehouse = partial(open_athena, athena)
        else:
            warehouse = partial(_local_warehouse, settings)
        gate = {"bronze": _BronzeGate, "silver": _SilverGate, "gold": _GoldGate}[layer](
            settings, config, engine, run_id, warehouse, athena is not None
        )
        try:
            result = gate.run(batch_ids, partitions)
            if docs:
                result.docs_path = engine.build_docs()
        finally:
            engine.close()
    result.seconds = time.monotonic() - started
    ops.append(settings.lake_root, "ops_gate_results", result.ops_rows(validated_at=datetime.now(UTC)))
    return result


class _Gate:
    layer: Layer

    def __init__(
        self,
        settings: Settings,
        config: GateConfig,
        engine,
        run_id: str,
        warehouse: Callable[[], Any],
        on_athena: bool,
    ) -> None:
        self.warehouse = warehouse  # opens the warehouse: the local DuckDB file, or Athena
        self.on_athena = on_athena
        self.settings = settings
        self.config = config
        self.engine = engine
        self.run_id = run_id
        self.outcomes: list[ExpectationOutcome] = []
        self.rows = 0
        self.notes: list[str] = []
        self.suites: list[str] = []
        self.fleet = load_fleet(settings)  # the user's catalogue: their device types, metrics and devices

    def register(self, spec) -> None:
        self.engine.register(spec)
        self.suites.append(spec.name)

    def validate(
        self,
        wh,
        suite: str,
        query: str,
        partition: str | None,
        parameters: dict | None = None,
        observed: dict[str, Any] | None = None,
        count_rows: bool = True,
        rows: int | None = None,
    ) -> int:
        """Validate one suite on the increment ``query`` in the warehouse; returns its rows (0: not validated,
        an empty increment has nothing to check)."""
        if rows is None:
            rows = int(wh.scalar(f"select count(*) from ({query}) as increment_"))
        if not rows:
            return 0
        outcomes = self.engine.validate(suite, query, partition, rows, parameters)
        self.rows += rows if count_rows else 0
        for outcome in outcomes:
            if observed and outcome.expectation in observed:
                outcome = _with_observed(outcome, observed[outcome.expectation])
            self.outcomes.append(outcome)
        return rows

    def result(self, scope: str, partitions: list[str], batch_ids: list[int] | None) -> GateResult:
        success = not any(not o.success and o.severity == "error" for o in self.outcomes)
        return GateResult(
            layer=self.layer,
            run_id=self.run_id,
            suite_names=self.suites,
            success=success,
            results=self.outcomes,
            seconds=0.0,
            scope=scope,
            partitions=partitions,
            batch_ids=batch_ids or [],
            rows=self.rows,
            notes=self.notes,
        )

    def history(self, suite: str, expectation: str, **match: Any) -> list[dict[str, Any]]:
        """Earlier ``ops_gate_results`` records of one expectation (other runs), oldest first."""
        rows = [
            r
            for r in ops.read(self.settings.lake_root, "ops_gate_results")
            if r.get("suite") == suite
            and r.get("expectation") == expectation
            and r.get("run_id") != self.run_id
            and all(r.get(k) == v for k, v in match.items())
        ]
        return sorted(rows, key=lambda r: r.get("validated_at") or "")


def _with_observed(outcome: ExpectationOutcome, value: Any) -> ExpectationOutcome:
    from dataclasses import replace

    return replace(outcome, observed_value=value)


class _BronzeGate(_Gate):
    layer = "bronze"

    def run(self, batch_ids: list[int] | None, partitions: list[str] | None) -> GateResult:
        from expectations.lake_files import BronzeFiles

        lake = self.settings.lake_root
        manifests = read_manifests(lake)
        files = BronzeFiles(self.settings)
        present = files.partitions() if not self.on_athena else self._athena_partitions()
        if batch_ids is not None:
            missing = [b for b in batch_ids if b not in manifests]
            if missing:
                raise LakehouseError(
                    f"no manifest for bronze batch(es) {missing} under {lake.manifests('bronze_readings')}; "
                    f"gate batches the bronze job has finished (`lakehouse status` lists them)"
                )
            chosen = [manifests[b] for b in batch_ids]
            dates = sorted({d for m in chosen for d in m.event_dates})
            scope = "batches"
        elif partitions is not None:
            absent = [p for p in partitions if p not in present]
            if absent:
                raise LakehouseError(
                    f"bronze has no partition event_date={', '.join(absent)} under {lake.bronze_readings}; "
                    f"it holds {_span(present)}"
                )
            dates = partitions
            chosen = [m for m in manifests.values() if set(m.event_dates) & set(dates)]
            scope = "partitions"
        else:
            if not present:
                raise LakehouseError(
                    f"bronze at {lake.bronze_readings} has no partitions yet; land some first (`lakehouse bronze`)"
                )
            dates, chosen, scope = present, list(manifests.values()), "all"
        if not chosen:
            raise LakehouseError(
                f"no bronze manifest under {lake.manifests('bronze_readings')} covers {_span(dates)}, so the "
                f"quarantine share cannot be computed; bronze must be written by the bronze job (`lakehouse bronze`)"
            )

        readings = bronze.readings_suite(self.config, self.settings, self.fleet)
        increment = bronze.increment_suite(self.config, self.settings)
        self.register(readings)
        self.register(increment)

        with self._bronze_warehouse(files, dates) as wh:
            self.engine.use_warehouse(wh)
            columns = wh.columns(BRONZE_READINGS)
            if batch_ids is not None and columns and "_batch_id" not in columns:
                raise LakehouseError(
                    f"bronze under {lake.bronze_readings} has no _batch_id column, so its rows cannot be "
                    f"matched to batches; gate it with --partition instead of --batch"
                )
            kind = wh.column_type(BRONZE_READINGS, "event_date") if columns else "varchar"
            sql = bronze.readings_sql(wh.table(BRONZE_READINGS), dates, batch_ids, kind, columns, wh.regexp_like)
            rows_read = self.validate(wh, readings.name, sql, _label(dates)) if columns else 0

            summary = bronze.Increment(
                scope=scope,
                batch_ids=tuple(m.batch_id for m in sorted(chosen, key=lambda m: m.batch_id)),
                partitions=tuple(dates),
                lines=sum(m.lines for m in chosen),
                quarantine_rows=sum(m.quarantine_rows for m in chosen),
                manifest_bronze_rows=sum(m.bronze_rows for m in chosen) if scope != "partitions" else None,
                bronze_rows_read=rows_read,
            )
            parameters = self._volume_bounds(scope, rows_read)
            self.validate(
                wh,
                increment.name,
                bronze.increment_sql(summary),
                None,
                parameters,
                observed={
                    "row_volume_within_recent_range": rows_read,
                    "quarantine_share_below_threshold": summary.quarantine_share,
                    "bronze_rows_match_manifests": summary.manifest_bronze_rows,
                },
                count_rows=False,
                rows=1,
            )
        return self.result(scope, dates, [m.batch_id for m in chosen] if scope == "batches" else batch_ids)

    def _bronze_warehouse(self, files, dates: list[str]):
        """Athena's Glue table, or locally an in-memory DuckDB over the Parquet files of the increment's dates."""
        if self.on_athena:
            return self.warehouse()
        from expectations.warehouse import open_local_bronze, parquet_view

        paths = [f for d in dates for f in files.files(d)]
        view = parquet_view(paths, files.root, files.s3, "event_date") if paths else None
        return open_local_bronze(view, files.uri)

    def _athena_partitions(self) -> list[str]:
        with self.warehouse() as wh:
            wh.require_table(BRONZE_READINGS, "(see orchestration.athena.athena_init)")
            return sorted(set(wh.dates(f"select distinct event_date from {wh.table(BRONZE_READINGS)}")))

    def _volume_bounds(self, scope: str, rows: int) -> dict[str, Any]:
        params = self.config.parameters
        if scope == "all":
            self.notes.append("row volume: the whole layer is not an increment; no volume bound")
            return {"volume_min_rows": 0, "volume_max_rows": None}
        recent = [
            r["observed_value"]
            for r in self.history(bronze.INCREMENT_SUITE, "row_volume_within_recent_range", scope=scope)
            if isinstance(r.get("observed_value"), int | float)
        ][-params["volume_recent_cycles"] :]
        if len(recent) < params["volume_min_cycles"]:
            self.notes.append(
                f"row volume: {len(recent)} earlier cycle(s) on record, {params['volume_min_cycles']} needed "
                f"for a bound; {rows:,} rows recorded for the next cycles"
            )
            return {"volume_min_rows": 0, "volume_max_rows": None}
        median = statistics.median(recent)
        low, high = median * params["volume_min_ratio"], median * params["volume_max_ratio"]
        self.notes.append(
            f"row volume: {rows:,} rows against a median of {median:,.0f} over the last {len(recent)} cycles "
            f"(allowed {low:,.0f}..{high:,.0f})"
        )
        return {"volume_min_rows": low, "volume_max_rows": high}


def _label(dates: list[str]) -> str | None:
    """The partition an outcome is recorded under: the event date of a one-date increment, else None (the
    result's ``partitions`` lists the dates; sample rows show where a failure is)."""
    return dates[0] if len(dates) == 1 else None


def _has_stedi(wh) -> bool:
    """Whether the silver step built STEDI staging views that hold rows."""
    return any(
        wh.columns(frame.view) and wh.scalar(f"select count(*) from {wh.table(frame.view)}")
        for frame in stedi.frames(wh.table)
    )


class _SilverGate(_Gate):
    layer = "silver"

    def run(self, batch_ids: list[int] | None, partitions: list[str] | None) -> GateResult:
        with self.warehouse() as wh:
            readings_table, rejected_table = wh.table(SILVER_READINGS), wh.table(SILVER_REJECTED)
            wh.require_table(SILVER_READINGS, "silver")
            wh.require_table(SILVER_REJECTED, "silver")
            present = sorted(
                set(
                    wh.dates(f"select distinct event_date from {readings_table}")
                    + wh.dates(f"select distinct event_date from {rejected_table}")
                )
            )
            if not present and partitions is None and _has_stedi(wh):
                # A lake of STEDI files only (brought with `lakehouse ingest-files`) has no readings to gate.
                self.notes.append("silver readings: none in this lake; only the STEDI sources are gated")
                self._stedi(wh)
                return self.result("all", [], batch_ids)
            dates = self._choose(partitions, present, wh.path)
            lookback, newest_batch = self._lookback(wh, readings_table, batch_ids)
            readings = silver.readings_suite(
                self.config, self.fleet, future_tolerance_s=self.settings.future_tolerance_s, lookback=lookback
            )
            rejected = silver.rejected_suite(self.config, self.fleet)
            self.register(readings)
            self.register(rejected)
            self.notes.append(f"lookback: {lookback.describe()}")
            self.engine.use_warehouse(wh)
            # Rows without an event date belong to no partition: every increment includes them.
            ranges = date_ranges(dates) if partitions is not None else None
            label = _label(dates)
            dated = ", ".join(f"date '{d}'" for d in dates)
            where = f"event_date in ({dated})" if partitions is not None and dates else "true"
            rejections = summarise(partial(_rows, wh), readings_table, rejected_table, where)
            if rejections.is_large:  # say what silver rejected and why, with the fix
                self.notes.append(rejections.format())
            observed = {"new_reading_within_lookback": newest_batch}
            readings_sql = silver.readings_sql(readings_table, ranges, lookback, self.fleet)
            self.validate(wh, readings.name, readings_sql, label, observed=observed)
            self.validate(wh, rejected.name, silver.rejected_sql(rejected_table, ranges), label)
            self._stedi(wh)
        scope = "batches" if batch_ids is not None else "partitions" if partitions is not None else "all"
        return self.result(scope, dates, batch_ids)

    def _stedi(self, wh) -> None:
        """The STEDI sources (expectations/stedi.py), whole, when the silver step built their staging views
        and those hold rows: a lake without STEDI data skips them."""
        for frame in stedi.frames(wh.table):
            if not wh.columns(frame.view) or not wh.scalar(f"select count(*) from {wh.table(frame.view)}"):
                continue
            self.register(stedi.SUITES[frame.suite](self.config))
            if self.engine.source is None:  # a lake of STEDI files only: no readings were validated first
                self.engine.use_warehouse(wh)
            self.validate(wh, frame.suite, frame.sql, None)

    def _choose(self, partitions: list[str] | None, present: list[str], where) -> list[str]:
        if partitions is None:
            if not present:
                raise LakehouseError(
                    f"{SILVER_READINGS} and {SILVER_REJECTED} in {where} are both empty; nothing to gate "
                    f"(build silver from bronze first: `lakehouse transform silver`)"
                )
            return present
        absent = [p for p in partitions if p not in present]
        if absent:
            raise LakehouseError(
                f"silver has no rows for event date(s) {', '.join(absent)} in {SILVER_READINGS} or "
                f"{SILVER_REJECTED} ({where}); it holds {_span(present)}. Build silver for them first"
            )
        return partitions

    def _lookback(self, wh, table: str, batch_ids: list[int] | None) -> tuple[silver.Lookback, int | None]:
        """Which rows are new this cycle and how old they may be; and the newest batch in silver now."""
        days = float(self.config.parameters["silver_lookback_days"])
        newest = wh.scalar(f"select max(batch_id) from {table}")
        newest = int(newest) if newest is not None else None
        if batch_ids is not None:
            ids = ", ".join(str(b) for b in batch_ids) or "null"
            old_rows = f"batch_id not in ({ids})"
            kwargs: dict[str, Any] = {"new_batch_ids": tuple(batch_ids)}
        else:
            earlier = [
                r
                for r in self.history(silver.READINGS_SUITE, "new_reading_within_lookback")
                if isinstance(r.get("observed_value"), int)
            ]
            if not earlier:
                return silver.Lookback.everything_new(), newest
            after = earlier[-1]["observed_value"]
            old_rows = f"batch_id <= {after}"
            kwargs = {"after_batch_id": after}
        watermark = wh.scalar(f"select max(event_at) from {table} where {old_rows}")
        if watermark is None:
            return silver.Lookback.everything_new(), newest
        floor = watermark - timedelta(days=days)
        return silver.Lookback(floor=floor, days=days, **kwargs), newest


class _GoldGate(_Gate):
    layer = "gold"

    def run(self, batch_ids: list[int] | None, partitions: list[str] | None) -> GateResult:
        decimals = self.config.parameters["order_decimals"]
        with self.warehouse() as wh:
            for table in (GOLD_HOURLY, GOLD_ANOMALIES, GOLD_HEALTH):
                wh.require_table(table, "gold")
            wh.require_table(SILVER_READINGS, "silver")
            hourly_table, anomalies_table = wh.table(GOLD_HOURLY), wh.table(GOLD_ANOMALIES)
            silver_table = wh.table(SILVER_READINGS)
            present = sorted(
                set(
                    wh.dates(f"select distinct cast(hour_at as date) from {hourly_table}")
                    + wh.dates(f"select distinct event_date from {silver_table}")
                )
            )
            if partitions is None:
                if not present and _has_stedi(wh):
                    # A lake of STEDI files only: no readings, so no gold aggregates to check; the curated
                    # models are guarded by their dbt tests (no_pii_columns, keys).
                    self.notes.append("gold readings: none in this lake; nothing of gold's readings to gate")
                    return self.result("all", [], batch_ids)
                rejected = wh.table(SILVER_REJECTED)
                if not present and wh.scalar(f"select count(*) from {rejected}"):
                    rejections = summarise(partial(_rows, wh), silver_table, rejected, "true")
                    raise LakehouseError(
                        f"gold has nothing to check because silver accepted none of the readings "
                        f"({SILVER_READINGS} in {wh.path} is empty): {rejections.format()}"
                    )
                if not present:
                    raise LakehouseError(
                        f"{GOLD_HOURLY} and {SILVER_READINGS} in {wh.path} are empty; nothing to gate "
                        f"(build gold first: `lakehouse transform gold`)"
                    )
                dates = present
            else:
                absent = [p for p in partitions if p not in present]
                if absent:
                    raise LakehouseError(
                        f"neither {GOLD_HOURLY} nor {SILVER_READINGS} has rows for event date(s) "
                        f"{', '.join(absent)} ({wh.path}); they hold {_span(present)}"
                    )
                dates = partitions
            hourly, anomalies, health = (
                gold.hourly_suite(self.config, self.fleet),
                gold.anomalies_suite(self.config, self.fleet),
                gold.health_suite(self.config),
            )
            for spec in (hourly, anomalies, health):
                self.register(spec)
            hourly_columns = wh.columns(GOLD_HOURLY)
            self.engine.use_warehouse(wh)
            ranges = date_ranges(dates) if partitions is not None else None
            label = _label(dates)
            self.validate(
                wh,
                hourly.name,
                gold.hourly_sql(hourly_table, silver_table, ranges, decimals, hourly_columns, self.fleet),
                label,
            )
            self.validate(wh, anomalies.name, gold.anomalies_sql(anomalies_table, ranges), label)
            self.validate(wh, health.name, gold.health_sql(wh.table(GOLD_HEALTH), self.fleet), None)
        scope = "partitions" if partitions is not None else "all"
        return self.result(scope, dates, None)


def _local_warehouse(settings: Settings):
    from expectations.warehouse import open_local_warehouse

    lake = settings.lake_root
    if not lake.is_local:
        raise LakehouseError(
            f"the lake {lake.root} is on S3, where silver and gold are Athena tables, not a local DuckDB file: "
            f"gate them through Athena (run_gate(..., athena=AthenaTarget(...)), see expectations/README.md)"
        )
    return open_local_warehouse(lake.warehouse)


def _span(dates: list[str]) -> str:
    if not dates:
        return "no event dates"
    return f"event dates {dates[0]}..{dates[-1]} ({len(dates)})" if len(dates) > 3 else ", ".join(dates)


def _rows(wh, sql: str) -> list[tuple]:
    """Rows of a query on the gate's warehouse (DuckDB or Athena), for the rejection summary."""
    return [tuple(row) for row in wh.rows(sql)]
