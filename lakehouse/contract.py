"""The reading contract: the one definition of a sensor reading that every layer imports.

A reading arrives as one line of newline-delimited JSON (as Kinesis Data Firehose delivers it). The
contract is versioned: bronze stamps every row with ``SCHEMA_VERSION`` so that a later change of the
contract can be told apart in the data.

Valid ranges and alert limits per device type and metric are *not* repeated here: they are data, in the
catalogue kept in the lake (:mod:`lakehouse.catalogue`). The simulator's own limits, which become the
default catalogue of a new lake, are ``lakehouse/defaults/metric_limits.csv`` (:func:`load_metric_limits`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

SCHEMA_VERSION = 1

FieldType = Literal["string", "long", "double", "timestamp"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool
    description: str
    unit: str | None = None


# Order matters: it is the column order of bronze.
FIELDS: tuple[Field, ...] = (
    Field("device_id", "string", True, "Device identifier, e.g. env-00001 (see DEVICE_ID_PATTERN)."),
    Field("device_type", "string", True, "One of DEVICE_TYPES."),
    Field("site_id", "string", True, "Site the device is installed at, e.g. site-03."),
    Field("event_time", "timestamp", True, "When the device took the reading: ISO-8601, UTC, ms precision."),
    Field("seq", "long", True, "Per-device sequence number, increasing by one per reading sent."),
    Field("temperature_c", "double", False, "Temperature.", "degree Celsius"),
    Field("humidity_pct", "double", False, "Relative humidity.", "percent"),
    Field("pressure_hpa", "double", False, "Pressure.", "hectopascal"),
    Field("vibration_mm_s", "double", False, "Vibration velocity (RMS).", "millimetre per second"),
    Field("accel_x_g", "double", False, "Acceleration along x.", "standard gravity"),
    Field("accel_y_g", "double", False, "Acceleration along y.", "standard gravity"),
    Field("accel_z_g", "double", False, "Acceleration along z.", "standard gravity"),
    Field("distance_mm", "double", False, "Distance to the nearest object (step trainer).", "millimetre"),
    Field("battery_pct", "double", False, "Battery charge.", "percent"),
    Field("firmware", "string", False, "Firmware version string, e.g. 2.4.1."),
)

FIELD_BY_NAME = {f.name: f for f in FIELDS}
REQUIRED_FIELDS = tuple(f.name for f in FIELDS if f.required)
METRICS = (
    "temperature_c",
    "humidity_pct",
    "pressure_hpa",
    "vibration_mm_s",
    "accel_x_g",
    "accel_y_g",
    "accel_z_g",
    "distance_mm",
)

# Which metrics each device type reports.
DEVICE_TYPES: dict[str, tuple[str, ...]] = {
    "environmental": ("temperature_c", "humidity_pct", "pressure_hpa"),
    "machine": ("temperature_c", "pressure_hpa", "vibration_mm_s"),
    "wearable": ("accel_x_g", "accel_y_g", "accel_z_g"),
    "step_trainer": ("distance_mm",),
}
DEVICE_ID_PREFIX = {"environmental": "env", "machine": "mch", "wearable": "wrb", "step_trainer": "stp"}
DEVICE_ID_PATTERN = r"^(env|mch|wrb|stp)-[0-9]{5}$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)

# Timestamps outside this window cannot be real readings (a device clock reset to 1970, a year 9999).
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(2100, 1, 1, tzinfo=UTC)

# Bronze adds these to every row; the names start with "_" so they never collide with a contract field.
BRONZE_METADATA_COLUMNS = ("_rescued_data", "_ingested_at", "_source_file", "_batch_id", "_schema_version")
BRONZE_PARTITION_COLUMN = "event_date"
QUARANTINE_COLUMNS = ("raw_line", "reason", "_source_file", "_batch_id", "_ingested_at", "_schema_version")
QUARANTINE_PARTITION_COLUMN = "ingest_date"

# Reason codes a quarantined landing line can carry. The part after ":" (if any) names the field.
QUARANTINE_REASONS = {
    "empty_line": "the line is empty or only whitespace",
    "malformed_json": "the line is not a JSON object (truncated, junk bytes, not an object)",
    "missing_required": "a required field is absent or null; the field is named after ':'",
    "type_mismatch": "a field does not have the contract's type; the field is named after ':'",
    "invalid_timestamp": "event_time is not an ISO-8601 timestamp",
    "impossible_timestamp": "event_time is before 2000-01-01 or after 2100-01-01 (UTC)",
}

# The simulator's fleet types and limits: the default catalogue of a new lake (lakehouse/catalogue_store.py).
DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
LIMITS_SEED = DEFAULTS_DIR / "metric_limits.csv"
DEVICE_TYPES_SEED = DEFAULTS_DIR / "device_types.csv"


@dataclass(frozen=True)
class MetricLimit:
    device_type: str
    metric: str
    valid_min: float
    valid_max: float
    alert_min: float | None
    alert_max: float | None


def load_metric_limits(path: Path = LIMITS_SEED) -> dict[tuple[str, str], MetricLimit]:
    """The simulator's valid ranges and alert limits keyed by (device_type, metric) (the default catalogue)."""
    limits: dict[tuple[str, str], MetricLimit] = {}
    with path.open(newline="") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            try:
                limit = MetricLimit(
                    device_type=row["device_type"],
                    metric=row["metric"],
                    valid_min=float(row["valid_min"]),
                    valid_max=float(row["valid_max"]),
                    alert_min=float(row["alert_min"]) if row["alert_min"] else None,
                    alert_max=float(row["alert_max"]) if row["alert_max"] else None,
                )
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{line_no}: cannot read metric limit row {row!r}: {exc}") from exc
            limits[(limit.device_type, limit.metric)] = limit
    return limits


def is_valid_device_id(device_id: str) -> bool:
    return bool(_DEVICE_ID_RE.match(device_id))


def device_id_for(device_type: str, index: int) -> str:
    """The registry's id for the index-th device (1-based) of the fleet."""
    return f"{DEVICE_ID_PREFIX[device_type]}-{index:05d}"


def format_event_time(moment: datetime) -> str:
    """ISO-8601 in UTC with millisecond precision and a trailing Z, as devices send it."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
