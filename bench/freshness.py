"""Freshness of ``lakehouse stream``: seconds from a producer's send to visibility in silver and in gold.

    .venv/bin/python bench/freshness.py                                   # 4 minutes at 2,000 readings/s
    .venv/bin/python bench/freshness.py --minutes 3 --rate 1000 --interval 5s --dbt-every 10s   # other settings
    .venv/bin/python bench/freshness.py --sink mqtt --rate 1000           # publish-to-gold through MQTT

``--sink mqtt``: a local Mosquitto (Debian's ``mosquitto``) under ``bench/out/``; the producer publishes
each reading as a QoS 1 message (``produce --sink mqtt``) and the stream runs the MQTT bridge beside bronze
(``lakehouse stream --mqtt``), so the send time is the publish time and the latency is publish-to-gold.

What runs: ``lakehouse stream`` as a subprocess on a fresh lake under ``bench/out/`` (git-ignored), and in
this process a producer that sends simulated readings (1,000 devices, 1 % dirty records) at a steady
wall-clock rate through the real landing sink. The sink cuts a file about every ``--buffer-seconds`` of
wall-clock time (as Firehose's buffer would), and the producer notes the wall-clock send time of every
``--sample-every``-th line.

Warm-up is excluded: the JVM start, the first micro-cycle (seed loads, first dbt parse, GX import) run on
a small warm-up set before the measured producer starts.

Visibility, without ever opening the warehouse while dbt writes it: a reading is visible in silver when
the silver step of a micro-cycle that covered its bronze batch (or a later one: silver reads every
published batch) committed, and in gold when that micro-cycle's gold step committed. The micro-cycles
come from ``ops_runs`` (step ``finished_at``, ``bronze_batch_ids``), a reading's batch from bronze Parquet
(``_batch_id`` of its key). At the end the stream is stopped with SIGTERM and the warehouse opened
read-only to confirm that every sampled reading is in ``silver.silver_readings`` and that its device-hour
in ``gold.gold_sensor_metrics_hourly`` has aggregated it (``last_ingested_at`` at or after its ingest).

Printed: the settings, p50 / p95 / max send->silver and send->gold, where the time goes (send -> bronze
published -> micro-cycle start -> silver committed -> gold committed), the micro-cycles' step times,
and the load average (the machine is shared: compare runs at similar load).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np

from ingestion.produce import produce
from ingestion.simulator import FleetConfig, simulated_length
from ingestion.sinks import SinkOptions, SinkStats, make_sink
from lakehouse import ops
from lakehouse.config import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "bench" / "out"
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


@dataclass
class SampledSink:
    """The landing sink, noting the wall-clock send time of every ``every``-th line (its key and time)."""

    inner: object
    every: int
    sent: dict[tuple[str, str, int], float] = field(default_factory=dict)
    lines: int = 0

    @property
    def stats(self) -> SinkStats:
        return self.inner.stats

    def send(self, lines: Sequence[str], arrival_ms: np.ndarray, keys: Sequence[str], sizes: np.ndarray) -> None:
        now = time.time()
        first = (-self.lines) % self.every
        for line in lines[first :: self.every]:
            try:
                record = json.loads(line)
                key = (record["device_id"], record["event_time"], int(record["seq"]))
            except (ValueError, KeyError, TypeError):
                continue  # a dirty line: quarantined, never visible
            self.sent[key] = now
        self.lines += len(lines)
        self.inner.send(lines, arrival_ms, keys, sizes)

    def close(self) -> SinkStats:
        return self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


def produce_steadily(settings: Settings, args, seconds: float, seed: int, every: int) -> tuple[SampledSink, object]:
    """Send ``rate * seconds`` readings at ``rate`` per second, ending (in simulated time) about now."""
    config = FleetConfig(devices=args.devices, readings=int(args.rate * seconds), seed=seed, producer=f"fresh{seed}")
    speedup = simulated_length(config).total_seconds() / seconds  # simulated seconds per wall-clock second
    options = SinkOptions(buffer_seconds=max(0.001, args.buffer_seconds * speedup), buffer_bytes=64 * 1024 * 1024)
    sink = SampledSink(
        make_sink(args.sink, settings.lake_root, config.producer + f"-s{seed}", options, settings), every
    )
    report = produce(settings, config, sink=sink, rate=args.rate, now=datetime.now(UTC) - timedelta(minutes=2))
    return sink, report


def stream_runs(settings: Settings) -> list[dict]:
    """The stream's micro-cycles from ops_runs: run id, covered batches, silver and gold commit times."""
    runs: dict[str, dict] = {}
    for row in ops.read(settings.lake_root, "ops_runs"):
        if row.get("mode") != "stream":
            continue
        run = runs.setdefault(row["run_id"], {"run_id": row["run_id"], "batches": row.get("bronze_batch_ids") or []})
        run["started_at"] = min(run.get("started_at") or row["cycle_started_at"], row["cycle_started_at"])
        if row["status"] == "ok" and row["step"] in ("silver", "gold"):
            run[row["step"]] = datetime.fromisoformat(row["finished_at"]).timestamp()
        run.setdefault("steps", {})[row["step"]] = (row["status"], row["seconds"])
    return sorted(runs.values(), key=lambda r: r["started_at"])


