"""``lakehouse produce``: a help that teaches, a report that says what was sent, errors that name the fix."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import pytest

from ingestion.dirty import DIRTY_KINDS
from ingestion.labels import FAULT_KINDS
from ingestion.produce import produce
from ingestion.simulator import FleetConfig
from lakehouse.cli import build_parser, main


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subparsers.choices[name]


@pytest.mark.parametrize("command", ["produce", "replay"])
def test_every_option_is_explained_with_its_default(command):
    for action in _subparser(command)._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 20, action.option_strings
            has_default = action.default not in (None, False, [], argparse.SUPPRESS)
            assert not has_default or "default" in action.help, action.option_strings


def test_produce_help_describes_the_fleet_and_shows_examples_and_every_kind(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["produce", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "Simulate a fleet of IoT sensors" in out and "examples:" in out
    assert "lakehouse produce --seed 7 --start 2025-01-01T00:00:00Z" in out
    for kind in (*DIRTY_KINDS, *FAULT_KINDS):
        assert kind in out


def test_lakehouse_produce_reports_counts_and_kinds_of_dirty_records_and_faults(settings, read_landing, capsys):
    exit_code = main(
        ["--lake", settings.lake, "produce", "--devices", "12", "--readings", "5000", "--seed", "5",
         "--start", "2025-03-01T00:00:00Z", "--dirty-rate", "0.05", "--fault-rate", "spike=1", "--quiet"]
    )  # fmt: skip
    out = capsys.readouterr().out

    assert exit_code == 0
    assert "produced 5,000 readings from 12 devices" in out
    assert "simulated time  2025-03-01T00:00:00+00:00 .. " in out
    for kind in DIRTY_KINDS:
        assert f"    {kind} " in out
    assert "    spike " in out and "per device-hour" in out
    assert "should be quarantined" in out
    assert "reproduce with  lakehouse produce --devices 12 --readings 5000 --seed 5 --start 2025-03-01T00:00:00Z" in out
    assert len(read_landing(settings.lake_root)) > 5000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault-rate", "meltdown=1"], "use KIND=RATE with KIND one of spike, stuck"),
        (["--dirty-kinds", "late,sloppy"], "unknown kind(s) ['sloppy']; choose from: malformed_json"),
        (["--duration", "soon"], "--duration 'soon' is not a duration; write a number and a unit, e.g. 10s, 15m, 1h"),
        (["--start", "tomorrow"], "'tomorrow' is not an ISO-8601 time"),
        (["--readings", "10", "--duration", "1h"], "not allowed with argument --readings"),
    ],
)
def test_a_bad_option_is_refused_with_the_fix(settings, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["--lake", settings.lake, "produce", *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_setting_the_simulator_refuses_exits_with_a_message_not_a_traceback(settings, capsys):
    exit_code = main(["--lake", settings.lake, "produce", "--devices", "5000"])
    assert exit_code == 2
    assert "registry holds devices 1..1000" in capsys.readouterr().err


def test_without_a_start_the_run_ends_about_now(settings):
    now = datetime(2025, 6, 1, 12, 30, 15, tzinfo=UTC)
    report = produce(settings, FleetConfig(devices=10, readings=3_000, seed=1), now=now)
    end = datetime.fromisoformat(report.end)
    assert now - timedelta(minutes=2) < end <= now


def test_a_rate_paces_the_run_in_wall_clock_time(settings):
    began = time.monotonic()
    report = produce(settings, FleetConfig(devices=4, readings=300, seed=1, start=datetime(2025, 1, 1)), rate=1000)
    assert time.monotonic() - began >= 0.25  # 300 readings at 1,000 per second
    assert report.readings == 300
