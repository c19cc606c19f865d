"""Specification of the MQTT bridge's pure parts: topic filters, the landing line of a message, when a file
is cut and what it is called (ingestion/mqtt_messages.py)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from ingestion.mqtt_messages import (
    MAX_PAYLOAD_BYTES,
    UNREADABLE,
    CutPolicy,
    TopicFilter,
    TopicFilterError,
    landing_line,
    landing_name,
)

READINGS = TopicFilter("sites/+/devices/+/readings")
TOPIC = "sites/site-02/devices/env-00002/readings"


@pytest.mark.parametrize(
    ("filter_", "topic", "matches"),
    [
        ("sites/+/devices/+/readings", "sites/site-01/devices/env-00001/readings", True),
        ("sites/+/devices/+/readings", "sites/site-01/devices/env-00001/status", False),
        ("sites/+/devices/+/readings", "sites/site-01/devices/readings", False),
        ("sites/+/devices/+/readings", "sites/site-01/devices/env-00001/readings/extra", False),
        ("sites/#", "sites/site-01/devices/env-00001/readings", True),
        ("sites/#", "sites", True),  # '#' also matches the parent level (MQTT 3.1.1 section 4.7.1.2)
        ("#", "$SYS/broker/uptime", False),  # wildcards never match a $ topic's first level
        ("+/devices/+", "site-01/devices/x", True),
        ("sites/site-01/devices/+/readings", "sites/site-02/devices/x/readings", False),
    ],
)
def test_topic_filters_match_as_the_mqtt_spec_says(filter_, topic, matches):
    assert TopicFilter(filter_).matches(topic) is matches


@pytest.mark.parametrize("bad", ["", "sites/#/readings", "sites/dev+/readings", "sites/#x"])
def test_a_filter_mqtt_does_not_allow_is_refused_with_an_example(bad):
    with pytest.raises(TopicFilterError, match="e.g. sites/"):
        TopicFilter(bad)


def test_device_and_site_come_from_the_wildcard_levels_after_devices_and_sites():
    assert (READINGS.device_id(TOPIC), READINGS.site_id(TOPIC)) == ("env-00002", "site-02")
    assert TopicFilter("plant/+/+", device_level=2).device_id("plant/a/mch-00003") == "mch-00003"
    assert TopicFilter("sites/#").device_id(TOPIC) is None  # no '+' after devices: only the payload says


def test_a_one_line_reading_that_names_its_device_is_landed_byte_for_byte():
    payload = b'{"device_id":"env-00009","seq":3,"temperature_c":21.5}'
    assert landing_line(TOPIC, payload, READINGS) == (payload.decode(), None)


def test_a_payload_without_ids_takes_them_from_the_topic():
    line, cause = landing_line(TOPIC, b'{"seq": 3, "temperature_c": 21.5}', READINGS)
    assert cause is None
    assert json.loads(line) == {"seq": 3, "temperature_c": 21.5, "device_id": "env-00002", "site_id": "site-02"}


def test_the_payload_device_id_wins_over_the_topic():
    line, _ = landing_line(TOPIC, b'{\n  "device_id": "env-00009",\n  "seq": 3\n}', READINGS)
    assert json.loads(line) == {"device_id": "env-00009", "seq": 3, "site_id": "site-02"}


def test_a_pretty_printed_reading_is_landed_on_one_line():
    line, cause = landing_line(TOPIC, b'{\n "device_id": "env-00002",\n "note": "a\\u2028b"\n}', READINGS)
    assert cause is None and "\n" not in line and "\u2028" not in line
    assert json.loads(line) == {"device_id": "env-00002", "note": "a\u2028b", "site_id": "site-02"}


@pytest.mark.parametrize(
    ("payload", "cause"),
    [
        (b"\x00\xff\xfe binary \n frame", "binary_payload"),
        (b'{"device_id":"env-00002","junk":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}', "oversized_payload"),
        (b"temperature=21.5 humidity=40", "not_json"),
        (b"", "not_json"),
        (b'[{"device_id":"env-00002"}]', "not_an_object"),
        (b"42", "not_an_object"),
    ],
)
def test_a_payload_that_is_not_a_reading_is_landed_whole_as_an_unreadable_line(payload, cause):
    line, got = landing_line(TOPIC, payload, READINGS)
    assert got == cause
    assert "\n" not in line
    marker, named_cause, topic, data = json.loads(line)
    assert (marker, named_cause, topic) == (UNREADABLE, cause, TOPIC)
    assert base64.b64decode(data) == payload  # every byte kept, for the quarantine


def test_a_payload_of_exactly_256_kib_is_still_a_reading():
    head = b'{"device_id":"env-00002","junk":"'
    payload = head + b"x" * (MAX_PAYLOAD_BYTES - len(head) - 2) + b'"}'
    assert len(payload) == MAX_PAYLOAD_BYTES
    assert landing_line(TOPIC, payload, READINGS)[1] is None


def test_a_file_is_cut_at_its_size_its_message_count_or_its_age():
    policy = CutPolicy(max_bytes=1000, max_messages=10, max_seconds=2.0)
    assert not policy.full(999, 9)
    assert policy.full(1000, 1)
    assert policy.full(10, 10)
    assert not policy.due(None, 100.0)  # an empty buffer has no age
    assert not policy.due(98.5, 100.0)
    assert policy.due(98.0, 100.0)


@pytest.mark.parametrize("bad", [{"max_bytes": 0}, {"max_messages": 0}, {"max_seconds": 0}])
def test_a_cut_policy_needs_positive_limits(bad):
    with pytest.raises(ValueError, match="must be positive"):
        CutPolicy(**bad)


def test_a_file_lives_in_the_hour_folder_of_its_first_arrival_and_names_the_run():
    first = datetime(2026, 3, 1, 23, 59, 59, 123456, tzinfo=UTC)
    name = landing_name("bridge/site 1", first, "ab12cd34", 7)
    assert name == "2026/03/01/23/readings-mqtt-bridge_site_1-20260301T235959123Z-ab12cd34-000007.json"
