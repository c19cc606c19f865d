"""The dashboard never blocks the pipeline: three cycles run in this process while ``lakehouse dashboard``
serves the same lake from its own process and a thread keeps loading its pages in Chromium (the session
fixture ``cycles_while_serving`` builds the demo lake that way). DuckDB allows one writer, and a
read-only connection elsewhere makes dbt's write fail; the dashboard reads a private copy instead."""

from __future__ import annotations

from lakehouse import ops


def test_three_cycles_succeed_while_the_dashboard_is_read(cycles_while_serving):
    reports = cycles_while_serving.reports
    assert [(r.success, r.failure) for r in reports] == [(True, None)] * 3
    for report in reports:
        assert {s.step: s.status for s in report.steps} == {
            "bronze": "ok",
            "gate_bronze": "ok",
            "silver": "ok",
            "gate_silver": "ok",
            "gold": "ok",
            "gate_gold": "ok",
        }


def test_the_dashboard_kept_answering_during_the_cycles_and_showed_the_previous_copy_while_dbt_wrote(
    cycles_while_serving,
):
    poller = cycles_while_serving.poller
    assert poller.failures == []
    assert poller.loads >= 8, "the pages were loaded again and again while the cycles ran"
    assert any("dbt is writing the warehouse" in status for status in poller.statuses), (
        "no page load fell inside a dbt build, so this run did not show that the two can overlap"
    )
    assert any(status.startswith("Data as of the warehouse copy taken") for status in poller.statuses)


def test_after_the_cycles_the_dashboard_shows_the_last_run_and_what_it_built(cycles_while_serving, page, demo_sql):
    settings = cycles_while_serving.settings
    last_run = cycles_while_serving.reports[-1].run_id
    ((silver_rows,),) = demo_sql("select count(*) from silver.silver_readings")

    page.open("quality")

    runs = page.table("table-runs")
    assert runs[1][0] == last_run, "the newest run is listed first"
    assert {row[0] for row in runs[1:]} == {r["run_id"] for r in ops.read(settings.lake_root, "ops_runs")}
    freshness = {row[1]: row for row in page.table("table-freshness")[1:]}
    assert freshness["silver.silver_readings"][2] == f"{silver_rows:,}"
