"""What each device type measures and how its signals behave: pure numbers, no I/O beyond the default
catalogue's CSVs (lakehouse/defaults/).

A clean value is ``base + device offset + daily cycle + slow drift + noise``, kept inside the *safe band*
(the valid range of ``metric_limits.csv`` narrowed to its alert limits), so a clean reading never raises
an alert: every alert in the data comes from an injected fault.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from lakehouse.contract import DEVICE_TYPES, DEVICE_TYPES_SEED, MetricLimit, load_metric_limits

DAY_S = 86_400.0


@dataclass(frozen=True)
class Signal:
    """Shape of one metric of one device type (units of the metric)."""

    base: float
    offset_sd: float  # spread of the per-device offset
    daily_amplitude: float  # height of the daily cycle
    peak_hour: float  # UTC hour of the daily maximum
    drift_amplitude: float  # slow drift (days-long cycle)
    noise_sd: float
    decimals: int
    # "level": the formula above; "activity": zero-mean motion whose noise follows the daily cycle
    # (accelerometers), ``base`` being the resting value (gravity on z).
    shape: str = "level"


SIGNALS: dict[tuple[str, str], Signal] = {
    ("environmental", "temperature_c"): Signal(21.0, 2.0, 3.5, 15.0, 1.0, 0.15, 2),
    ("environmental", "humidity_pct"): Signal(45.0, 6.0, 8.0, 5.0, 4.0, 0.8, 1),
    ("environmental", "pressure_hpa"): Signal(1013.0, 3.0, 1.2, 10.0, 8.0, 0.15, 2),
    ("machine", "temperature_c"): Signal(55.0, 3.0, 6.0, 14.0, 2.0, 0.4, 2),
    ("machine", "pressure_hpa"): Signal(2500.0, 300.0, 150.0, 14.0, 100.0, 15.0, 1),
    ("machine", "vibration_mm_s"): Signal(2.0, 0.3, 0.5, 14.0, 0.2, 0.12, 3),
    ("wearable", "accel_x_g"): Signal(0.0, 0.03, 0.0, 14.0, 0.0, 0.5, 3, "activity"),
    ("wearable", "accel_y_g"): Signal(0.0, 0.03, 0.0, 14.0, 0.0, 0.5, 3, "activity"),
    ("wearable", "accel_z_g"): Signal(1.0, 0.03, 0.0, 14.0, 0.0, 0.5, 3, "activity"),
    ("step_trainer", "distance_mm"): Signal(1500.0, 200.0, 300.0, 18.0, 150.0, 250.0, 1),
}
BATTERY_DECIMALS = 1
FIRMWARE_VERSIONS = ("2.3.0", "2.4.1", "2.4.2", "3.0.0")
FIRMWARE_WEIGHTS = (0.15, 0.45, 0.25, 0.15)


@dataclass(frozen=True)
class Band:
    """Limits of one (device type, metric): the valid range, and the safe band clean values stay in."""

    valid_min: float
    valid_max: float
    alert_min: float | None
    alert_max: float | None

    @property
    def safe_min(self) -> float:
        low = self.valid_min if self.alert_min is None else max(self.valid_min, self.alert_min)
        return low + 0.01 * (self.safe_span_raw)

    @property
    def safe_max(self) -> float:
        high = self.valid_max if self.alert_max is None else min(self.valid_max, self.alert_max)
        return high - 0.01 * (self.safe_span_raw)

    @property
    def safe_span_raw(self) -> float:
        low = self.valid_min if self.alert_min is None else max(self.valid_min, self.alert_min)
        high = self.valid_max if self.alert_max is None else min(self.valid_max, self.alert_max)
        return high - low


def load_bands(limits: dict[tuple[str, str], MetricLimit] | None = None) -> dict[tuple[str, str], Band]:
    """The limits of every metric a device type reports, from ``metric_limits.csv``."""
    limits = load_metric_limits() if limits is None else limits
    bands = {}
    for device_type, metrics in DEVICE_TYPES.items():
        for metric in metrics:
            limit = limits.get((device_type, metric))
            if limit is None:
                raise ValueError(
                    f"lakehouse/defaults/metric_limits.csv has no row for ({device_type}, {metric}); "
                    f"add its valid range so the simulator knows where values belong"
                )
            bands[(device_type, metric)] = Band(limit.valid_min, limit.valid_max, limit.alert_min, limit.alert_max)
    return bands


@dataclass(frozen=True)
class DeviceTypeTiming:
    reporting_interval_s: float
    silence_after_s: float


def load_device_types(path: Path = DEVICE_TYPES_SEED) -> dict[str, DeviceTypeTiming]:
    """Reporting interval and silence threshold per device type, from ``device_types.csv``."""
    timings: dict[str, DeviceTypeTiming] = {}
    with path.open(newline="") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            try:
                timings[row["device_type"]] = DeviceTypeTiming(
                    reporting_interval_s=float(row["reporting_interval_s"]),
                    silence_after_s=float(row["silence_after_s"]),
                )
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{line_no}: cannot read device type row {row!r}: {exc}") from exc
    missing = set(DEVICE_TYPES) - set(timings)
    if missing:
        raise ValueError(f"{path} has no row for device type(s) {sorted(missing)}; add their reporting interval")
    for name, timing in timings.items():
        if timing.reporting_interval_s <= 0:
            raise ValueError(f"{path}: reporting_interval_s of '{name}' must be positive")
    return timings