def wait_for(predicate, timeout_s: float, what: str, stream: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if stream.poll() is not None:
            raise SystemExit(f"the stream ended (exit {stream.returncode}) while waiting for {what}")
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=4.0, help="measured producing time (default 4)")
    parser.add_argument("--rate", type=float, default=2000.0, help="readings per wall-clock second (default 2000)")
    parser.add_argument("--devices", type=int, default=1000, help="simulated devices (default 1000)")
    parser.add_argument("--interval", default="2s", help="lakehouse stream --interval (default 2s)")
    parser.add_argument("--dbt-every", default="4s", help="lakehouse stream --dbt-every (default 4s)")
    parser.add_argument("--buffer-seconds", type=float, default=1.0, help="landing file cut, wall-clock s (1)")
    parser.add_argument("--sample-every", type=int, default=500, help="note every Nth line's send time (500)")
    parser.add_argument("--drain-timeout", type=float, default=300, help="max wait for the last readings (300 s)")
    parser.add_argument("--keep", action="store_true", help="keep the lake under bench/out/ afterwards")
    parser.add_argument(
        "--sink",
        choices=("landing", "mqtt"),
        default="landing",
        help="landing: files straight into the lake (default); mqtt: QoS 1 messages to a local Mosquitto, "
        "bridged by the stream (publish-to-gold)",
    )
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    lake = OUT / f"freshness-{os.getpid()}"
    shutil.rmtree(lake, ignore_errors=True)
    settings = Settings.load(env={}, cwd=OUT, lake=str(lake))
    command = [LAKEHOUSE, "--lake", str(lake), "stream", "--interval", args.interval, "--dbt-every", args.dbt_every]
    broker = None
    if args.sink == "mqtt":
        from ingestion.mosquitto import Mosquitto

        broker = Mosquitto(OUT / f"freshness-{os.getpid()}-mosquitto").start()
        settings = settings.with_overrides(mqtt_broker=broker.address)
        command += ["--mqtt", "--mqtt-broker", broker.address]
    log = (OUT / f"freshness-{os.getpid()}.log").open("w")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    stream = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    try:
        print(f"stream: {' '.join(command[1:])} (log {log.name})", flush=True)
        print("warm-up: JVM start and a first micro-cycle on 10 s of readings ...", flush=True)
        warm_started = time.monotonic()
        produce_steadily(settings, args, 10.0, seed=1, every=10**9)
        wait_for(lambda: any("gold" in r for r in stream_runs(settings)), 900, "the warm-up micro-cycle", stream)
        print(f"warm-up done in {time.monotonic() - warm_started:.0f} s", flush=True)

        load_before = os.getloadavg()
        print(f"measuring: {args.rate:,.0f} readings/s for {args.minutes:g} min ...", flush=True)
        sink, report = produce_steadily(settings, args, args.minutes * 60, seed=2, every=args.sample_every)
        produced_at = time.time()
        print(
            f"produced {report.readings:,} readings ({report.lines:,} lines, {report.files:,} files) in "
            f"{report.seconds:.0f} s: {report.readings / report.seconds:,.0f} readings/s; {len(sink.sent)} sampled"
        )

        batches = batch_of_samples(settings, sink.sent, produced_at, args.drain_timeout, stream)
        last_batch = max(batch for batch, _ in batches.values())
        wait_for(
            lambda: any(r.get("gold") and max(r["batches"], default=-1) >= last_batch for r in stream_runs(settings)),
            args.drain_timeout,
            "the last micro-cycle",
            stream,
        )
        load_after = os.getloadavg()
    finally:
        if stream.poll() is None:
            stream.send_signal(signal.SIGTERM)
            try:
                stream.wait(timeout=300)
            except subprocess.TimeoutExpired:
                stream.kill()
                stream.wait()
        log.close()
        if broker is not None:
            broker.kill()

    runs = stream_runs(settings)
    rows = measure(settings, sink.sent, batches, runs)
    verified = verify(settings, sink.sent)
    print_report(args, rows, runs, verified, stream.returncode, load_before, load_after)
    if not args.keep:
        shutil.rmtree(lake, ignore_errors=True)
    return 0


