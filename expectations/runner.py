"""``run_gate``: validate what a cycle wrote to one layer, record every outcome, never delete anything.

The increment is the bronze batches of the cycle (``batch_ids``), or event dates (``partitions``), or the
whole layer. Each event date is validated on its own (split further when it has more than
``max_rows_per_frame`` rows), so memory stays bounded however large the layer grows.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from expectations import bronze, gold, silver
from expectations.config import GateConfig, load_gate_config
from expectations.result import LAYERS, ExpectationOutcome, GateResult, Layer
from expectations.sources import (
    check_partition,
    event_slices,
    iter_bronze_chunks,
    open_warehouse,
    read_manifests,
    slice_condition,
)
from lakehouse import ops
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

# The largest frame handed to GX at once; a partition with more rows is validated in slices.
MAX_ROWS_PER_FRAME = 1_000_000

SILVER_READINGS = "silver.silver_readings"
SILVER_REJECTED = "silver.silver_rejected_readings"
GOLD_HOURLY = "gold.gold_sensor_metrics_hourly"
GOLD_ANOMALIES = "gold.gold_anomalies"
GOLD_HEALTH = "gold.gold_device_health"


def run_gate(
    settings: Settings,
    layer: Layer,
    *,
    run_id: str,
    batch_ids: list[int] | None = None,
    partitions: list[str] | None = None,
    docs: bool = False,
    max_rows_per_frame: int = MAX_ROWS_PER_FRAME,
) -> GateResult:
    """Validate one layer's increment; the result says whether an error-severity expectation failed.

    Raises ``LakehouseError`` only for input it cannot validate (a missing table, partition or manifest);
    failed expectations are in the result, for the caller to act on. ``max_rows_per_frame`` bounds the
    rows GX holds at once (a larger partition is validated in slices).
    """
    if layer not in LAYERS:
        raise LakehouseError(f"unknown layer '{layer}'; gate one of {', '.join(LAYERS)}")
    if batch_ids is not None and partitions is not None:
        raise LakehouseError("give either batch ids or partitions for the increment, not both")
    if batch_ids is not None and layer == "gold":
        raise LakehouseError("the gold gate takes partitions (event dates), not batch ids")
    partitions = sorted({check_partition(p) for p in partitions}) if partitions is not None else None
    batch_ids = sorted(set(batch_ids)) if batch_ids is not None else None
    config = load_gate_config(settings.gates_config)
    started = time.monotonic()

    from expectations.engine import GateEngine, quiet

    with quiet():
        engine = GateEngine(layer, run_id, settings.lake_root, docs)
        gate = {"bronze": _BronzeGate, "silver": _SilverGate, "gold": _GoldGate}[layer](
            settings, config, engine, run_id, max_rows_per_frame
        )
        result = gate.run(batch_ids, partitions)
        if docs:
            result.docs_path = engine.build_docs()
    result.seconds = time.monotonic() - started
    ops.append(settings.lake_root, "ops_gate_results", result.ops_rows(validated_at=datetime.now(UTC)))
    return result


class _Gate:
    layer: Layer

    def __init__(self, settings: Settings, config: GateConfig, engine, run_id: str, max_rows: int) -> None:
        self.settings = settings
        self.config = config
        self.engine = engine
        self.run_id = run_id
        self.max_rows = max_rows
        self.outcomes: list[ExpectationOutcome] = []
        self.rows = 0
        self.notes: list[str] = []
        self.suites: list[str] = []

    def register(self, spec) -> None:
        self.engine.register(spec)
        self.suites.append(spec.name)

    def validate(
        self,
        suite: str,
        frame,
        partition: str | None,
        parameters: dict | None = None,
        observed: dict[str, Any] | None = None,
        count_rows: bool = True,
    ) -> None:
        if count_rows:
            self.rows += len(frame)
        for outcome in self.engine.validate(suite, frame, partition, parameters):
            if observed and outcome.expectation in observed:
                outcome = _with_observed(outcome, observed[outcome.expectation])
            self.outcomes.append(outcome)

    def result(self, scope: str, partitions: list[str], batch_ids: list[int] | None) -> GateResult:
        self.outcomes = _mostly_over_increment(self.outcomes, self.config)
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


def _mostly_over_increment(outcomes: list[ExpectationOutcome], config: GateConfig) -> list[ExpectationOutcome]:
    """Judge ``mostly`` rules on the whole increment, not frame by frame.

    GX judges each frame (a partition or a slice of one) on its own; a clock-skewed reading alone in a
    future date's partition would fail ``mostly = 0.99`` there. The share that matters is the increment's,
    so the frames' counts are added up and every frame's outcome gets the increment's verdict.
    """
    from dataclasses import replace

    totals: dict[tuple[str, str], list[int]] = {}
    for o in outcomes:
        if o.unexpected_count is None or config.rule(o.suite, o.rule).mostly >= 1.0:
            continue
        checked, unexpected = totals.setdefault((o.suite, o.expectation), [0, 0])
        totals[(o.suite, o.expectation)] = [
            checked + (o.element_count or 0) - (o.missing_count or 0),
            unexpected + o.unexpected_count,
        ]
    combined = []
    for o in outcomes:
        if (o.suite, o.expectation) in totals:
            checked, unexpected = totals[(o.suite, o.expectation)]
            mostly = config.rule(o.suite, o.rule).mostly
            o = replace(o, success=checked == 0 or (checked - unexpected) / checked >= mostly)
        combined.append(o)
    return combined


def _with_observed(outcome: ExpectationOutcome, value: Any) -> ExpectationOutcome:
    from dataclasses import replace

    return replace(outcome, observed_value=value)


class _BronzeGate(_Gate):
    layer = "bronze"

    def run(self, batch_ids: list[int] | None, partitions: list[str] | None) -> GateResult:
        from expectations.sources import bronze_partitions

        lake = self.settings.lake_root
        manifests = read_manifests(lake)
        present = bronze_partitions(lake)
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

        readings = bronze.readings_suite(self.config, self.settings)
        increment = bronze.increment_suite(self.config, self.settings)
        self.register(readings)
        self.register(increment)

        rows_read = 0
        for partition in dates:
            for label, table in _labelled_chunks(lake, partition, batch_ids, self.max_rows):
                frame = bronze.prepare_readings(table.to_pandas(), partition)
                rows_read += len(frame)
                self.validate(readings.name, frame, label)
                del frame, table

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
            increment.name,
            bronze.increment_frame(summary),
            None,
            parameters,
            observed={
                "row_volume_within_recent_range": rows_read,
                "quarantine_share_below_threshold": summary.quarantine_share,
                "bronze_rows_match_manifests": summary.manifest_bronze_rows,
            },
            count_rows=False,
        )
        return self.result(scope, dates, [m.batch_id for m in chosen] if scope == "batches" else batch_ids)

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


def _labelled_chunks(lake, partition: str, batch_ids: list[int] | None, max_rows: int):
    chunks = iter_bronze_chunks(lake, partition, batch_ids, max_rows)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if second is None:
        yield partition, first
        return
    yield f"{partition} #1", first
    yield f"{partition} #2", second
    for n, chunk in enumerate(chunks, start=3):
        yield f"{partition} #{n}", chunk


class _SilverGate(_Gate):
    layer = "silver"

    def run(self, batch_ids: list[int] | None, partitions: list[str] | None) -> GateResult:
        with open_warehouse(self.settings.lake_root.warehouse) as wh:
            wh.require_table(SILVER_READINGS, "silver")
            wh.require_table(SILVER_REJECTED, "silver")
            present = sorted(
                set(
                    wh.dates(f"select distinct event_date from {SILVER_READINGS}")
                    + wh.dates(f"select distinct event_date from {SILVER_REJECTED}")
                )
            )
            dates = self._choose(partitions, present, wh.path)
            lookback, newest_batch = self._lookback(wh, batch_ids)
            readings = silver.readings_suite(
                self.config, future_tolerance_s=self.settings.future_tolerance_s, lookback=lookback
            )
            rejected = silver.rejected_suite(self.config)
            self.register(readings)
            self.register(rejected)
            self.notes.append(f"lookback: {lookback.describe()}")
            for suite, table, build in (
                (readings.name, SILVER_READINGS, lambda t, p, c: silver.readings_sql(t, p, lookback, c)),
                (rejected.name, SILVER_REJECTED, silver.rejected_sql),
            ):
                undated = wh.scalar(f"select count(*) from {table} where event_date is null")
                for partition in [*dates, *([None] if undated else [])]:
                    rows = wh.scalar(f"select count(*) from {table} where {silver.partition_filter(partition)}")
                    if not rows:
                        continue
                    slices = (
                        event_slices(partition, rows, self.max_rows) if partition else [("no event_date", None, None)]
                    )
                    for label, lower, upper in slices:
                        frame = wh.frame(build(table, partition, slice_condition("event_at", lower, upper)))
                        self.validate(suite, frame, label, observed={"new_reading_within_lookback": newest_batch})
                        del frame
        scope = "batches" if batch_ids is not None else "partitions" if partitions is not None else "all"
        return self.result(scope, dates, batch_ids)

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

    def _lookback(self, wh, batch_ids: list[int] | None) -> tuple[silver.Lookback, int | None]:
        """Which rows are new this cycle and how old they may be; and the newest batch in silver now."""
        days = float(self.config.parameters["silver_lookback_days"])
        newest = wh.scalar(f"select max(batch_id) from {SILVER_READINGS}")
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
        watermark = wh.scalar(f"select max(event_at) from {SILVER_READINGS} where {old_rows}")
        if watermark is None:
            return silver.Lookback.everything_new(), newest
        floor = watermark - timedelta(days=days)
        return silver.Lookback(floor=floor, days=days, **kwargs), newest


class _GoldGate(_Gate):
    layer = "gold"

    def run(self, batch_ids: list[int] | None, partitions: list[str] | None) -> GateResult:
        decimals = self.config.parameters["order_decimals"]
        with open_warehouse(self.settings.lake_root.warehouse) as wh:
            for table in (GOLD_HOURLY, GOLD_ANOMALIES, GOLD_HEALTH):
                wh.require_table(table, "gold")
            wh.require_table(SILVER_READINGS, "silver")
            present = sorted(
                set(
                    wh.dates(f"select distinct cast(hour_at as date) from {GOLD_HOURLY}")
                    + wh.dates(f"select distinct event_date from {SILVER_READINGS}")
                )
            )
            if partitions is None:
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
                gold.hourly_suite(self.config),
                gold.anomalies_suite(self.config),
                gold.health_suite(self.config),
            )
            for spec in (hourly, anomalies, health):
                self.register(spec)
            hourly_columns = wh.columns(GOLD_HOURLY)
            frames: list[tuple[str, str, Callable[[str | None], str]]] = [
                (
                    hourly.name,
                    f"select count(*) from {GOLD_HOURLY} where hour_at is null",
                    lambda d: gold.hourly_sql(GOLD_HOURLY, SILVER_READINGS, d, decimals, hourly_columns),
                ),
                (
                    anomalies.name,
                    f"select count(*) from {GOLD_ANOMALIES} where started_at is null",
                    lambda d: gold.anomalies_sql(GOLD_ANOMALIES, d),
                ),
            ]
            for suite, count_undated, sql in frames:
                undated = wh.scalar(count_undated)
                for partition in [*dates, *([None] if undated else [])]:
                    frame = wh.frame(sql(partition))
                    if len(frame):
                        self.validate(suite, frame, partition or "no date")
                    del frame
            self.validate(health.name, wh.frame(gold.health_sql(GOLD_HEALTH)), None)
        scope = "partitions" if partitions is not None else "all"
        return self.result(scope, dates, None)


def _span(dates: list[str]) -> str:
    if not dates:
        return "no event dates"
    return f"event dates {dates[0]}..{dates[-1]} ({len(dates)})" if len(dates) > 3 else ", ".join(dates)
