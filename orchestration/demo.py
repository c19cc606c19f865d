"""``lakehouse demo``: simulate a fleet, run one cycle on it, and show what happened at each stage."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from lakehouse.config import Settings
from orchestration.cycle import CycleReport, Echo, StepResult, run_cycle


@dataclass(frozen=True)
class DemoOptions:
    readings: int = 100_000
    devices: int = 50
    dirty_rate: float = 0.01
    seed: int = 42
    start: datetime | None = None
    stedi_customers: int = 30  # the STEDI dataset's customers landed beside the fleet (0: none)


@dataclass
class DemoReport:
    produce: StepResult
    cycle: CycleReport
    produce_stedi: StepResult | None = None


def run_demo(settings: Settings, options: DemoOptions, echo: Echo = print) -> DemoReport:
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig
    from ingestion.sinks import MIB, SinkOptions

    echo(
        f"demo: simulating {options.readings:,} readings from {options.devices} devices into {settings.lake_root.root}"
    )
    began = time.monotonic()
    produced = produce(
        settings,
        FleetConfig(
            devices=options.devices,
            readings=options.readings,
            dirty_rate=options.dirty_rate,
            seed=options.seed,
            start=options.start,
        ),
        # Firehose's largest buffers (128 MiB or 900 s): the simulated clock runs hours ahead of the wall
        # clock, so 60 s buffers would cut one small file per simulated minute.
        options=SinkOptions(buffer_bytes=128 * MIB, buffer_seconds=900),
    )
    produce_step = StepResult(
        "produce",
        "ok",
        rows_in=produced.lines,
        rows_out=produced.lines,
        seconds=time.monotonic() - began,
        detail=f"{produced.files} landing file(s)",
    )
    stedi_step = _produce_stedi(settings, options, echo) if options.stedi_customers else None
    cycle = run_cycle(settings, echo=echo)
    return DemoReport(produce=produce_step, cycle=cycle, produce_stedi=stedi_step)


def _produce_stedi(settings: Settings, options: DemoOptions, echo: Echo) -> StepResult:
    """Land the STEDI dataset (customers, accelerometer, step trainer) for the trusted and curated zones."""
    from ingestion.stedi import StediConfig, produce_stedi

    echo(f"demo: landing a STEDI dataset of {options.stedi_customers} customers (consent-aware curation)")
    began = time.monotonic()
    report = produce_stedi(settings, StediConfig(customers=options.stedi_customers, seed=options.seed))
    lines = sum(source["lines"] for source in report.answers["landing"].values())
    return StepResult(
        "produce_stedi",
        "ok",
        rows_in=lines,
        rows_out=lines,
        seconds=time.monotonic() - began,
        detail=f"answers in {report.answers_uri}",
    )


def format_stage_table(report: DemoReport) -> str:
    header = f"{'stage':<15}{'status':<9}{'in':>11}{'out':>11}{'quarantined':>13}{'seconds':>9}{'records/s':>12}"
    lines = [header, "-" * len(header)]
    produced = [report.produce] + ([report.produce_stedi] if report.produce_stedi else [])
    for step in [*produced, *report.cycle.steps]:

        def num(value):
            return f"{value:,}" if value is not None else ""

        rate = step.rows_per_second
        lines.append(
            f"{step.step:<15}{step.status:<9}{num(step.rows_in):>11}{num(step.rows_out):>11}"
            f"{num(step.rows_rejected):>13}{step.seconds:>9.1f}{(f'{rate:,.0f}' if rate else ''):>12}"
        )
    return "\n".join(lines)


def next_steps(settings: Settings) -> str:
    lake = settings.lake_root
    lake_flag = "" if settings.lake == "./lake" else f" --lake {lake.root}"
    dbt_env = "" if settings.lake == "./lake" else f"LAKEHOUSE_LAKE={lake.root} "
    return f"""\
Look at the results (after `source .venv/bin/activate`):
  lakehouse{lake_flag} status                 # rows, partitions, freshness per layer, last run
  lakehouse{lake_flag} sql "select * from gold.gold_anomalies order by score desc limit 10"
  cd dbt_project && {dbt_env}dbt build    # analysts: plain dbt on the same warehouse
  cd dbt_project && {dbt_env}dbt docs generate && dbt docs serve
  lakehouse{lake_flag} sql "select * from curated.machine_learning_curated limit 10"   # consent-aware, no PII
  quarantined lines and their reasons:   {lake.quarantine_readings}/
"""
