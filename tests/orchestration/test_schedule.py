"""Specification of scheduled cycles: when they run, and that they never overlap or leave a stale lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse import ops
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from orchestration.schedule import Cron, LockHeld, cycle_lock, lock_path

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def test_an_hourly_cron_fires_at_the_top_of_the_next_hour():
    cron = Cron.parse("0 * * * *")
    assert cron.next_after(datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)) == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def test_a_stepped_cron_on_weekdays_skips_the_weekend():
    cron = Cron.parse("*/15 9-17 * * 1-5")
    saturday_evening = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
    assert cron.next_after(saturday_evening) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["* * * *", "61 * * * *", "a * * * *", "*/0 * * * *"])
def test_a_bad_cron_expression_is_refused(text):
    with pytest.raises(LakehouseError, match="--cron"):
        Cron.parse(text)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from lakehouse.config import Settings
    from orchestration.schedule import cycle_lock
    with cycle_lock(Settings(lake=sys.argv[1]), wait=False):
        print("holding", flush=True)
        time.sleep(600)
    """
)


def test_the_lock_refuses_a_second_holder_and_is_released_when_its_holder_is_killed(tmp_path):
    settings = Settings(lake=str(tmp_path / "lake"))
    script = tmp_path / "hold_lock.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen([sys.executable, str(script), settings.lake], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(LockHeld, match=r"already running.*--wait"), cycle_lock(settings, wait=False):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with cycle_lock(settings, wait=False):
        assert lock_path(settings).exists()


@pytest.fixture
def landed_lake(tmp_path) -> Settings:
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig

    settings = Settings(lake=str(tmp_path / "lake"))
    produce(
        settings,
        FleetConfig(devices=8, readings=1500, dirty_rate=0.01, seed=5, start=datetime(2026, 11, 20, 6, tzinfo=UTC)),
    )
    return settings


def cycle_windows(settings: Settings) -> list[tuple[str, str]]:
    runs: dict[str, list[dict]] = {}
    for row in ops.read(settings.lake_root, "ops_runs"):
        runs.setdefault(row["run_id"], []).append(row)
    windows = []
    for steps in runs.values():
        ran = [s for s in steps if s["started_at"] and s["status"] != "skipped"]
        windows.append((min(s["started_at"] for s in ran), max(s["finished_at"] for s in ran)))
    return sorted(windows)


@pytest.mark.e2e
def test_two_schedulers_started_at_once_never_overlap_their_cycles(landed_lake):
    command = [LAKEHOUSE, "--lake", landed_lake.lake, "schedule", "--every", "1s", "--max-cycles", "1"]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    schedulers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [s.communicate(timeout=600)[0] for s in schedulers]

    assert [s.returncode for s in schedulers] == [0, 0], outputs
    windows = cycle_windows(landed_lake)
    assert len(windows) == 2
    for (_, first_end), (second_start, _) in zip(windows, windows[1:], strict=False):
        assert first_end <= second_start, f"cycles overlap: {windows}"


@pytest.mark.e2e
def test_kill_9_of_a_scheduler_mid_cycle_then_a_restart_completes_with_nothing_doubled_or_missing(landed_lake):
    import duckdb

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    scheduler = subprocess.Popen(
        [LAKEHOUSE, "--lake", landed_lake.lake, "schedule", "--every", "1h", "--max-cycles", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    seen = []
    for line in scheduler.stdout:
        seen.append(line)
        if "] silver ..." in line:  # dbt is writing the warehouse now
            time.sleep(1.0)
            os.killpg(scheduler.pid, signal.SIGKILL)
            break
    scheduler.wait(timeout=60)
    assert scheduler.returncode == -signal.SIGKILL, "".join(seen)

    rerun = subprocess.run(
        [LAKEHOUSE, "--lake", landed_lake.lake, "run"], capture_output=True, text=True, env=env, timeout=600
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    lake = landed_lake.lake_root
    with duckdb.connect(str(lake.warehouse), read_only=True) as con:
        bronze_files = f"{lake.bronze_readings}/*/*.parquet"
        bronze = con.execute(f"select count(*) from read_parquet('{bronze_files}')").fetchall()[0][0]
        accepted, distinct_keys = con.execute(
            "select count(*), count(distinct (device_id, event_at, seq)) from silver.silver_readings"
        ).fetchall()[0]
        rejected = con.execute("select count(*) from silver.silver_rejected_readings").fetchall()[0][0]
    assert accepted == distinct_keys
    assert accepted + rejected == bronze
    summary = [json.loads(line) for line in rerun.stdout.splitlines() if line.startswith("{")]
    assert summary == [] or all(s["status"] == "ok" for s in summary)
