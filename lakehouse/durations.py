"""The one grammar of durations every command reads (``--interval``, ``--every``, ``--for``, ``--duration``).

A duration is a positive number and its unit: ``500ms``, ``10s``, ``1.5m``, ``15m``, ``1h``, ``2d``, or the
unit spelt out as Spark writes it (``10 seconds``, ``2 minutes``). A bare number is refused: ``--every 15``
could mean seconds or minutes, and a scheduler that guesses wrong runs 60 times too often.
"""

from __future__ import annotations

import re
from datetime import timedelta

from lakehouse.errors import LakehouseError

_SECONDS_PER_UNIT = {
    "ms": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")
EXAMPLES = "e.g. 10s, 15m, 1h, 1d or 10 seconds"


class DurationError(LakehouseError):
    """A duration option that is not a positive number with a unit; the message names the option."""


def parse_duration(text: str, option: str) -> timedelta:
    """``"15m"`` -> 15 minutes. Anything else raises :class:`DurationError` naming ``option`` and the fix."""
    match = _DURATION.match(text.lower())
    if match is None or match.group(2) not in _SECONDS_PER_UNIT:
        raise DurationError(f"{option} '{text}' is not a duration; write a number and a unit, {EXAMPLES}")
    seconds = float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]
    if seconds <= 0:
        raise DurationError(f"{option} '{text}' is not a duration: it must be longer than zero ({EXAMPLES})")
    return timedelta(seconds=seconds)


def parse_seconds(text: str, option: str) -> float:
    """:func:`parse_duration` in seconds."""
    return parse_duration(text, option).total_seconds()


def spark_interval(duration: timedelta) -> str:
    """A trigger interval as Spark reads it: ``'10 seconds'`` (Spark takes fractions of a second too)."""
    return f"{duration.total_seconds():g} seconds"
