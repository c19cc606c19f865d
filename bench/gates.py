"""The gates against the dbt builds they guard, in one run: a full layer, a 1 % increment, and a long
history of many event dates. Target: a gate costs at most 20 % of building its layer, the process's peak
memory stays under 1 GiB, and a gate's time follows the rows it checks, not the number of dates.

    .venv/bin/python bench/gates.py                              # 2,000,000 readings, then 365,000 over 4 years
    .venv/bin/python bench/gates.py --readings 10000000          # the issue's 10 M readings
    .venv/bin/python bench/gates.py --baseline ae9f727           # also time the gates of that commit, same lakes

1. **Full layer.** Bronze is generated as ``bench/transform.py`` generates it (its ``--readings`` over 40
   devices, streamed, with retries, out-of-range values and unknown devices), dbt builds silver and gold
   (``bench/transform.py``'s ``run_dbt``: models, no data tests), then each gate validates its whole layer.
2. **1 % increment.** One more bronze batch of 1 % of the readings (a tenth of it late for the previous
   day), the incremental dbt build, then the gates a cycle runs: bronze on the new batch, silver and gold
   on its event dates.
3. **Many dates.** A second lake: ``--history-readings`` readings spread over ``--history-days`` days (the
   NAB corpus is 365,558 readings over four years), built and gated whole.

Each gate is compared with the dbt models of its layer (silver: the staging and silver models; gold: the
gold models; bronze has no dbt build here, Spark lands it, so its gate is compared with the silver build
that reads it). Times are wall-clock seconds of ``run_gate`` in this process, GX already imported (about
10 s of CPU once per process, shown apart). ``--baseline REF`` runs the gates of another commit (the
pandas path before this one) on the same lakes in a child process, from a git worktree of REF, so both
are measured under the same load. The machine is shared: the load average is printed with each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import transform  # noqa: E402
from lakehouse.config import Settings  # noqa: E402
from lakehouse.contract import METRICS  # noqa: E402
from lakehouse.registry import fleet  # noqa: E402

TARGET_SHARE = 0.20
TARGET_PEAK_MIB = 1024


def history_sql(devices: int, readings: int, days: int) -> str:
    """``readings`` bronze rows of ``devices`` devices spread evenly over ``days`` days (a sparse, long
    history, like the NAB corpus), in ``bench/transform.py``'s bronze schema, ingested a minute after."""
    per_device = readings // devices
    step_s = days * 86400 / per_device
    metric_columns = []
    for metric in METRICS:
        cases = " ".join(
            f"when '{device_type}' then {base} + {cycle} * sin(i / 97.0) + {noise} * (random() - 0.5)"
            for (device_type, m), (base, noise, cycle) in transform.SIGNAL.items()
            if m == metric
        )
        metric_columns.append(f"round(case device_type {cases} end, 3) as {metric}")
    start = transform.START
    return f"""
        select device_id, device_type, site_id, event_time, i + 1 as seq, {", ".join(metric_columns)},
               round(100 - i * 50.0 / {per_device}, 1) as battery_pct, '2.4.1' as firmware,
               cast(null as varchar) as _rescued_data, date_trunc('minute', event_time) + interval 1 minute
               as _ingested_at, 'landing/readings/history.json' as _source_file, cast(0 as bigint) as _batch_id,
               cast(1 as integer) as _schema_version
        from (
            select devices.*, i,
                   timestamp '{start:%Y-%m-%d %H:%M:%S}' + to_microseconds(cast(i * {step_s} * 1e6 as bigint))
                   as event_time
            from {transform.devices_table(devices)}, range({per_device}) as r(i)
        )
    """


def write_history(lake: Path, devices: int, readings: int, days: int) -> int:
    import duckdb

    with duckdb.connect() as con:
        con.execute(f"create temp table batch as {history_sql(devices, readings, days)}")
        con.execute(
            f"copy (select *, cast(event_time as date) as event_date from batch) to '{lake}/bronze/readings' "
            f"(format parquet, partition_by (event_date), filename_pattern 'part-b0000000000-{{uuid}}')"
        )
        return con.execute("select count(*) from batch").fetchone()[0]


