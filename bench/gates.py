"""Gate 10 million silver readings and print the time and the process's peak memory (target: < 2 GiB).

    .venv/bin/python bench/gates.py                       # 10,000,000 readings from 1,000 devices
    .venv/bin/python bench/gates.py --readings 1000000    # a quicker look

Silver is generated with DuckDB straight into a warehouse under bench/out/ (a child process, so its
memory is not counted), as the dbt model lays it out: every registered device reporting at its type's
interval, values inside the alert limits. Then the silver gate runs in this process over the whole layer:
each event date in slices of at most ``--max-rows`` rows (GX validates pandas frames). The figure that
matters is the peak resident memory of this process, which includes importing GX and pandas.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_LAKE = REPO / "bench" / "out" / "gates-lake"


def generate(lake: Path, readings: int, devices: int) -> None:
    """Write silver.silver_readings (and an empty silver_rejected_readings) with DuckDB."""
    import csv

    import duckdb

    from lakehouse.contract import METRICS, load_metric_limits
    from lakehouse.registry import fleet

    per_device = readings // devices
    intervals = {
        row["device_type"]: int(row["reporting_interval_s"])
        for row in csv.DictReader((REPO / "dbt_project" / "seeds" / "device_types.csv").open())
    }
    limits = load_metric_limits()
    registry = ", ".join(
        f"('{d.device_id}', '{d.device_type}', '{d.site_id}', {intervals[d.device_type]}, {d.index})"
        for d in fleet(devices)
    )
    metric_columns = []
    for metric in METRICS:
        cases = []
        for (device_type, m), limit in limits.items():
            if m != metric:
                continue
            low = limit.alert_min if limit.alert_min is not None else limit.valid_min
            high = limit.alert_max if limit.alert_max is not None else limit.valid_max
            middle, swing = (low + high) / 2, (high - low) / 4  # a daily wave well inside the alert band
            cases.append(f"when device_type = '{device_type}' then round({middle} + {swing} * sin(i / 500.0 + n), 3)")
        metric_columns.append(f"case {' '.join(cases)} end as {metric}")
    lake.mkdir(parents=True, exist_ok=True)
    path = lake / "warehouse.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema silver")
        con.execute(
            f"""
            create table silver.silver_readings as
            with devices as (
                select * from (values {registry}) as r(device_id, device_type, site_id, interval_s, n)
            ),
            readings as (
                select d.*, i, timestamp '2026-03-01 00:00:00' + to_seconds(i * interval_s) as event_at
                from devices as d cross join range({per_device}) as r(i)
            )
            select device_id, device_type, site_id, event_at, cast(event_at as date) as event_date,
                   i + 1 as seq, {", ".join(metric_columns)},
                   round(100 - i * 50.0 / {per_device}, 1) as battery_pct, '2.4.1' as firmware,
                   event_at + interval 2 minute as ingested_at,
                   'landing/readings/2026/03/01/00/bench.json' as source_file, i // 10000 as batch_id
            from readings
            order by event_date, device_id, event_at
            """
        )
        con.execute(
            "create table silver.silver_rejected_readings as select *, cast(null as varchar) as rejection_reason, "
            "cast(null as varchar) as rejected_metric from silver.silver_readings limit 0"
        )
        count = con.execute("select count(*) from silver.silver_readings").fetchone()[0]
        days = con.execute("select count(distinct event_date) from silver.silver_readings").fetchone()[0]
    finally:
        con.close()
    print(f"generated {count:,} silver readings from {devices:,} devices over {days} event date(s) in {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=10_000_000, help="silver readings (default 10,000,000)")
    parser.add_argument("--devices", type=int, default=1000, help="devices of the registry (default 1000)")
    parser.add_argument("--lake", type=Path, default=DEFAULT_LAKE, help=f"where to build it (default {DEFAULT_LAKE})")
    parser.add_argument("--max-rows", type=int, default=None, help="rows per GX frame (default: the gate's own)")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the generated lake afterwards")
    args = parser.parse_args()

    if args.generate_only:
        generate(args.lake, args.readings, args.devices)
        return 0

    shutil.rmtree(args.lake, ignore_errors=True)
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--generate-only",
            "--readings",
            str(args.readings),
            "--devices",
            str(args.devices),
            "--lake",
            str(args.lake),
        ],
        check=True,
    )
    print(f"generation: {time.monotonic() - started:.1f} s (child process, not in the peak below)")

    from expectations.runner import MAX_ROWS_PER_FRAME, run_gate
    from lakehouse.config import Settings
    from lakehouse.ops import new_run_id

    settings = Settings(lake=str(args.lake))
    max_rows = args.max_rows or MAX_ROWS_PER_FRAME
    started = time.monotonic()
    result = run_gate(settings, "silver", run_id=new_run_id(), max_rows_per_frame=max_rows)
    seconds = time.monotonic() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frames = len({o.partition for o in result.results if o.suite == "silver__readings"})

    print(result.format_report().splitlines()[0])
    print(
        f"silver gate: {result.rows:,} readings, {frames} frame(s) of at most {max_rows:,} rows, "
        f"{len({o.expectation for o in result.results})} expectations"
    )
    print(f"time: {seconds:.1f} s ({result.rows / seconds:,.0f} readings/s)")
    print(f"peak memory (this process, max RSS): {peak_mib:,.0f} MiB (target < 2048 MiB)")
    if not args.keep:
        shutil.rmtree(args.lake, ignore_errors=True)
    return 0 if result.success and peak_mib < 2048 else 1


if __name__ == "__main__":
    sys.exit(main())
