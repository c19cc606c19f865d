"""Specification of a schedule's Spark session: one for the life of the process, and each cycle's line
says what its steps took and whether it found anything new (the fixed cost of a cycle)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestration.cycle import CycleReport, StepResult
from orchestration.schedule import ScheduleOptions, run_schedule


def test_every_cycle_of_a_schedule_gets_the_same_spark_session_and_an_empty_one_reports_its_fixed_cost(
    spark, lake_settings
):
    sessions, lines = [], []

    def cycle(settings, *, spark, **_options) -> CycleReport:
        sessions.append(spark())
        report = CycleReport(run_id=f"run-{len(sessions)}", started_at=datetime.now(UTC))
        report.bronze_batch_ids = [7] if len(sessions) == 1 else []
        report.steps = [StepResult("bronze", "ok", seconds=1.25), StepResult("silver", "ok", seconds=2.5)]
        return report

    reports = run_schedule(
        lake_settings,
        ScheduleOptions(every=timedelta(seconds=1), max_cycles=2),
        echo=lines.append,
        cycle=cycle,
    )

    assert len(reports) == 2
    assert sessions[0] is sessions[1]
    assert sessions[0].sparkContext._jsc is not None  # the session the tests share is still running
    done = [line for line in lines if line.startswith("schedule: cycle run-")]
    assert done == [
        "schedule: cycle run-1 ok in 3.8 s (bronze 1.2, silver 2.5) (the first starts Spark)",
        "schedule: cycle run-2 ok in 3.8 s (bronze 1.2, silver 2.5); no new landing files: the fixed cost of a cycle",
    ]
