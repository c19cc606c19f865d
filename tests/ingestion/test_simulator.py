"""The fleet simulator: deterministic, one reading per reporting interval, signals that look real."""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingestion.simulator import FleetConfig, Simulation
from lakehouse.contract import (
    DEVICE_TYPES,
    FIELDS,
    format_event_time,
    is_valid_device_id,
    load_metric_limits,
)
from lakehouse.registry import fleet

SEEDS = Path(__file__).resolve().parents[2] / "lakehouse" / "defaults"  # the default catalogue


def _relative(files: dict[str, bytes], lake_root: str) -> dict[str, bytes]:
    return {uri[len(lake_root) :]: data for uri, data in files.items()}


def test_same_seed_and_start_give_byte_identical_files_and_labels(produce_run, read_landing_files, start):
    config = FleetConfig(devices=30, readings=20_000, start=start, seed=42, dirty_rate=0.05)
    first, second = produce_run(config), produce_run(config)

    first_files = _relative(read_landing_files(first.settings.lake_root), first.settings.lake_root.root)
    second_files = _relative(read_landing_files(second.settings.lake_root), second.settings.lake_root.root)
    assert len(first_files) > 10
    assert first_files == second_files
    for kind in ("fault", "dirty"):
        assert Path(first.report.labels[kind]).read_bytes() == Path(second.report.labels[kind]).read_bytes()
    assert first.faults and first.dirty


def test_another_seed_gives_other_readings(produce_run, start):
    one = produce_run(FleetConfig(devices=8, readings=2_000, start=start, seed=1))
    two = produce_run(FleetConfig(devices=8, readings=2_000, start=start, seed=2))
    assert len(one.lines) >= 2_000 and len(two.lines) >= 2_000
    assert set(one.lines) & set(two.lines) <= {"", " ", "   "}  # only blank dirty lines can be the same


def test_each_device_type_sends_exactly_its_metrics_plus_battery_and_firmware(clean_run):
    registry = {d.device_id: d for d in fleet(8)}
    seen_types = set()
    for reading in clean_run.readings:
        device = registry[reading["device_id"]]
        metrics = DEVICE_TYPES[device.device_type]
        expected = [f.name for f in FIELDS if f.required or f.name in metrics or f.name in ("battery_pct", "firmware")]
        assert list(reading) == expected, reading
        assert (reading["device_type"], reading["site_id"]) == (device.device_type, device.site_id)
        assert all(isinstance(reading[m], float) for m in (*metrics, "battery_pct"))
        seen_types.add(device.device_type)
    assert seen_types == set(DEVICE_TYPES)
    assert len(clean_run.readings) == len(clean_run.lines)


def test_seq_increases_by_one_per_device_in_arrival_order(clean_run):
    last_seq: dict[str, int] = {}
    for reading in clean_run.readings:
        device_id = reading["device_id"]
        assert reading["seq"] == last_seq.get(device_id, 0) + 1, reading
        last_seq[device_id] = reading["seq"]
    assert len(last_seq) == 8


def test_devices_report_at_the_interval_of_the_device_types_seed(clean_run):
    with (SEEDS / "device_types.csv").open(newline="") as handle:
        interval = {row["device_type"]: float(row["reporting_interval_s"]) for row in csv.DictReader(handle)}
    times: dict[str, list[datetime]] = defaultdict(list)
    types = {}
    for reading in clean_run.readings:
        times[reading["device_id"]].append(datetime.fromisoformat(reading["event_time"]))
        types[reading["device_id"]] = reading["device_type"]
    for device_id, moments in times.items():
        gaps = [(b - a).total_seconds() for a, b in zip(moments, moments[1:], strict=False)]
        expected = interval[types[device_id]]
        assert statistics.median(gaps) == pytest.approx(expected, rel=0.05), device_id
        assert min(gaps) > 0.9 * expected and max(gaps) < 1.1 * expected, device_id


def test_clean_values_stay_inside_the_valid_range_and_the_alert_limits(clean_run):
    limits = load_metric_limits()
    for reading in clean_run.readings:
        for metric in DEVICE_TYPES[reading["device_type"]]:
            limit = limits[(reading["device_type"], metric)]
            value = reading[metric]
            assert limit.valid_min <= value <= limit.valid_max, (metric, reading)
            assert limit.alert_min is None or value > limit.alert_min, (metric, reading)
            assert limit.alert_max is None or value < limit.alert_max, (metric, reading)
        assert 0 <= reading["battery_pct"] <= 100


