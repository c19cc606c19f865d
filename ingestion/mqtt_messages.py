"""Pure parts of the MQTT bridge: topic filters, a message's landing line, when to cut a file, its name.

No sockets, no files: :mod:`ingestion.mqtt_bridge` does the I/O and calls these.

Conventions (the same on a site broker with the bridge and on AWS IoT Core with a topic rule into
Firehose; README "Devices that speak MQTT"):

- Topic ``sites/<site_id>/devices/<device_id>/readings``; one message is one reading, a JSON object in
  the reading contract (``lakehouse/contract.py``), UTF-8, at most 256 KiB (AWS IoT Core's limit).
- The device id comes from the payload's ``device_id``; a payload without one takes the topic level that
  the filter's ``+`` after ``devices`` matched (``site_id`` likewise after ``sites``). The payload wins
  when both are present: the device knows its own id.
- A payload that is not a reading is still landed, never dropped: a JSON object is landed as it is (bronze
  judges it against the contract); anything else (not UTF-8, not JSON, not an object, over 256 KiB) is
  landed as an *unreadable line*, a JSON array ``["mqtt_unreadable", cause, topic, base64 payload]``, which
  bronze quarantines as ``malformed_json`` (not an object) with the raw line, so cause, topic and bytes
  stay readable in the quarantine.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime

MIB = 1024 * 1024
MAX_PAYLOAD_BYTES = 256 * 1024  # AWS IoT Core's message size limit
UNREADABLE = "mqtt_unreadable"
# Causes of an unreadable line (its second element).
UNREADABLE_CAUSES = {
    "binary_payload": "the payload is not UTF-8 text",
    "oversized_payload": f"the payload is over {MAX_PAYLOAD_BYTES:,} bytes (AWS IoT Core's limit)",
    "not_json": "the payload is text but not JSON",
    "not_an_object": "the payload is JSON but not an object (a reading is an object)",
}


class TopicFilterError(ValueError):
    """A topic filter that MQTT does not allow; the message says why and shows a valid one."""


@dataclass(frozen=True)
class TopicFilter:
    """An MQTT topic filter (``+`` one level, ``#`` the rest, as the MQTT spec defines them) and where in a
    matching topic the device id and site id are.

    ``device_level`` / ``site_level``: index of the topic level holding the id; by default the ``+`` right
    after a ``devices`` (``sites``) level of the filter, None when there is none.
    """

    filter: str
    device_level: int | None = None
    site_level: int | None = None

    def __post_init__(self) -> None:
        levels = self.filter.split("/")
        example = "e.g. sites/+/devices/+/readings"
        if not self.filter:
            raise TopicFilterError(f"an empty topic filter matches nothing; {example}")
        for i, level in enumerate(levels):
            if "#" in level and (level != "#" or i != len(levels) - 1):
                raise TopicFilterError(f"topic filter '{self.filter}': '#' must be a whole last level; {example}")
            if "+" in level and level != "+":
                raise TopicFilterError(f"topic filter '{self.filter}': '+' must be a whole level; {example}")
        if self.device_level is None:
            object.__setattr__(self, "device_level", _wildcard_after(levels, "devices"))
        if self.site_level is None:
            object.__setattr__(self, "site_level", _wildcard_after(levels, "sites"))

    def matches(self, topic: str) -> bool:
        """True when ``topic`` matches the filter (a topic starting with ``$`` never matches a wildcard
        first level, as the MQTT spec says)."""
        levels = self.filter.split("/")
        parts = topic.split("/")
        if topic.startswith("$") and levels[0] in ("+", "#"):
            return False
        for i, level in enumerate(levels):
            if level == "#":
                return True
            if i >= len(parts):
                return False
            if level != "+" and level != parts[i]:
                return False
        return len(parts) == len(levels)

    def device_id(self, topic: str) -> str | None:
        return _level(topic, self.device_level)

    def site_id(self, topic: str) -> str | None:
        return _level(topic, self.site_level)


def _wildcard_after(levels: list[str], name: str) -> int | None:
    for i in range(len(levels) - 1):
        if levels[i] == name and levels[i + 1] == "+":
            return i + 1
    return None


def _level(topic: str, index: int | None) -> str | None:
    if index is None:
        return None
    parts = topic.split("/")
    return parts[index] if index < len(parts) and parts[index] else None


def unreadable_line(cause: str, topic: str, payload: bytes) -> str:
    """The landing line of a payload that is not a JSON object: a JSON array bronze quarantines."""
    return json.dumps([UNREADABLE, cause, topic, base64.b64encode(payload).decode("ascii")])


def landing_line(topic: str, payload: bytes, topics: TopicFilter) -> tuple[str, str | None]:
    """One message as one landing line, and the cause when it is an unreadable line (else None).

    Fast path, most messages: a one-line UTF-8 object that names its device is landed byte for byte,
    unparsed (bronze parses it once, against the contract). Otherwise the payload is parsed: an object
    gets the ids the topic holds and is written on one line; anything else becomes an unreadable line.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        return unreadable_line("oversized_payload", topic, payload), "oversized_payload"
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return unreadable_line("binary_payload", topic, payload), "binary_payload"
    if (
        text.startswith("{")
        and text.endswith("}")
        and '"device_id":' in text
        and "\n" not in text
        and "\r" not in text
        and "\u2028" not in text  # a JSON string may hold it, but line readers may split there
    ):
        return text, None
    try:
        value = json.loads(text)
    except ValueError:
        return unreadable_line("not_json", topic, payload), "not_json"
    if not isinstance(value, dict):
        return unreadable_line("not_an_object", topic, payload), "not_an_object"
    ids = {}
    device, site = topics.device_id(topic), topics.site_id(topic)
    if device is not None and value.get("device_id") is None:
        ids["device_id"] = device
    if site is not None and value.get("site_id") is None:
        ids["site_id"] = site
    # ensure_ascii keeps U+2028 and friends escaped, so the line is one line for every reader.
    return json.dumps({**value, **ids} if ids else value, separators=(",", ":")), None


@dataclass(frozen=True)
class CutPolicy:
    """When a file of buffered messages is cut: at ``max_bytes``, at ``max_messages`` (the broker holds
    every unacknowledged message in flight, so this must stay within its limit: mosquitto's
    ``max_inflight_messages``, MQTT 5's receive maximum of at most 65,535), or ``max_seconds`` after its
    first message arrived, like Firehose's buffering hints."""

    max_bytes: int = 1024 * 1024
    max_seconds: float = 1.0
    max_messages: int = 20_000

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_messages < 1 or self.max_seconds <= 0:
            raise ValueError(
                f"file size {self.max_bytes} bytes, {self.max_messages} messages, {self.max_seconds:g} s: each "
                f"must be positive (--max-file-mib, --max-file-messages, --max-file-seconds)"
            )

    def full(self, buffered_bytes: int, messages: int) -> bool:
        """Cut now, by size or count (checked after each message)."""
        return buffered_bytes >= self.max_bytes or messages >= self.max_messages

    def due(self, first_arrival_s: float | None, now_s: float) -> bool:
        """Cut now, by age (checked on a timer)."""
        return first_arrival_s is not None and now_s - first_arrival_s >= self.max_seconds


def landing_name(bridge: str, first_arrival: datetime, run_token: str, n: int) -> str:
    """``YYYY/MM/DD/HH/readings-mqtt-<bridge>-<first arrival>-<run>-<n>.json`` under landing/readings.

    The hour folder and the stamp are the first message's arrival (UTC), as Firehose names by delivery
    time; ``run_token`` (new each start) keeps a restarted bridge from reusing a name.
    """
    first = first_arrival.astimezone(UTC)
    stamp = first.strftime("%Y%m%dT%H%M%S") + f"{first.microsecond // 1000:03d}Z"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in bridge)
    return f"{first:%Y/%m/%d/%H}/readings-mqtt-{safe}-{stamp}-{run_token}-{n:06d}.json"
