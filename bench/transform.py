"""Time dbt over a large bronze: a full build of silver and gold, then an incremental build over 1 % new data.

Bronze is generated with DuckDB straight into ``<lake>/bronze/readings/event_date=D/`` (the Spark job's
layout and schema, without Spark, so that the bench times dbt only): ``--readings`` readings of
``--devices`` registered devices (one in four of each type) at their types' reporting intervals, with
noise, a daily cycle, 0.5 % retried duplicates, 0.1 % out-of-range values and 0.1 % unknown devices,
streamed: each reading ingested by the micro-batch of the minute after its event, as the Spark job lands
a live stream (one ingest time for all ten million rows would make the incremental build look at all of
them again within the lookback: it re-reads the newest batch it has built, in case that batch was only
half visible last time). The increment is the next 1 % of readings (one new batch), a tenth of it
arriving late for the previous day, plus re-published duplicates.

Each build is two dbt invocations over the sensor models (seeds, staging, silver, gold; not the STEDI
models): ``dbt build`` without tests (the models, what "build silver and gold" means), then ``dbt test``
(their data tests). As in an orchestration cycle, the incremental build leaves out the seeds and views
(13 nodes, then 6): this process built them from the same project, vars and lake
(orchestration/build_cache.py); ``cd dbt_project && dbt build`` would rebuild them, about 0.3 s more.
Printed per build: the models' time (from the first node's start to the last one's end, as dbt reports
them, so dbt's own start-up and parsing are left out and shown apart), each model's time, the data
tests' time, and the load average of the machine (other work on the two cores slows everything down:
compare runs at similar loads).

    .venv/bin/python bench/transform.py [--readings 10000000] [--devices 40] [--lake /tmp/bench-transform]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lakehouse.config import Settings  # noqa: E402
from lakehouse.contract import METRICS  # noqa: E402
from lakehouse.registry import fleet  # noqa: E402

START = datetime(2026, 1, 1)
# Mid-range value and noise per (device type, metric), inside the valid ranges of metric_limits.csv.
SIGNAL = {
    ("environmental", "temperature_c"): (21.0, 0.15, 3.5),
    ("environmental", "humidity_pct"): (45.0, 0.8, 8.0),
    ("environmental", "pressure_hpa"): (1013.0, 0.15, 1.2),
    ("machine", "temperature_c"): (55.0, 0.4, 6.0),
    ("machine", "pressure_hpa"): (2500.0, 15.0, 150.0),
    ("machine", "vibration_mm_s"): (2.0, 0.12, 0.5),
    ("wearable", "accel_x_g"): (0.0, 0.5, 0.0),
    ("wearable", "accel_y_g"): (0.0, 0.5, 0.0),
    ("wearable", "accel_z_g"): (1.0, 0.5, 0.0),
    ("step_trainer", "distance_mm"): (1500.0, 250.0, 300.0),
}
INTERVAL_S = {"environmental": 30, "machine": 10, "wearable": 5, "step_trainer": 5}
# The sensor models and everything they are built from (the STEDI models have no data in this lake).
SELECTION = "+gold_device_health +gold_sensor_metrics_daily +gold_sensor_metrics_hourly +silver_rejected_readings"


@dataclass(frozen=True)
class Phase:
    """One dbt invocation: wall-clock seconds of the process call, and of its nodes from first start to last end."""

    wall_s: float
    nodes_s: float
    node_seconds: dict[str, float]
    failures: list[str]
    load: tuple[float, float, float]


def run_dbt(settings: Settings, command: str, reference: str) -> Phase:
    """``dbt build`` of the selection without its tests (command "models") or ``dbt test`` of it ("tests").

    Like a cycle of the orchestration (orchestration/build_cache.py), a build leaves out the seeds and
    views when this process already built them from the same project, vars and lake.
    """
    from dbt.cli.main import dbtRunner

    from orchestration.build_cache import BUILT_DEFINITIONS
    from orchestration.transform import dbt_args, dbt_vars

    vars = {"reference_time": reference}
    args = dbt_args(settings, command="build" if command == "models" else "test", select=SELECTION, vars=vars)
    planned = None
    if command == "models":
        planned = BUILT_DEFINITIONS.plan(settings, None, SELECTION, dbt_vars(settings, vars), full_refresh=False)
        args += ["--exclude-resource-type", "test", *planned.exclusions]
    began = time.perf_counter()
    result = dbtRunner().invoke(args)
    wall_s = time.perf_counter() - began
    if planned is not None:
        BUILT_DEFINITIONS.after_run(planned, settings, result.success)
    starts, ends, node_seconds, failures = [], [], {}, []
    for node_result in getattr(result.result, "results", None) or []:
        for timing in node_result.timing:
            if timing.started_at and timing.completed_at:
                starts.append(timing.started_at)
                ends.append(timing.completed_at)
        node_seconds[node_result.node.name] = float(node_result.execution_time or 0.0)
        if str(getattr(node_result.status, "value", node_result.status)) in ("error", "fail", "runtime error"):
            failures.append(f"{node_result.node.name}: {node_result.message}")
    if not result.success and not failures:
        failures.append(f"dbt {command} failed: {result.exception}")
    nodes_s = (max(ends) - min(starts)).total_seconds() if starts else 0.0
    return Phase(wall_s, nodes_s, node_seconds, failures, os.getloadavg())


def devices_table(devices: int) -> str:
    rows = ", ".join(
        f"('{d.device_id}', '{d.device_type}', '{d.site_id}', {INTERVAL_S[d.device_type]})" for d in fleet(devices)
    )
    return f"(values {rows}) as devices(device_id, device_type, site_id, interval_s)"


def readings_sql(
    devices: int, seconds_from: float, seconds_to: float, batch_id: int, ingested_at: datetime | None
) -> str:
    """Readings of every device with event times in [START + from, START + to), as bronze rows.

    ``ingested_at`` None: streamed, each reading ingested by the micro-batch of the minute after its event
    (as the Spark job lands a live stream); else every row ingested at that moment (one late batch).
    """
    event_time = f"timestamp '{START:%Y-%m-%d %H:%M:%S}' + to_microseconds(cast(s * 1000000 as bigint))"
    ingested_sql = (
        f"date_trunc('minute', {event_time}) + interval 1 minute"
        if ingested_at is None
        else f"timestamp '{ingested_at:%Y-%m-%d %H:%M:%S}'"
    )
    metric_columns = []
    for metric in METRICS:
        cases = " ".join(
            f"when '{device_type}' then {base} + {cycle} * sin(2 * pi() * s / 86400.0) + {noise} * "
            f"(random() + random() + random() - 1.5) * 2"
            for (device_type, m), (base, noise, cycle) in SIGNAL.items()
            if m == metric
        )
        metric_columns.append(f"round(case device_type {cases} end, 3) as {metric}")
    return f"""
        select
            device_id,
            case when random() < 0.001 then 'machine' else device_type end as device_type,
            site_id,
            {event_time} as event_time,
            cast(s / interval_s as bigint) + 1 as seq,
            {", ".join(metric_columns)},
            round(100 - s / 86400.0, 1) as battery_pct,
            '2.4.1' as firmware,
            cast(null as varchar) as _rescued_data,
            {ingested_sql} as _ingested_at,
            'landing/readings/bench-' || {batch_id} || '.json' as _source_file,
            cast({batch_id} as bigint) as _batch_id,
            cast(1 as integer) as _schema_version
        from {devices_table(devices)},
            range(
                cast(ceil({seconds_from} / interval_s) as bigint), cast(ceil({seconds_to} / interval_s) as bigint)
            ) as t(slot),
            lateral (select slot * interval_s + (hash(device_id, slot) % 100) / 100.0 as s)
    """


def write_batch(con, lake: Path, select_sql: str, batch_id: int) -> int:
    """Write rows (with retries, out-of-range values and unknown devices mixed in) as one bronze batch."""
    con.execute(f"create or replace temp table batch as {select_sql}")
    con.execute("insert into batch select * from batch using sample 0.5 percent (bernoulli, 7)")  # retries
    con.execute(
        "update batch set temperature_c = 999 where temperature_c is not null and hash(seq, device_id) % 1000 = 0"
    )
    con.execute("update batch set device_id = replace(device_id, '-00', '-09') where hash(device_id, seq) % 1000 = 1")
    con.execute(
        f"copy (select *, cast(event_time as date) as event_date from batch) to '{lake}/bronze/readings' "
        f"(format parquet, partition_by (event_date), append, filename_pattern 'part-b{batch_id:010d}-{{uuid}}')"
    )
    return con.execute("select count(*) from batch").fetchall()[0][0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--lake", help="lake folder (default: a temporary folder, removed afterwards)")
    args = parser.parse_args(argv)

    import duckdb

    lake = Path(args.lake) if args.lake else Path(tempfile.mkdtemp(prefix="bench-transform-"))
    shutil.rmtree(lake / "bronze", ignore_errors=True)
    (lake / "warehouse.duckdb").unlink(missing_ok=True)
    (lake / "bronze" / "readings").mkdir(parents=True, exist_ok=True)
    settings = Settings.load(lake=str(lake))
    rate = sum(1.0 / INTERVAL_S[d.device_type] for d in fleet(args.devices))
    full_seconds = args.readings / rate
    increment_seconds = full_seconds * 0.01
    end = START + timedelta(seconds=full_seconds + increment_seconds)
    reference = (end + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    try:
        with duckdb.connect() as con:
            began = time.perf_counter()
            full_rows = write_batch(con, lake, readings_sql(args.devices, 0, full_seconds, 0, ingested_at=None), 0)
            generate_s = time.perf_counter() - began
        print(f"bronze: {full_rows:,} rows over {full_seconds / 86400:.1f} days in {generate_s:.1f} s ({lake})")

        # dbt reads the lake root from the environment (profiles.yml), as orchestration.transform sets it.
        os.environ["LAKEHOUSE_LAKE"] = str(lake)
        full_models = run_dbt(settings, "models", reference)
        if full_models.failures:
            print("full build failed:\n  " + "\n  ".join(full_models.failures), file=sys.stderr)
            return 1
        full_tests = run_dbt(settings, "tests", reference)

        with duckdb.connect() as con:
            ingested = START + timedelta(seconds=full_seconds + increment_seconds)
            new = readings_sql(args.devices, full_seconds, full_seconds + increment_seconds * 0.9, 1, ingested)
            late_from = full_seconds - 86400 * 0.5
            late = readings_sql(args.devices, late_from, late_from + increment_seconds * 0.1, 1, ingested)
            late = f"select * from ({late}) where hash(device_id, seq) % 7 = 0"  # every 7th: late, not duplicate
            increment_rows = write_batch(con, lake, f"{new} union all {late}", 1)
        incremental_models = run_dbt(settings, "models", reference)
        if incremental_models.failures:
            print("incremental build failed:\n  " + "\n  ".join(incremental_models.failures), file=sys.stderr)
            return 1
        incremental_tests = run_dbt(settings, "tests", reference)

        def report(label: str, rows: str, models: Phase, tests: Phase, share: str = "") -> None:
            slowest = sorted(models.node_seconds.items(), key=lambda item: -item[1])
            per_model = ", ".join(f"{name} {seconds:.1f}" for name, seconds in slowest if seconds >= 0.5)
            print(f"{label:<18}{rows}  models {models.nodes_s:7.1f} s{share}")
            print(f"{'':<18}  ({len(models.node_seconds)} nodes; {per_model})")
            print(
                f"{'':<18}  data tests: {len(tests.node_seconds)} in {tests.nodes_s:.1f} s"
                + (f", {len(tests.failures)} failed" if tests.failures else "")
                + f"; dbt start-up and parsing: {models.wall_s - models.nodes_s:.1f} s + "
                f"{tests.wall_s - tests.nodes_s:.1f} s; load average {models.load[0]:.1f} / {tests.load[0]:.1f}"
            )

        print()
        report("full build:", f"{full_rows:>12,} bronze rows", full_models, full_tests)
        report(
            "incremental build:",
            f"{increment_rows:>12,} new rows   ",
            incremental_models,
            incremental_tests,
            f"   ({incremental_models.nodes_s / full_models.nodes_s:.1%} of the full build's models)",
        )
        print(
            f"(seconds from dbt's first node start to its last node end, 2 threads; load average (1 min) at the "
            f"end of the models / tests run, {os.cpu_count()} cores)"
        )
        return 0
    finally:
        if not args.lake:
            shutil.rmtree(lake, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
