"""Dirty records: every kind is sent, labelled with the line itself, and breaks the contract exactly the
way its quarantine reason says (or keeps it, for the kinds silver handles)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest

from ingestion.dirty import DIRTY_KINDS
from lakehouse.contract import (
    EARLIEST_EVENT_TIME,
    FIELD_BY_NAME,
    LATEST_EVENT_TIME,
    QUARANTINE_REASONS,
    REQUIRED_FIELDS,
    is_valid_device_id,
)
from lakehouse.registry import REGISTRY_SIZE


def _labels(run, kind: str) -> list[dict]:
    labels = [label for label in run.dirty if label["kind"] == kind]
    assert labels, f"the dirty run should contain {kind} records"
    return labels


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_every_quarantine_kind_carries_a_reason_of_the_contract():
    for kind in DIRTY_KINDS.values():
        if kind.destination == "quarantine":
            assert kind.reason in QUARANTINE_REASONS, kind.name
        else:
            assert kind.destination == "bronze" and kind.reason is None, kind.name
    assert {k.reason for k in DIRTY_KINDS.values() if k.reason} == set(QUARANTINE_REASONS)


def test_every_kind_is_sent_labelled_and_reported(dirty_run):
    kinds = Counter(label["kind"] for label in dirty_run.dirty)
    assert set(kinds) == set(DIRTY_KINDS)
    assert kinds == Counter(dirty_run.report.dirty)
    assert dirty_run.report.lines == len(dirty_run.lines)
    assert dirty_run.report.clean == len(dirty_run.lines) - len(dirty_run.dirty)


def test_every_dirty_label_holds_a_line_that_was_sent(dirty_run):
    sent = Counter(dirty_run.lines)
    for label in dirty_run.dirty:
        assert sent[label["raw_line"]] >= 1, label
    for label in _labels(dirty_run, "duplicate"):
        assert sent[label["raw_line"]] == 2


@pytest.mark.parametrize("kind", ["malformed_json", "truncated", "non_ascii_junk"])
def test_malformed_kinds_are_not_json_objects(dirty_run, kind):
    for label in _labels(dirty_run, kind):
        assert label["reason"] == "malformed_json"
        line = label["raw_line"]
        assert line.strip() and "\n" not in line and "\r" not in line
        with pytest.raises(ValueError):
            json.loads(line)
    if kind == "non_ascii_junk":
        assert all(not label["raw_line"].isascii() for label in _labels(dirty_run, kind))


def test_empty_lines_are_blank(dirty_run):
    for label in _labels(dirty_run, "empty_line"):
        assert label["raw_line"].strip(" ") == "" and label["reason"] == "empty_line"


def test_missing_required_lines_lack_the_field_their_reason_names(dirty_run):
    for label in _labels(dirty_run, "missing_required"):
        reason, field = label["reason"].split(":")
        assert reason == "missing_required" and field in REQUIRED_FIELDS
        assert json.loads(label["raw_line"]).get(field) is None


def test_wrong_type_lines_send_text_where_the_contract_wants_a_number(dirty_run):
    for label in _labels(dirty_run, "wrong_type"):
        reason, field = label["reason"].split(":")
        reading = json.loads(label["raw_line"])
        assert reason == "type_mismatch" and FIELD_BY_NAME[field].type in ("double", "long")
        assert isinstance(reading[field], str)
        with pytest.raises(ValueError):
            float(reading[field])


def test_invalid_timestamps_are_not_iso_8601(dirty_run):
    for label in _labels(dirty_run, "invalid_timestamp"):
        with pytest.raises(ValueError):
            datetime.fromisoformat(json.loads(label["raw_line"])["event_time"])


def test_impossible_timestamps_lie_outside_the_contract_window(dirty_run):
    for label in _labels(dirty_run, "impossible_timestamp"):
        moment = _time(json.loads(label["raw_line"])["event_time"])
        assert moment < EARLIEST_EVENT_TIME or moment >= LATEST_EVENT_TIME


def _keeps_the_contract(line: str) -> dict:
    reading = json.loads(line)
    for name in REQUIRED_FIELDS:
        assert reading.get(name) is not None, (name, line)
    assert EARLIEST_EVENT_TIME <= _time(reading["event_time"]) < LATEST_EVENT_TIME
    assert isinstance(reading["seq"], int)
    return reading


def test_unknown_devices_match_the_id_pattern_but_lie_beyond_the_registry(dirty_run):
    for label in _labels(dirty_run, "unknown_device"):
        reading = _keeps_the_contract(label["raw_line"])
        assert is_valid_device_id(reading["device_id"]) and reading["device_id"] == label["device_id"]
        assert 9000 <= int(reading["device_id"][-5:]) <= 9999 and REGISTRY_SIZE < 9000
        assert label["destination"] == "bronze"


def test_late_lines_arrive_hours_after_they_were_taken_and_out_of_order(dirty_run):
    position = {line: i for i, line in enumerate(dirty_run.lines)}
    for label in _labels(dirty_run, "late"):
        reading = _keeps_the_contract(label["raw_line"])
        delay = _time(label["arrival_time"]) - _time(reading["event_time"])
        assert timedelta(hours=1) <= delay < timedelta(hours=6)
        overtaken_by = [
            r
            for r in dirty_run.parsed[: position[label["raw_line"]]]
            if r
            and r.get("device_id") == reading["device_id"]
            and isinstance(r.get("seq"), int)
            and r["seq"] > reading["seq"]
        ]
        assert overtaken_by, label  # readings taken later by the same device arrived first


def test_clock_skewed_lines_carry_an_event_time_hours_in_the_future(dirty_run):
    for label in _labels(dirty_run, "clock_skew"):
        reading = _keeps_the_contract(label["raw_line"])
        ahead = _time(reading["event_time"]) - _time(label["arrival_time"])
        assert timedelta(hours=2) <= ahead < timedelta(hours=72)
        assert label["true_event_time"] <= label["arrival_time"]


def test_extra_fields_come_beside_a_complete_reading(dirty_run):
    for label in _labels(dirty_run, "extra_fields"):
        reading = _keeps_the_contract(label["raw_line"])
        assert [k for k in reading if k not in FIELD_BY_NAME] == label["extra_fields"]


def test_dirty_records_never_touch_a_reading_that_carries_a_fault(dirty_run):
    assert dirty_run.faults
    for label in dirty_run.dirty:
        if label["device_id"] is None or label["kind"] == "unknown_device":
            continue
        taken = label.get("true_event_time", label["event_time"])
        for fault in dirty_run.faults:
            if fault["kind"] != "dropout" and fault["device_id"] == label["device_id"]:
                assert not fault["start"] <= taken <= fault["end"], (label, fault)