def test_temperatures_follow_a_daily_cycle_with_per_device_offsets(clean_run):
    by_hour: dict[int, list[float]] = defaultdict(list)
    by_device: dict[str, list[float]] = defaultdict(list)
    for reading in clean_run.readings:
        if reading["device_type"] == "environmental":
            by_hour[datetime.fromisoformat(reading["event_time"]).hour].append(reading["temperature_c"])
            by_device[reading["device_id"]].append(reading["temperature_c"])
    hourly = {hour: statistics.mean(values) for hour, values in by_hour.items()}
    warmest = max(hourly, key=hourly.get)
    coldest = min(hourly, key=hourly.get)
    assert hourly[warmest] - hourly[coldest] > 3.0  # a daily swing well above the 0.15 degC noise
    assert 11 <= warmest <= 19 and (coldest >= 23 or coldest <= 7)  # warm afternoons, cold nights
    device_means = [statistics.mean(values) for values in by_device.values()]
    assert len(device_means) == 2 and statistics.pstdev(device_means) > 0.3


def test_event_times_are_utc_iso_8601_with_milliseconds_as_the_contract_formats_them(clean_run):
    for reading in clean_run.readings[:5000]:
        text = reading["event_time"]
        assert format_event_time(datetime.fromisoformat(text)) == text


def test_the_run_covers_the_simulated_time_from_the_start(clean_run, start):
    first = datetime.fromisoformat(clean_run.readings[0]["event_time"])
    last = datetime.fromisoformat(clean_run.readings[-1]["event_time"])
    assert start <= first < start + timedelta(seconds=31)
    assert start + timedelta(days=1) - timedelta(seconds=31) < last < start + timedelta(days=1)


def test_readings_mode_sends_exactly_that_many_readings(produce_run, start):
    run = produce_run(FleetConfig(devices=7, readings=1_234, start=start, seed=9, dirty_rate=0.0))
    assert len(run.lines) == 1_234
    assert run.report.readings == run.report.lines == 1_234
    assert all(is_valid_device_id(json.loads(line)["device_id"]) for line in run.lines)


def test_dirty_records_stay_a_small_share_at_the_demo_settings(produce_run, start):
    run = produce_run(FleetConfig(devices=50, readings=100_000, dirty_rate=0.01, start=start, seed=2024))
    quarantined = sum(1 for label in run.dirty if label["destination"] == "quarantine")
    assert run.report.readings == 100_000
    assert 0.007 < len(run.dirty) / len(run.lines) < 0.013
    assert quarantined / len(run.lines) < 0.01  # the bronze gate fails above 5 %


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"readings": 10, "duration": timedelta(hours=1)}, "readings or duration"),
        ({"devices": 1001}, "registry holds devices 1..1000"),
        ({"dirty_rate": 1.5}, "dirty_rate=1.5"),
        ({"dirty_kinds": {"gibberish": 1.0}}, "unknown dirty kind"),
        ({"fault_rates": {"meltdown": 1.0}}, "unknown fault kind"),
        ({"producer": "a/b"}, "producer 'a/b'"),
    ],
)
def test_a_fleet_config_that_cannot_work_is_refused_with_the_setting_named(kwargs, message, start):
    with pytest.raises(ValueError, match=message):
        FleetConfig(start=start, **kwargs)


def test_batches_carry_the_exact_utf8_size_of_every_line(start):
    simulation = Simulation(FleetConfig(devices=10, readings=5_000, start=start, seed=12, dirty_rate=0.3))
    batches = list(simulation)
    lines = [line for batch in batches for line in batch.lines]
    sizes = [int(size) for batch in batches for size in batch.sizes]
    assert sizes == [len(line.encode()) + 1 for line in lines]
    assert any(not line.isascii() for line in lines)  # junk lines are counted in bytes, not characters
    assert all((b.arrival_ms[1:] >= b.arrival_ms[:-1]).all() for b in batches)  # arrival order
