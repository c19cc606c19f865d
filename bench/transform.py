"""Time dbt over a large bronze: a full build of silver and gold, then an incremental build over 1 % new data.

Bronze is generated with DuckDB straight into ``<lake>/bronze/readings/event_date=D/`` (the Spark job's
layout and schema, without Spark, so that the bench times dbt only): ``--readings`` readings of
``--devices`` registered devices (one in four of each type) at their types' reporting intervals, with
noise, a daily cycle, 0.5 % retried duplicates, 0.1 % out-of-range values and 0.1 % unknown devices.
The increment is the next 1 % of readings (a new batch), a tenth of it arriving late for the previous
day, plus re-published duplicates. Both builds are `dbt build` (models and their tests) through
``orchestration.transform.transform``.

    .venv/bin/python bench/transform.py [--readings 10000000] [--devices 40] [--lake /tmp/bench-transform]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
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


def devices_table(devices: int) -> str:
    rows = ", ".join(
        f"('{d.device_id}', '{d.device_type}', '{d.site_id}', {INTERVAL_S[d.device_type]})" for d in fleet(devices)
    )
    return f"(values {rows}) as devices(device_id, device_type, site_id, interval_s)"


def readings_sql(devices: int, seconds_from: float, seconds_to: float, batch_id: int, ingested_at: datetime) -> str:
    """Readings of every device with event times in [START + from, START + to), as bronze rows."""
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
            timestamp '{START:%Y-%m-%d %H:%M:%S}' + to_microseconds(cast(s * 1000000 as bigint)) as event_time,
            cast(s / interval_s as bigint) + 1 as seq,
            {", ".join(metric_columns)},
            round(100 - s / 86400.0, 1) as battery_pct,
            '2.4.1' as firmware,
            cast(null as varchar) as _rescued_data,
            timestamp '{ingested_at:%Y-%m-%d %H:%M:%S}' as _ingested_at,
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

    from orchestration.transform import transform

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
            full_rows = write_batch(
                con, lake, readings_sql(args.devices, 0, full_seconds, 0, START + timedelta(seconds=full_seconds)), 0
            )
            generate_s = time.perf_counter() - began
        print(f"bronze: {full_rows:,} rows over {full_seconds / 86400:.1f} days in {generate_s:.1f} s ({lake})")

        began = time.perf_counter()
        full = transform(settings, vars={"reference_time": reference})
        full_s = time.perf_counter() - began
        if not full.success:
            print("full build failed:\n  " + "\n  ".join(full.failures), file=sys.stderr)
            return 1

        with duckdb.connect() as con:
            ingested = START + timedelta(seconds=full_seconds + increment_seconds)
            new = readings_sql(args.devices, full_seconds, full_seconds + increment_seconds * 0.9, 1, ingested)
            late_from = full_seconds - 86400 * 0.5
            late = readings_sql(args.devices, late_from, late_from + increment_seconds * 0.1, 1, ingested)
            late = f"select * from ({late}) where hash(device_id, seq) % 7 = 0"  # every 7th: late, not duplicate
            increment_rows = write_batch(con, lake, f"{new} union all {late}", 1)
        began = time.perf_counter()
        incremental = transform(settings, vars={"reference_time": reference})
        incremental_s = time.perf_counter() - began
        if not incremental.success:
            print("incremental build failed:\n  " + "\n  ".join(incremental.failures), file=sys.stderr)
            return 1

        def model_seconds(result) -> str:
            models = ", ".join(f"{m.name} {m.seconds:.1f}" for m in result.models if m.seconds >= 0.5)
            tests = sum(t.seconds for t in result.tests)
            return f"{models}; {len(result.tests)} data tests {tests:.1f} s"

        print(f"\nfull build:        {full_rows:>12,} bronze rows  {full_s:7.1f} s   ({model_seconds(full)})")
        print(
            f"incremental build: {increment_rows:>12,} new rows     {incremental_s:7.1f} s   "
            f"({incremental_s / full_s:.1%} of the full build; {model_seconds(incremental)})"
        )
        print("(wall-clock seconds of `dbt build` through transform(): models and data tests, 2 threads)")
        return 0
    finally:
        if not args.lake:
            shutil.rmtree(lake, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
