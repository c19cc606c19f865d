"""``lakehouse backfill --from D1 --to D2``: rebuild silver and gold for an event-date range from bronze.

Why: a fix to the silver rules or a seed (metric limits, unit conversions), readings that arrived later
than the incremental lookback, or a damaged table. The range is inclusive and in UTC event dates.

How: the incremental models honour dbt vars ``backfill_from`` / ``backfill_to``
(``dbt_project/macros/backfill.sql``): every unit of those dates (device-days in silver, device-hours and
device-days in gold, the anomaly windows of a device-day) is rebuilt from its inputs, whatever the
lookback, and the units of every other date are left exactly as they were. Then the gates validate the
rebuilt dates, alerts go out as after a cycle, and the run is recorded in ``ops_runs`` (mode
``backfill``, with the range). It holds the cycle lock, so it never runs beside a cycle or a stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from lakehouse import ops
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.storage import storage_for
from orchestration.cycle import CycleReport, CycleSteps, Echo, StepResult, preflight, record

LAYERS = ("silver", "gold")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class DateRange:
    """Inclusive range of UTC event dates."""

    start: date
    end: date

    @classmethod
    def parse(cls, start: str, end: str) -> DateRange:
        """Read ``--from`` and ``--to``; a bad date or an inverted range is a :class:`LakehouseError`."""
        first, last = _parse_date(start, "--from"), _parse_date(end, "--to")
        if first > last:
            raise LakehouseError(
                f"--from {first} is after --to {last}; the range is inclusive, give the earlier date first "
                f"(--from {last} --to {first})"
            )
        return cls(first, last)

    @property
    def dates(self) -> list[str]:
        return [(self.start + timedelta(days=n)).isoformat() for n in range((self.end - self.start).days + 1)]

    def dbt_vars(self) -> dict[str, str]:
        return {"backfill_from": self.start.isoformat(), "backfill_to": self.end.isoformat()}

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


def _parse_date(text: str, option: str) -> date:
    text = text.strip()
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise LakehouseError(f"{option} '{text}' is not a date; write YYYY-MM-DD, e.g. 2026-03-01") from None


def parse_layers(text: str) -> tuple[str, ...]:
    """``"silver,gold"`` -> ("silver", "gold"), in pipeline order; unknown names are an error."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(LAYERS))
    if unknown or not names:
        raise LakehouseError(f"--layers '{text}': give one or both of {', '.join(LAYERS)}, comma-separated")
    return tuple(layer for layer in LAYERS if layer in names)


def run_backfill(
    settings: Settings,
    date_range: DateRange,
    layers: tuple[str, ...] = LAYERS,
    *,
    echo: Echo = print,
    run_id: str | None = None,
) -> CycleReport:
    """Rebuild ``layers`` for ``date_range`` and gate them; returns the report (it never raises for a
    failed step: the report says what failed). The caller holds the cycle lock."""
    preflight(settings)
    report = CycleReport(run_id=run_id or ops.new_run_id(), started_at=datetime.now(UTC))
    in_bronze = bronze_dates(settings, date_range)
    echo(
        f"[{report.run_id}] backfill {date_range} ({', '.join(layers)}): bronze holds "
        f"{len(in_bronze)} of its {len(date_range.dates)} date(s)"
        + ("; the range will be emptied in silver and gold" if not in_bronze else "")
    )
    steps = [name for layer in layers for name in (layer, f"gate_{layer}")]
    runner = _BackfillSteps(settings, report, echo, date_range)
    runner.run_steps(steps)
    runner.send_alerts()
    record(
        settings,
        report,
        mode="backfill",
        backfill_from=date_range.start.isoformat(),
        backfill_to=date_range.end.isoformat(),
        layers=list(layers),
    )
    return report


class _BackfillSteps(CycleSteps):
    """The cycle's steps, with the gates scoped to the rebuilt dates that hold rows."""

    def __init__(self, settings: Settings, report: CycleReport, echo: Echo, date_range: DateRange) -> None:
        super().__init__(settings, report, echo, dbt_vars=date_range.dbt_vars())
        self.date_range = date_range

    def _gate_silver(self) -> StepResult:
        dates = self._built_dates(
            "select distinct event_date from silver.silver_readings union "
            "select distinct event_date from silver.silver_rejected_readings"
        )
        if not dates:
            return StepResult("gate_silver", "ok", detail="no silver rows in the range to validate")
        self.event_dates = dates
        return super()._gate_silver()

    def _gate_gold(self) -> StepResult:
        dates = self._built_dates(
            "select distinct cast(hour_at as date) from gold.gold_sensor_metrics_hourly union "
            "select distinct event_date from silver.silver_readings"
        )
        if not dates:
            return StepResult("gate_gold", "ok", detail="no gold rows in the range to validate")
        self.gold_partitions = dates
        return super()._gate_gold()

    def _built_dates(self, sql: str) -> list[str]:
        """The range's dates that hold rows now (the gates refuse a date without rows)."""
        if not self.settings.lake_root.is_local:
            return bronze_dates(self.settings, self.date_range)
        import duckdb

        wanted = set(self.date_range.dates)
        with duckdb.connect(str(self.settings.lake_root.warehouse), read_only=True) as con:
            present = {str(row[0]) for row in con.execute(sql).fetchall()}
        return sorted(present & wanted)


def bronze_dates(settings: Settings, date_range: DateRange) -> list[str]:
    """The range's event dates that have bronze Parquet files."""
    root = settings.lake_root.bronze_readings
    found = set()
    for uri in storage_for(root).list(root, suffix=".parquet"):
        for part in uri[len(root) :].split("/"):
            if part.startswith("event_date="):
                found.add(part.split("=", 1)[1])
    return sorted(found & set(date_range.dates))