def write_manifest(lake: Path, batch_id: int) -> None:
    """The manifest the bronze job would write for a batch (the bronze gate reads it)."""
    import duckdb

    with duckdb.connect() as con:
        rows, dates = con.execute(
            f"select count(*), list(distinct cast(event_date as varchar) order by 1) from read_parquet("
            f"'{lake}/bronze/readings/*/part-b{batch_id:010d}-*.parquet', hive_partitioning = true)"
        ).fetchone()
    folder = lake / "_manifests" / "bronze_readings"
    folder.mkdir(parents=True, exist_ok=True)
    quarantined = rows // 100
    (folder / f"batch-{batch_id:010d}.json").write_text(
        json.dumps(
            {
                "batch_id": batch_id,
                "lines": rows + quarantined,
                "bronze_rows": rows,
                "quarantine_rows": quarantined,
                "event_dates": dates,
                "source_files": [],
                "quarantine_reasons": {},
            }
        )
    )


def layer_seconds(phase: transform.Phase) -> dict[str, float]:
    """The models' seconds per layer (staging and silver models build silver)."""
    silver = sum(s for n, s in phase.node_seconds.items() if n.startswith(("stg_", "silver_")))
    gold = sum(s for n, s in phase.node_seconds.items() if n.startswith("gold_"))
    return {"bronze": silver, "silver": silver, "gold": gold}


CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import great_expectations  # imported before the clock starts (about 10 s of CPU once per process)
from expectations.runner import run_gate
from lakehouse.config import Settings