def batch_of_samples(settings, sent, produced_at, timeout_s, stream) -> dict[tuple, tuple[int, float]]:
    """Wait until every sampled reading is in bronze; its (batch id, manifest finished_at) by key."""
    glob = f"{settings.lake_root.bronze_readings}/*/*.parquet"
    keys = list(sent)
    found: dict[tuple, int] = {}

    def landed() -> bool:
        with duckdb.connect() as con:
            con.execute("create temp table wanted (device_id varchar, event_time varchar, seq bigint)")
            con.executemany("insert into wanted values (?, ?, ?)", keys)
            rows = con.execute(
                f"""select w.device_id, w.event_time, w.seq, min(b._batch_id)
                    from wanted w join read_parquet('{glob}') b
                      on b.device_id = w.device_id and b.seq = w.seq
                     and b.event_time = cast(replace(w.event_time, 'Z', '') as timestamp)
                    group by all"""
            ).fetchall()
        found.update({(d, t, s): batch for d, t, s, batch in rows})
        return len(found) >= len(keys) or time.time() - produced_at > 60

    wait_for(landed, timeout_s, "the sampled readings in bronze", stream)
    manifests = {}
    for path in Path(settings.lake_root.manifests("bronze_readings")).glob("batch-*.json"):
        manifest = json.loads(path.read_text())
        manifests[manifest["batch_id"]] = datetime.fromisoformat(manifest["finished_at"]).timestamp()
    return {key: (batch, manifests.get(batch, float("nan"))) for key, batch in found.items()}


def measure(settings, sent, batches, runs) -> list[dict]:
    """Per sampled reading: send time, bronze publish, micro-cycle start, silver and gold commit."""
    rows = []
    for key, send in sent.items():
        if key not in batches:
            continue
        batch, published = batches[key]
        covering = [r for r in runs if max(r["batches"], default=-1) >= batch]
        silver = min((r["silver"] for r in covering if r.get("silver")), default=None)
        gold = min((r["gold"] for r in covering if r.get("gold")), default=None)
        started = min((datetime.fromisoformat(r["started_at"]).timestamp() for r in covering), default=None)
        rows.append(
            {"key": key, "send": send, "published": published, "started": started, "silver": silver, "gold": gold}
        )
    return rows


