"""The landing sink: Firehose-like files, published atomically under the UTC hour of their first line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingestion.produce import produce
from ingestion.simulator import FleetConfig
from ingestion.sinks import MIB, SinkError, SinkOptions

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_files_sit_under_the_utc_hour_of_their_first_line(clean_run, read_landing_files):
    files = read_landing_files(clean_run.settings.lake_root)
    hours = set()
    for uri, data in files.items():
        first = json.loads(data.split(b"\n", 1)[0])
        moment = datetime.fromisoformat(first["event_time"])
        folder = Path(uri).parent
        assert folder.parts[-4:] == (f"{moment:%Y}", f"{moment:%m}", f"{moment:%d}", f"{moment:%H}"), uri
        assert folder.parent.parent.parent.parent.parts[-2:] == ("landing", "readings")
        hours.add(moment.strftime("%Y%m%d%H"))
    assert len(hours) == 24  # one simulated day


def test_files_hold_lines_of_at_most_sixty_simulated_seconds_by_default(produce_run, read_landing_files, start):
    run = produce_run(FleetConfig(devices=20, duration=timedelta(hours=2), start=start, seed=6, dirty_rate=0.0))
    files = read_landing_files(run.settings.lake_root)
    for uri, data in files.items():
        lines = data.decode().split("\n")
        assert lines[-1] == "", uri  # every line ends with a newline
        times = [datetime.fromisoformat(json.loads(line)["event_time"]) for line in lines[:-1]]
        assert (times[-1] - times[0]).total_seconds() < 60, uri
    assert len(files) == 120  # about one per simulated minute: 20 devices send several lines a second
    assert sum(data.count(b"\n") for data in files.values()) == len(run.lines)


def test_files_are_cut_at_the_buffer_size(produce_run, read_landing_files, start):
    run = produce_run(
        FleetConfig(devices=1000, readings=30_000, start=start, seed=4, dirty_rate=0.0),
        options=SinkOptions(buffer_bytes=MIB // 4, buffer_seconds=600),
    )
    sizes = [len(data) for data in read_landing_files(run.settings.lake_root).values()]
    assert max(sizes) <= MIB // 4
    assert sum(size > 0.95 * MIB // 4 for size in sizes) >= len(sizes) - 1  # all full but the last


def test_file_names_carry_the_producer_seed_first_arrival_and_a_number(clean_run, read_landing_files):
    files = read_landing_files(clean_run.settings.lake_root)
    numbers = []
    for uri, data in files.items():
        first = json.loads(data.split(b"\n", 1)[0])["event_time"]  # e.g. 2025-03-01T22:00:01.263Z
        stamp = first.replace("-", "").replace(":", "").replace(".", "")
        name = Path(uri).name
        assert name.startswith(f"readings-sim-s11-{stamp}-") and name.endswith(".json"), (name, first)
        numbers.append(int(name.removesuffix(".json").rsplit("-", 1)[1]))
    assert sorted(numbers) == list(range(1, len(files) + 1))


def test_producing_the_same_run_again_rewrites_nothing(settings, read_landing_files, start):
    config = FleetConfig(devices=5, readings=3_000, start=start, seed=8)
    produce(settings, config)
    before = read_landing_files(settings.lake_root)
    mtimes = {uri: os.stat(uri).st_mtime_ns for uri in before}
    report = produce(settings, config)
    assert read_landing_files(settings.lake_root) == before
    assert {uri: os.stat(uri).st_mtime_ns for uri in before} == mtimes
    assert report.files == len(before)


def test_a_landing_file_with_other_bytes_is_never_overwritten(settings, read_landing_files, start):
    produce(settings, FleetConfig(devices=5, readings=3_000, start=start, seed=8, dirty_rate=0.0))
    before = read_landing_files(settings.lake_root)
    with pytest.raises(SinkError, match=r"readings-sim-s8-.*already exists with other content.*--producer"):
        produce(settings, FleetConfig(devices=5, readings=3_000, start=start, seed=8, dirty_rate=0.2))
    assert read_landing_files(settings.lake_root) == before


PRODUCER_WITH_A_FILE_SIZE_LIMIT = """
import resource, signal, sys
from datetime import datetime, timedelta
from lakehouse.config import Settings
from ingestion.produce import produce
from ingestion.simulator import FleetConfig
from ingestion.sinks import SinkOptions

# Files may grow to 64 KiB. Python ignores SIGXFSZ, so a bigger write fails with EFBIG ("fail");
# with the signal's default action the kernel kills the process in the middle of the write ("crash").
if sys.argv[3] == "crash":
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
settings = Settings.load(env={}, lake=sys.argv[1])
config = FleetConfig(devices=50, readings=20_000, start=datetime.fromisoformat(sys.argv[2]), seed=1,
                     producer="limited")
produce(settings, config, options=SinkOptions(buffer_bytes=1024 * 1024, buffer_seconds=3600))
"""


def _run_limited_producer(settings, start, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRODUCER_WITH_A_FILE_SIZE_LIMIT, settings.lake, start.isoformat(), mode],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
    )


def test_a_crash_while_writing_a_landing_file_leaves_no_partial_file_visible(settings, read_landing_files, start):
    produce(settings, FleetConfig(devices=5, readings=2_000, start=start, seed=8))  # published before
    published = read_landing_files(settings.lake_root)

    crash = _run_limited_producer(settings, start, "crash")

    assert crash.returncode == -signal.SIGXFSZ, crash.stderr.decode()[-2000:]
    landing = Path(settings.lake_root.landing_readings)
    partial = [p for p in landing.rglob(".readings-limited-*") if p.is_file()]
    assert partial and max(p.stat().st_size for p in partial) == 64 * 1024  # killed mid-write...
    assert read_landing_files(settings.lake_root) == published  # ...and no reader sees the half file
    spark_like = {str(p) for p in landing.glob("*/*/*/*/*.json") if not p.name.startswith((".", "_"))}
    assert spark_like == set(published)


def test_a_failed_landing_write_stops_the_run_and_leaves_no_partial_file_behind(settings, read_landing_files, start):
    failed = _run_limited_producer(settings, start, "fail")

    assert failed.returncode == 1
    assert "File too large" in failed.stderr.decode()
    # Writer threads may have published whole files before the failure; none may be partial or temporary.
    for content in read_landing_files(settings.lake_root).values():
        assert content.endswith(b"\n") and len(content) < 64 * 1024
    landing = Path(settings.lake_root.landing_readings)
    assert [p for p in landing.rglob(".*") if p.is_file()] == []  # the temporary file was removed too