began = time.perf_counter()
result = run_gate(Settings(lake=sys.argv[2]), sys.argv[3], run_id="bench-" + sys.argv[3], **json.loads(sys.argv[4]))
seconds = time.perf_counter() - began
# VmHWM, not ru_maxrss: Linux carries the parent's max RSS (dbt ran there) into a child's ru_maxrss.
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "rows": result.rows, "success": result.success, "peak_mib": peak_kib / 1024}))
"""


def gate_in_child(tree: Path, lake: Path, layer: str, scope: dict) -> dict | None:
    """One gate of the code in ``tree`` on ``lake``, in a process of its own, so its peak memory is its own:
    seconds (GX already imported), rows validated, success and the process's max RSS; None if it failed."""
    # A script file, not ``python -c``: importing GX under ``-c`` ends the process silently ("Skipping
    # doctests: No module named 'grpc'", exit 0).
    script = Path(tempfile.gettempdir()) / "bench_gates_child.py"
    script.write_text(CHILD)
    done = subprocess.run(
        [sys.executable, str(script), str(tree), str(lake), layer, json.dumps(scope)],
        capture_output=True,
        text=True,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        print(f"    gate {layer} of {tree} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=2_000_000, help="readings of the full layer (2,000,000)")
    parser.add_argument("--devices", type=int, default=40, help="devices of the full layer (40)")
    parser.add_argument("--history-readings", type=int, default=365_000, help="readings of the long history")
    parser.add_argument("--history-days", type=int, default=1460, help="days the long history spans (1460)")
    parser.add_argument("--baseline", metavar="REF", help="also time the gates of this git commit, same lakes")
    parser.add_argument("--baseline-layers", default="bronze,silver,gold", help="layers the baseline gates")
    parser.add_argument("--lake", type=Path, help="where to build the lakes (default: a temporary folder)")
    args = parser.parse_args(argv)

    root = args.lake or Path(tempfile.mkdtemp(prefix="bench-gates-"))
    worktree = None
    if args.baseline:
        worktree = Path(tempfile.mkdtemp(prefix="bench-gates-baseline-")) / "tree"
        add = ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.baseline]
        subprocess.run(add, check=True, capture_output=True)
    table: list[tuple[str, str, dict, float, dict | None]] = []
    try:
        cases = _full_and_increment(args, root / "full") + [("many dates", _history(args, root / "history"))]
        for case, (lake, builds, scopes) in cases:
            for layer in ("bronze", "silver", "gold"):
                ours = gate_in_child(REPO, lake, layer, scopes[layer]) or {
                    "seconds": float("nan"),
                    "rows": 0,
                    "success": False,
                    "peak_mib": float("nan"),
                }
                print(
                    f"  {case:<11} gate {layer:<6} {ours['rows']:>11,} rows {ours['seconds']:7.1f} s, "
                    f"{ours['peak_mib']:,.0f} MiB; its build {builds[layer]:.1f} s; load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                base = None
                if worktree and layer in args.baseline_layers.split(","):
                    base = gate_in_child(worktree, lake, layer, scopes[layer])
                    if base:
                        print(
                            f"  {case:<11} gate {layer:<6} baseline {args.baseline}: {base['seconds']:7.1f} s, "
                            f"{base['peak_mib']:,.0f} MiB; load {os.getloadavg()[0]:.1f}",
                            flush=True,
                        )
                table.append((case, layer, ours, builds[layer], base))
    finally:
        if worktree:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
        if not args.lake:
            shutil.rmtree(root, ignore_errors=True)
    print()
    header = f"{'case':<12}{'gate':<8}{'rows':>12}{'gate s':>9}{'build s':>9}{'share':>8}{'peak MiB':>10}"
    print(header + (f"{'baseline s':>12}{'base MiB':>10}" if worktree else ""))
    for case, layer, ours, build, base in table:
        share = ours["seconds"] / build if build else float("nan")
        line = f"{case:<12}{layer:<8}{ours['rows']:>12,}{ours['seconds']:>9.1f}{build:>9.1f}{share:>8.1%}"
        line += f"{ours['peak_mib']:>10,.0f}"
        if worktree:
            line += f"{base['seconds']:>12.1f}{base['peak_mib']:>10,.0f}" if base else f"{'-':>12}{'-':>10}"
        print(line)
    within = all(o["seconds"] <= TARGET_SHARE * b for _, _, o, b, _ in table if b)
    peak = max(o["peak_mib"] for _, _, o, _, _ in table)
    print(
        f"every gate within {TARGET_SHARE:.0%} of its build: {'yes' if within else 'no'}; "
        f"largest gate process: {peak:,.0f} MiB (target <= {TARGET_PEAK_MIB}); {os.cpu_count()} cores"
    )
    return 0 if all(o["success"] for _, _, o, _, _ in table) and peak <= TARGET_PEAK_MIB else 1


def _build(settings: Settings, lake: Path, reference: str) -> dict[str, float]:
    os.environ["LAKEHOUSE_LAKE"] = str(lake)  # dbt reads the lake root from the environment (profiles.yml)
    phase = transform.run_dbt(settings, "models", reference)
    if phase.failures:
        raise SystemExit("dbt build failed:\n  " + "\n  ".join(phase.failures))
    return layer_seconds(phase)


def _full_and_increment(args, lake: Path):
    import duckdb

    (lake / "bronze" / "readings").mkdir(parents=True, exist_ok=True)
    settings = Settings.load(lake=str(lake))
    rate = sum(1.0 / transform.INTERVAL_S[d.device_type] for d in fleet(args.devices))
    full_s = args.readings / rate
    increment_s = full_s * 0.01
    end = transform.START + timedelta(seconds=full_s + increment_s)
    reference = (end + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    with duckdb.connect() as con:
        rows = transform.write_batch(con, lake, transform.readings_sql(args.devices, 0, full_s, 0, ingested_at=None), 0)
    write_manifest(lake, 0)
    print(f"full layer: {rows:,} bronze rows over {full_s / 86400:.1f} days ({lake})")
    full = _build(settings, lake, reference)
    all_scope = {"bronze": {}, "silver": {}, "gold": {}}
    with duckdb.connect() as con:
        new = transform.readings_sql(args.devices, full_s, full_s + increment_s * 0.9, 1, end)
        late_from = full_s - 86400 * 0.5
        late = transform.readings_sql(args.devices, late_from, late_from + increment_s * 0.1, 1, end)
        late = f"select * from ({late}) where hash(device_id, seq) % 7 = 0"
        rows = transform.write_batch(con, lake, f"{new} union all {late}", 1)
    write_manifest(lake, 1)
    dates = json.loads((lake / "_manifests" / "bronze_readings" / "batch-0000000001.json").read_text())["event_dates"]
    print(f"1 % increment: {rows:,} bronze rows on {len(dates)} event date(s)")
    incremental = _build(settings, lake, reference)
    increment_scope = {"bronze": {"batch_ids": [1]}, "silver": {"partitions": dates}, "gold": {"partitions": dates}}
    # The full layer's gates run after the increment's build too, so both cases gate the same warehouse
    # file as it stands; the full figures compare with the full build.
    return [
        ("full layer", (lake, full, all_scope)),
        ("1 % incr.", (lake, incremental, increment_scope)),
    ]


def _history(args, lake: Path):
    (lake / "bronze" / "readings").mkdir(parents=True, exist_ok=True)
    settings = Settings.load(lake=str(lake))
    rows = write_history(lake, 4, args.history_readings, args.history_days)
    write_manifest(lake, 0)
    end = transform.START + timedelta(days=args.history_days)
    print(f"many dates: {rows:,} bronze rows over {args.history_days} days ({lake})")
    builds = _build(settings, lake, (end + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"))
    return lake, builds, {"bronze": {}, "silver": {}, "gold": {}}


if __name__ == "__main__":
    sys.exit(main())
