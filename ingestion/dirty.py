"""Dirty records: the kinds of bad lines real fleets send, and where each one must end up.

Every kind says whether bronze quarantines it (and with which reason code of
``contract.QUARANTINE_REASONS``) or lets it through for silver to handle. Two shapes:

- the reading's own line is sent broken or changed (``adds_line=False``): the reading is lost to bronze
  (quarantine kinds) or arrives changed (late, clock skew, extra fields);
- an extra line is sent beside the intact reading (``adds_line=True``): a retry duplicate, a line from an
  unregistered device, junk on the wire.

The functions here are pure: a clean line and a random generator in, a dirty line and its label out.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lakehouse.contract import DEVICE_ID_PREFIX, DEVICE_TYPES, QUARANTINE_REASONS, REQUIRED_FIELDS, format_event_time


@dataclass(frozen=True)
class DirtyKind:
    name: str
    destination: str  # "quarantine" (bronze rejects it) or "bronze" (bronze keeps it; silver handles it)
    reason: str | None  # the quarantine reason code; missing/mistyped fields are named after ':'
    adds_line: bool
    description: str


DIRTY_KINDS: dict[str, DirtyKind] = {
    k.name: k
    for k in (
        DirtyKind(
            "malformed_json",
            "quarantine",
            "malformed_json",
            False,
            "broken JSON syntax: a missing comma, unquoted keys, '=' for ':', a trailing comma",
        ),
        DirtyKind("truncated", "quarantine", "malformed_json", False, "the line is cut off mid-record"),
        DirtyKind("non_ascii_junk", "quarantine", "malformed_json", True, "a line of non-ASCII garbage"),
        DirtyKind("empty_line", "quarantine", "empty_line", True, "an empty or blank line"),
        DirtyKind("missing_required", "quarantine", "missing_required", False, "a required field is absent or null"),
        DirtyKind(
            "wrong_type", "quarantine", "type_mismatch", False, 'a number sent as text, e.g. "temperature_c": "hot"'
        ),
        DirtyKind(
            "invalid_timestamp", "quarantine", "invalid_timestamp", False, "event_time is not an ISO-8601 timestamp"
        ),
        DirtyKind(
            "impossible_timestamp",
            "quarantine",
            "impossible_timestamp",
            False,
            "event_time from a reset clock (1970) or a 32-bit overflow (2106)",
        ),
        DirtyKind(
            "unknown_device",
            "bronze",
            None,
            True,
            "a reading from a device id that matches the pattern but is not registered (xxx-09nnn)",
        ),
        DirtyKind("duplicate", "bronze", None, True, "a retry: the same line (device, seq, payload) again"),
        DirtyKind("late", "bronze", None, False, "the reading arrives 1 to 6 hours after it was taken"),
        DirtyKind("clock_skew", "bronze", None, False, "event_time 2 to 72 hours in the future"),
        DirtyKind("extra_fields", "bronze", None, False, "fields the contract does not know, e.g. rssi_dbm"),
    )
}

for _kind in DIRTY_KINDS.values():
    if _kind.reason is not None and _kind.reason not in QUARANTINE_REASONS:
        raise AssertionError(f"dirty kind {_kind.name}: reason {_kind.reason} is not in contract.QUARANTINE_REASONS")

_WORDS = ("hot", "n/a", "ERR", "--", "high", "low", "?", "overflow")
_BAD_TIMESTAMPS = ("yesterday", "2024-13-45T25:61:00Z", "not-a-time", "31/12/2024 10:00", "NaT", "--")
# Non-ASCII and no line breaks (U+0085, U+2028 and U+2029 would split a line for some readers) and no
# spaces, so that the line is not blank.
_JUNK = "".join(chr(c) for c in range(0xA1, 0x100)) + "\ufffd€™漢字データ🔥"
_EXTRA_FIELDS = ("rssi_dbm", "gateway_id", "uptime_s", "fw_build")
HOUR_MS = 3_600_000


def render(fields: dict[str, Any]) -> str:
    """A reading as a landing line: compact JSON, contract field order kept by the dict."""
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def _event_time(ms: int) -> str:
    return format_event_time(datetime.fromtimestamp(ms / 1000, tz=UTC))


@dataclass
class DirtyLine:
    line: str
    arrival_ms: int
    key: str
    label: dict[str, Any]


class DirtyMaker:
    """Turns a clean reading into one dirty kind. Deterministic for a given ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._unknown_seq: dict[str, int] = {}

    def make(self, kind: str, line: str, arrival_ms: int) -> DirtyLine:
        rng = self._rng
        fields = json.loads(line)
        device_id, seq, event_time = fields["device_id"], fields["seq"], fields["event_time"]
        spec = DIRTY_KINDS[kind]
        extra: dict[str, Any] = {}
        reason = spec.reason
        key = device_id
        new_arrival = arrival_ms

        if kind == "malformed_json":
            variant = rng.randrange(5)
            if variant == 0:
                new = line.replace(',"', ' "', 1)
            elif variant == 1:
                new = re.sub(r'"(\w+)":', r"\1:", line)
            elif variant == 2:
                new = line.replace('":', '"=')
            elif variant == 3:
                new = line[:-1] + ",}"
            else:
                new = "{" + line
        elif kind == "truncated":
            new = line[: rng.randint(8, len(line) - 2)]
        elif kind == "non_ascii_junk":
            new = "".join(rng.choices(_JUNK, k=rng.randint(8, 60)))
            device_id = seq = event_time = None
        elif kind == "empty_line":
            new = rng.choice(("", " ", "   "))
            device_id = seq = event_time = None
        elif kind == "missing_required":
            name = rng.choice(REQUIRED_FIELDS)
            if rng.random() < 0.5:
                del fields[name]
            else:
                fields[name] = None
            reason = f"missing_required:{name}"
            new = render(fields)
        elif kind == "wrong_type":
            name = rng.choice((*DEVICE_TYPES[fields["device_type"]], "seq", "battery_pct"))
            fields[name] = rng.choice(_WORDS)
            reason = f"type_mismatch:{name}"
            new = render(fields)
        elif kind == "invalid_timestamp":
            fields["event_time"] = rng.choice(_BAD_TIMESTAMPS)
            new = render(fields)
        elif kind == "impossible_timestamp":
            if rng.random() < 0.5:
                fields["event_time"] = "1970-01-01" + event_time[10:]  # a clock reset to the epoch
            else:
                fields["event_time"] = "2106-02-07T06:28:15.000Z"  # an unsigned 32-bit epoch overflow
            new = render(fields)
        elif kind == "unknown_device":
            unknown = f"{DEVICE_ID_PREFIX[fields['device_type']]}-09{rng.randrange(1000):03d}"
            seq = self._unknown_seq[unknown] = self._unknown_seq.get(unknown, 0) + 1
            fields["device_id"], fields["seq"] = unknown, seq
            device_id = key = unknown
            new_arrival = arrival_ms + rng.randrange(2000)
            new = render(fields)
        elif kind == "duplicate":
            new = line
            new_arrival = arrival_ms + rng.randrange(1000, 30_000)
        elif kind == "late":
            new = line
            new_arrival = arrival_ms + rng.randrange(HOUR_MS, 6 * HOUR_MS)
            extra["delay_s"] = (new_arrival - arrival_ms) / 1000
        elif kind == "clock_skew":
            skewed = arrival_ms + rng.randrange(2 * HOUR_MS, 72 * HOUR_MS)
            fields["event_time"] = _event_time(skewed)
            extra["true_event_time"] = event_time
            event_time = fields["event_time"]
            new = render(fields)
        elif kind == "extra_fields":
            names = sorted(rng.sample(_EXTRA_FIELDS, rng.randint(1, 2)), key=_EXTRA_FIELDS.index)
            values = {
                "rssi_dbm": -rng.randint(40, 95),
                "gateway_id": f"gw-{rng.randint(1, 9):02d}",
                "uptime_s": rng.randint(60, 9_000_000),
                "fw_build": f"b{rng.randint(1000, 9999)}",
            }
            fields.update({name: values[name] for name in names})
            extra["extra_fields"] = names
            new = render(fields)
        else:
            raise ValueError(f"unknown dirty kind '{kind}'; known kinds: {', '.join(DIRTY_KINDS)}")

        label = {
            "kind": kind,
            "destination": spec.destination,
            "reason": reason,
            "device_id": device_id,
            "seq": seq,
            "event_time": event_time,
            "arrival_time": _event_time(new_arrival),
            "raw_line": new,
            **extra,
        }
        return DirtyLine(new, new_arrival, key, label)