def verify(settings, sent) -> dict[str, int]:
    """After the stream stopped: how many sampled readings silver accepted and gold aggregated."""
    glob = f"{settings.lake_root.bronze_readings}/*/*.parquet"
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        con.execute("create temp table wanted (device_id varchar, event_time varchar, seq bigint)")
        con.executemany("insert into wanted values (?, ?, ?)", list(sent))
        in_silver, in_gold = con.execute(
            """with readings as (
                    select w.device_id, cast(replace(w.event_time, 'Z', '') as timestamp) as event_at, w.seq,
                           s.ingested_at
                    from wanted w join silver.silver_readings s
                      on s.device_id = w.device_id and s.seq = w.seq
                     and s.event_at = cast(replace(w.event_time, 'Z', '') as timestamp))
                select count(*),
                       count(*) filter (where exists (
                           select 1 from gold.gold_sensor_metrics_hourly g
                           where g.device_id = readings.device_id
                             and g.hour_at = date_trunc('hour', readings.event_at)
                             and g.last_ingested_at >= readings.ingested_at))
                from readings"""
        ).fetchone()
        in_bronze = con.execute(
            f"""select count(*) from wanted w join read_parquet('{glob}') b
                on b.device_id = w.device_id and b.seq = w.seq
               and b.event_time = cast(replace(w.event_time, 'Z', '') as timestamp)"""
        ).fetchone()[0]
    return {"sampled": len(sent), "in_bronze": in_bronze, "in_silver": in_silver, "in_gold": in_gold}


def print_report(args, rows, runs, verified, exit_code, load_before, load_after) -> None:
    to_silver = [r["silver"] - r["send"] for r in rows if r["silver"]]
    to_gold = [r["gold"] - r["send"] for r in rows if r["gold"]]
    print()
    print(
        f"settings: --sink {args.sink}, --rate {args.rate:,.0f}/s, {args.devices} devices, --interval {args.interval}, "
        f"--dbt-every {args.dbt_every}, landing files every {args.buffer_seconds:g} s, "
        f"{args.minutes:g} min measured"
    )
    print(
        f"sampled readings: {verified['sampled']} (in bronze {verified['in_bronze']}, accepted in silver "
        f"{verified['in_silver']}, aggregated in gold {verified['in_gold']}); stream exit code {exit_code}"
    )
    print(f"{'seconds from send to':<28}{'p50':>8}{'p95':>8}{'max':>8}{'readings':>10}")
    for name, values in (("silver (silver_readings)", to_silver), ("gold (metrics_hourly)", to_gold)):
        print(
            f"{name:<28}{percentile(values, 0.5):>8.1f}{percentile(values, 0.95):>8.1f}"
            f"{max(values, default=float('nan')):>8.1f}{len(values):>10}"
        )
    stages = [
        ("send -> bronze published", "send", "published"),
        ("bronze -> micro-cycle start", "published", "started"),
        ("micro-cycle start -> silver", "started", "silver"),
        ("silver -> gold", "silver", "gold"),
    ]
    print("where the time goes (p50 / p95 s):")
    for name, a, b in stages:
        values = [r[b] - r[a] for r in rows if r[a] and r[b]]
        print(f"  {name:<30}{percentile(values, 0.5):>7.1f}{percentile(values, 0.95):>7.1f}")
    measured = [r for r in runs if r.get("gold")][1:]  # the warm-up cycle left out
    print(
        f"micro-cycles: {len(runs)} ({sum(1 for r in runs if not r.get('gold'))} without gold); "
        "step seconds, median over the measured ones:"
    )
    for step in ("gate_bronze", "silver", "gate_silver", "gold", "gate_gold"):
        seconds = [r["steps"][step][1] for r in measured if step in r["steps"]]
        if seconds:
            print(f"  {step:<14}{statistics.median(seconds):>7.1f}")
    print(f"load average before / after: {load_before[0]:.1f} / {load_after[0]:.1f} ({time.strftime('%H:%M')})")


if __name__ == "__main__":
    sys.exit(main())
