"""Specification of `lakehouse stream`: bronze every few seconds, dbt micro-cycles behind it, a clean stop.

The scenario test starts the real command in a subprocess (Spark, dbt on DuckDB, the GX gates), produces
readings into the landing zone while it runs, and stops it with SIGTERM.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from lakehouse import ops
from lakehouse.cli import main
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--interval", "5"], "--interval '5' is not a duration; write a number and a unit, e.g. 10s"),
        (["--dbt-every", "soon"], "--dbt-every 'soon' is not a duration"),
        (["--for", "0s"], "--for '0s' is not a duration"),
        (["--max-cycles", "0"], "--max-cycles 0 must be at least 1"),
    ],
)
def test_bad_stream_options_exit_2_before_anything_starts(tmp_path, capsys, arguments, message):
    assert main(["--lake", str(tmp_path / "lake"), "stream", *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()


class Output:
    """The stream's output lines, read on a thread so that waiting for a line can time out."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if predicate(line):
                return line
        raise AssertionError("the stream did not print the expected line; it printed:\n" + "\n".join(self.lines))

    def rest(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                return
            self.lines.append(line)


def produce(settings: Settings, seed: int, readings: int, **fleet) -> int:
    """Readings of a simulated fleet into the landing zone, ending now; returns the lines written."""
    from ingestion.produce import produce as run_produce
    from ingestion.simulator import FleetConfig

    config = FleetConfig(devices=6, readings=readings, seed=seed, producer=f"p{seed}", **fleet)
    return run_produce(settings, config, now=datetime.now(UTC) - timedelta(minutes=1)).lines


def covered_batches(line: str) -> set[int]:
    """The bronze batch ids a "micro-cycle for bronze batch(es) ..." line names."""
    ids = line.split("bronze batch(es) ", 1)[1].split(" (")[0]
    if ".." in ids:
        first, last = ids.split("..")
        return set(range(int(first), int(last) + 1))
    return {int(i) for i in ids.split(", ")}


def wait_until_landed(settings: Settings, lines: int, timeout_s: float) -> int:
    """Wait until the bronze manifests account for ``lines`` landing lines; returns the last batch id."""
    folder = Path(settings.lake_root.manifests("bronze_readings"))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        manifests = [json.loads(p.read_text()) for p in sorted(folder.glob("batch-*.json"))]
        if sum(m["lines"] for m in manifests) >= lines:
            return max(m["batch_id"] for m in manifests)
        time.sleep(0.5)
    raise AssertionError(f"bronze did not land {lines} lines within {timeout_s} s")


def wait_for_micro_cycle(output: Output, batch_id: int, timeout_s: float) -> str:
    """Wait for the micro-cycle that covers ``batch_id`` to end; returns its last line (ok or FAILED)."""
    line = output.wait_for(
        lambda line: "micro-cycle for bronze batch(es)" in line and batch_id in covered_batches(line), timeout_s
    )
    run_id = line.split("]")[0] + "]"
    ended = ("micro-cycle ok", "micro-cycle FAILED")
    return output.wait_for(lambda line: line.startswith(run_id) and any(e in line for e in ended), timeout_s)


@pytest.mark.e2e
def test_a_stream_lands_transforms_and_gates_what_arrives_and_stops_cleanly_on_sigterm(tmp_path):
    settings = Settings(lake=str(tmp_path / "lake"))
    lines = produce(settings, seed=1, readings=2000)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    stream = subprocess.Popen(
        [LAKEHOUSE, "--lake", settings.lake, "stream", "--interval", "2s", "--dbt-every", "2s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    output = Output(stream)
    try:
        first = wait_for_micro_cycle(output, wait_until_landed(settings, lines, timeout_s=420), timeout_s=420)
        assert "micro-cycle ok" in first

        # While it runs, the lake is the stream's: a cycle on it is refused at once.
        busy = subprocess.run(
            [LAKEHOUSE, "--lake", settings.lake, "run"], capture_output=True, text=True, env=env, timeout=120
        )
        assert busy.returncode == 2 and "already running" in busy.stderr

        # Half the lines of the next files are broken: the bronze gate fails that micro-cycle, the stream goes on.
        lines += produce(settings, seed=2, readings=400, dirty_rate=0.5, dirty_kinds={"malformed_json": 1.0})
        failed = wait_for_micro_cycle(output, wait_until_landed(settings, lines, timeout_s=300), timeout_s=300)
        assert "micro-cycle FAILED: step 'gate_bronze' failed" in failed

        lines += produce(settings, seed=3, readings=1000)
        last = wait_for_micro_cycle(output, wait_until_landed(settings, lines, timeout_s=300), timeout_s=300)
        assert "micro-cycle ok" in last

        stream.send_signal(signal.SIGTERM)
        stream.wait(timeout=180)
        output.rest(timeout_s=10)
        assert stream.returncode == 0, "\n".join(output.lines)
    finally:
        if stream.poll() is None:
            os.killpg(stream.pid, signal.SIGKILL)
            stream.wait(timeout=30)
    text = "\n".join(output.lines)
    assert "SIGTERM" in text and "stream: stopped after" in text

    # Nothing lost: every landing line is in bronze or quarantine, every bronze row in silver once.
    lake = settings.lake_root
    with duckdb.connect(str(lake.warehouse), read_only=True) as con:
        bronze = con.execute(f"select count(*) from read_parquet('{lake.bronze_readings}/*/*.parquet')").fetchone()[0]
        quarantined = con.execute(
            f"select count(*) from read_parquet('{lake.quarantine_readings}/*/*.parquet')"
        ).fetchone()[0]
        accepted, keys = con.execute(
            "select count(*), count(distinct (device_id, event_at, seq)) from silver.silver_readings"
        ).fetchone()
        rejected = con.execute("select count(*) from silver.silver_rejected_readings").fetchone()[0]
        hourly = con.execute("select sum(reading_count) from gold.gold_sensor_metrics_hourly").fetchone()[0]
    assert bronze + quarantined == lines
    assert accepted + rejected == bronze and accepted == keys
    assert hourly > 0

    # Each micro-cycle is in ops_runs as a stream run, with the bronze batches it covered.
    runs: dict[str, list[dict]] = {}
    for row in ops.read(lake, "ops_runs"):
        runs.setdefault(row["run_id"], []).append(row)
    assert runs and all(row["mode"] == "stream" for steps in runs.values() for row in steps)
    outcomes = {
        run_id: "failed" if any(s["status"] == "failed" for s in steps) else "ok" for run_id, steps in runs.items()
    }
    assert list(outcomes.values()).count("failed") >= 1
    assert list(outcomes.values()).count("ok") >= 2
    covered = sorted(b for steps in runs.values() for b in steps[0]["bronze_batch_ids"])
    manifests = sorted(int(p.stem.split("-")[1]) for p in Path(lake.manifests("bronze_readings")).glob("*.json"))
    assert covered == manifests
    assert json.loads(json.dumps(runs))  # records are plain JSON


def test_run_stream_outside_the_main_thread_is_refused(tmp_path):
    from orchestration.stream import StreamOptions, run_stream

    errors: list[Exception] = []

    def call() -> None:
        try:
            run_stream(Settings(lake=str(tmp_path / "lake")), StreamOptions())
        except LakehouseError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(timeout=30)
    assert errors and "main thread" in str(errors[0])
