"""Injected faults and their labels: each label points at exactly the readings the fault changed.

``faulty_run`` and ``faultless_twin`` share a seed and differ only in fault rates, so every reading
outside a fault has the same values in both runs, and the twin shows what the faulty readings would
have been.
"""

from __future__ import annotations

from collections import Counter

import pytest

from ingestion.labels import FAULT_KINDS
from lakehouse.contract import DEVICE_TYPES, load_metric_limits

LIMITS = load_metric_limits()


def _values(reading: dict) -> dict:
    return {k: v for k, v in reading.items() if k != "seq"}  # dropouts shift seq: fewer readings sent


def _index(run) -> dict[tuple[str, str], dict]:
    return {(r["device_id"], r["event_time"]): r for r in run.readings}


def _inside(label: dict, run) -> list[dict]:
    """The device's readings of ``run`` from the label's start to its end, inclusive."""
    return [r for r in run.by_device[label["device_id"]] if label["start"] <= r["event_time"] <= label["end"]]


def _labels(run, kind: str) -> list[dict]:
    labels = [label for label in run.faults if label["kind"] == kind]
    assert labels, f"the faulty run should contain {kind} faults"
    return labels


def test_every_fault_kind_is_injected_labelled_and_reported(faulty_run):
    kinds = Counter(label["kind"] for label in faulty_run.faults)
    assert set(kinds) == set(FAULT_KINDS)
    assert kinds == Counter(faulty_run.report.faults)
    for label in faulty_run.faults:
        assert (
            label["metric"] is None
            if label["kind"] == "dropout"
            else label["metric"] in DEVICE_TYPES[label["device_type"]]
        )
        assert label["start"] <= label["end"]


def test_readings_outside_every_fault_equal_the_run_without_faults(faulty_run, faultless_twin):
    twin = _index(faultless_twin)
    faults: dict[str, list[dict]] = {}
    for label in faulty_run.faults:
        if label["kind"] != "dropout":
            faults.setdefault(label["device_id"], []).append(label)
    unchanged = 0
    for reading in faulty_run.readings:
        device_faults = faults.get(reading["device_id"], [])
        if not any(label["start"] <= reading["event_time"] <= label["end"] for label in device_faults):
            assert _values(reading) == _values(twin[(reading["device_id"], reading["event_time"])])
            unchanged += 1
    assert unchanged > 0.5 * len(faulty_run.readings)


def test_readings_missing_from_the_faulty_run_fall_inside_dropout_labels(faulty_run, faultless_twin):
    sent = set(_index(faulty_run))
    dropouts = _labels(faulty_run, "dropout")
    missing = [key for key in _index(faultless_twin) if key not in sent]
    assert missing
    for device_id, event_time in missing:
        assert any(
            label["device_id"] == device_id and label["start"] <= event_time <= label["end"] for label in dropouts
        ), (device_id, event_time)


def test_a_dropout_label_covers_a_silence_the_twin_does_not_have(faulty_run, faultless_twin):
    for label in _labels(faulty_run, "dropout"):
        assert _inside(label, faulty_run) == []
        assert len(_inside(label, faultless_twin)) >= 1
        assert label["readings"] is None


def test_a_spike_label_points_at_one_reading_beyond_the_alert_limits(faulty_run, faultless_twin):
    twin = _index(faultless_twin)
    for label in _labels(faulty_run, "spike"):
        (reading,) = _inside(label, faulty_run)
        metric = label["metric"]
        limit = LIMITS[(label["device_type"], metric)]
        value = reading[metric]
        assert label["start"] == label["end"] and label["readings"] == 1
        assert value == label["value"]
        assert limit.valid_min <= value <= limit.valid_max  # passes bronze...
        if limit.alert_min is None and limit.alert_max is None:
            assert abs(value - twin[(label["device_id"], reading["event_time"])][metric]) > 1000
        else:  # ...and raises an alert
            assert (limit.alert_max is not None and value > limit.alert_max) or (
                limit.alert_min is not None and value < limit.alert_min
            )


def test_a_stuck_label_covers_readings_that_repeat_one_value(faulty_run, faultless_twin):
    twin = _index(faultless_twin)
    for label in _labels(faulty_run, "stuck"):
        readings = _inside(label, faulty_run)
        metric = label["metric"]
        assert len(readings) == label["readings"] >= 2
        assert {r[metric] for r in readings} == {label["value"]}
        assert len({twin[(r["device_id"], r["event_time"])][metric] for r in readings}) > 1


def test_a_drift_label_covers_readings_pulled_away_by_its_delta(faulty_run, faultless_twin):
    twin = _index(faultless_twin)
    for label in _labels(faulty_run, "drift"):
        readings = _inside(label, faulty_run)
        metric = label["metric"]
        limit = LIMITS[(label["device_type"], metric)]
        assert len(readings) == label["readings"]
        shifts = [r[metric] - twin[(r["device_id"], r["event_time"])][metric] for r in readings]
        sign = 1 if label["delta"] > 0 else -1
        assert all(sign * s >= -0.01 for s in shifts)  # one direction (up to rounding)...
        at_limit = readings[-1][metric] in (limit.valid_min, limit.valid_max)
        assert at_limit or shifts[-1] == pytest.approx(label["delta"], abs=0.1)  # ...growing to the delta
        assert abs(shifts[0]) < abs(shifts[-1])


def test_an_out_of_range_label_covers_values_outside_the_valid_range(faulty_run):
    for label in _labels(faulty_run, "out_of_range"):
        readings = _inside(label, faulty_run)
        limit = LIMITS[(label["device_type"], label["metric"])]
        assert 1 <= len(readings) == label["readings"] <= 5
        for reading in readings:
            value = reading[label["metric"]]
            assert value < limit.valid_min or value > limit.valid_max


@pytest.mark.parametrize("kind", ["spike", "stuck", "drift", "out_of_range"])
def test_a_fault_changes_only_its_own_metric(faulty_run, faultless_twin, kind):
    twin = _index(faultless_twin)
    for label in _labels(faulty_run, kind):
        for reading in _inside(label, faulty_run):
            before = twin[(reading["device_id"], reading["event_time"])]
            changed = {k for k in reading if k != "seq" and reading[k] != before[k]}
            assert changed <= {label["metric"]}
