"""Gate 10 million silver readings and print the time and the process's peak memory (target: < 2 GiB).

    .venv/bin/python bench/gates.py                         # silver: 10,000,000 readings, 1,000 devices
    .venv/bin/python bench/gates.py --readings 1000000      # a quicker look
    .venv/bin/python bench/gates.py --layer bronze          # bronze: the demo's 100,000 readings

The layer is generated with DuckDB under bench/out/ in a child process (its memory is not counted): every
registered device reporting at its type's interval, values inside the alert limits; silver as the dbt
model lays it out in the warehouse, bronze as the Spark job writes it (Parquet per event date, one batch
manifest). Then the gate runs in this process over the whole layer, each event date in frames of at most
``--max-rows`` rows (GX validates pandas frames). The figure that matters is the peak resident memory of
this process, which includes importing GX and pandas.
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


def generate(lake: Path, layer: str, readings: int, devices: int) -> None:
    """Write silver.silver_readings (and an empty silver_rejected_readings), or bronze, with DuckDB."""
    import csv

    import duckdb

    from lakehouse.contract import METRICS, load_metric_limits
    from lakehouse.registry import fleet

    per_device = readings // devices
    intervals = {
        row["device_type"]: int(row["reporting_interval_s"])
        for row in csv.DictReader((REPO / "lakehouse" / "defaults" / "device_types.csv").open())
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
    readings_sql = f"""
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
    if layer == "bronze":
        _write_bronze(lake, readings_sql)
        return
    path = lake / "warehouse.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema silver")
        con.execute(f"create table silver.silver_readings as {readings_sql}")
        con.execute(
            "create table silver.silver_rejected_readings as select *, cast(null as varchar) as rejection_reason, "
            "cast(null as varchar) as rejected_metric from silver.silver_readings limit 0"
        )
        count = con.execute("select count(*) from silver.silver_readings").fetchone()[0]
        days = con.execute("select count(distinct event_date) from silver.silver_readings").fetchone()[0]
    finally:
        con.close()
    print(f"generated {count:,} silver readings from {devices:,} devices over {days} event date(s) in {path}")


def _write_bronze(lake: Path, readings_sql: str) -> None:
    """Bronze Parquet per event date (columns and types as the Spark job writes them) and one manifest."""
    import json

    import duckdb

    from lakehouse.contract import METRICS

    folder = lake / "bronze" / "readings"
    folder.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(
            f"""
            copy (
                select device_id, device_type, site_id, event_at as event_time, seq, {", ".join(METRICS)},
                       battery_pct, firmware, cast(null as varchar) as _rescued_data, ingested_at as _ingested_at,
                       source_file as _source_file, cast(0 as bigint) as _batch_id,
                       cast(1 as integer) as _schema_version, event_date
                from ({readings_sql})
            ) to '{folder}' (format parquet, partition_by (event_date))
            """
        )
        rows, dates = con.execute(
            f"select count(*), list(distinct cast(event_date as varchar) order by 1) from ({readings_sql})"
        ).fetchone()
    finally:
        con.close()
    manifests = lake / "_manifests" / "bronze_readings"
    manifests.mkdir(parents=True, exist_ok=True)
    quarantined = rows // 100  # 1% of landing lines, as the demo's dirty rate
    (manifests / "batch-0000000000.json").write_text(
        json.dumps(
            {
                "batch_id": 0,
                "started_at": "",
                "finished_at": "",
                "source_files": [],
                "lines": rows + quarantined,
                "bronze_rows": rows,
                "quarantine_rows": quarantined,
                "event_dates": dates,
                "quarantine_reasons": {},
            }
        )
    )
    print(f"generated {rows:,} bronze readings over {len(dates)} event date(s) in {folder}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", choices=("silver", "bronze"), default="silver", help="the layer to gate")
    parser.add_argument(
        "--readings", type=int, default=None, help="readings (default: silver 10,000,000, bronze 100,000)"
    )
    parser.add_argument("--devices", type=int, default=1000, help="devices of the registry (default 1000)")
    parser.add_argument("--lake", type=Path, default=DEFAULT_LAKE, help=f"where to build it (default {DEFAULT_LAKE})")
    parser.add_argument("--max-rows", type=int, default=None, help="rows per GX frame (default: the gate's own)")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the generated lake afterwards")
    args = parser.parse_args()
    if args.readings is None:
        args.readings = 10_000_000 if args.layer == "silver" else 100_000
    if args.layer == "bronze" and args.devices == parser.get_default("devices"):
        args.devices = 50  # the demo's fleet

    if args.generate_only:
        generate(args.lake, args.layer, args.readings, args.devices)
        return 0

    shutil.rmtree(args.lake, ignore_errors=True)
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--generate-only",
            "--layer",
            args.layer,
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
    result = run_gate(settings, args.layer, run_id=new_run_id(), max_rows_per_frame=max_rows)
    seconds = time.monotonic() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frames = len({o.partition for o in result.results if o.suite == f"{args.layer}__readings"})

    print(result.format_report().splitlines()[0])
    print(
        f"{args.layer} gate: {result.rows:,} readings, {frames} frame(s) of at most {max_rows:,} rows, "
        f"{len({o.expectation for o in result.results})} expectations"
    )
    print(f"time: {seconds:.1f} s ({result.rows / seconds:,.0f} readings/s)")
    print(f"peak memory (this process, max RSS): {peak_mib:,.0f} MiB (target < 2048 MiB)")
    if not args.keep:
        shutil.rmtree(args.lake, ignore_errors=True)
    return 0 if result.success and peak_mib < 2048 else 1


if __name__ == "__main__":
    sys.exit(main())
