"""The fleet the gates and dashboards judge by: the user's catalogue in the lake, not the simulator's code.

A gate checks what the models wrote against the catalogue (``lakehouse.catalogue_store``): which device
types exist and which metrics each reports, the valid range and alert band of each, and which devices are
registered with which type and site. A user's own device type, metric or device passes the gates as soon
as the catalogue declares it, exactly as it passes silver.

Silver judges a reading by the catalogue entry in force at its event time, so a gate that looks at every
date of the layer must accept what any version allowed: a metric's range here is the widest any version or
per-device override ever gave it. Devices are judged by their latest entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lakehouse.catalogue import SINCE_ALWAYS, Entry
from lakehouse.catalogue_store import Version, default_entries, modelled_metrics, read_versions, state_of
from lakehouse.config import Settings
from lakehouse.contract import MetricLimit


@dataclass(frozen=True)
class RegisteredDevice:
    device_id: str
    device_type: str
    site_id: str


@dataclass(frozen=True)
class Fleet:
    """What the gates know of the user's fleet (see the module docstring)."""

    metrics: tuple[str, ...]  # the metrics silver and gold model, a column each
    device_types: tuple[str, ...]
    reported: dict[str, tuple[str, ...]]  # device type -> the metrics it reports
    limits: dict[tuple[str, str], MetricLimit]  # (device type, metric) -> widest range and band ever in force
    devices: tuple[RegisteredDevice, ...]
    units: dict[tuple[str, str], str]  # (device type, metric) -> unit, the latest the catalogue gives

    def reporting(self, metric: str) -> list[str]:
        """The device types that report ``metric``."""
        return sorted(t for t, metrics in self.reported.items() if metric in metrics)

    def type_metric_pairs(self) -> list[str]:
        """``device_type.metric`` of every metric a type reports (gold's rows must be one of these)."""
        return [f"{t}.{m}" for t in sorted(self.reported) for m in self.reported[t]]


def fleet_of(versions: Sequence[Version]) -> Fleet:
    """The fleet of a catalogue's versions (pure)."""
    everything = [entry for version in versions for entry in version.entries]
    reported: dict[str, set[str]] = {}
    limits: dict[tuple[str, str], MetricLimit] = {}
    units: dict[tuple[str, str], str] = {}
    for entry in everything:
        if entry.kind != "metric":
            continue
        device_type, metric = entry.get("device_type"), entry.get("metric")
        reported.setdefault(device_type, set()).add(metric)
        limits[(device_type, metric)] = _widest(limits.get((device_type, metric)), entry)
        if not entry.get("device_id"):
            units[(device_type, metric)] = entry.get("unit")
    types = {e.get("device_type") for e in everything if e.kind == "device_type"} | set(reported)
    devices = tuple(
        RegisteredDevice(e.get("device_id"), e.get("device_type"), e.get("site_id"))
        for _, e in sorted(state_of(versions).entries.items())
        if e.kind == "device"
    )
    metrics = modelled_metrics(versions)  # the contract's first, then the user's by name
    return Fleet(
        metrics=tuple(metrics),
        device_types=tuple(sorted(types)),
        reported={t: tuple(sorted(m, key=metrics.index)) for t, m in sorted(reported.items())},
        limits={key: limits[key] for key in sorted(limits)},
        devices=devices,
        units=units,
    )


def load_fleet(settings: Settings) -> Fleet:
    """The fleet of the lake's catalogue; a lake without one has the default catalogue (the simulator's)."""
    versions = read_versions(settings)
    return fleet_of(versions) if versions else default_fleet()


def default_fleet() -> Fleet:
    """The default catalogue's fleet (the simulator's): what a new lake starts with."""
    return fleet_of([Version(1, SINCE_ALWAYS, tuple(default_entries()))])


def _widest(known: MetricLimit | None, entry: Entry) -> MetricLimit:
    new = MetricLimit(
        device_type=entry.get("device_type"),
        metric=entry.get("metric"),
        valid_min=entry.get("valid_min"),
        valid_max=entry.get("valid_max"),
        alert_min=entry.get("alert_min"),
        alert_max=entry.get("alert_max"),
    )
    if known is None:
        return new
    return MetricLimit(
        device_type=new.device_type,
        metric=new.metric,
        valid_min=min(known.valid_min, new.valid_min),  # the catalogue requires both bounds of a metric
        valid_max=max(known.valid_max, new.valid_max),
        # an alert bound that one version leaves open is open: a band is only as narrow as all versions agree
        alert_min=None if known.alert_min is None or new.alert_min is None else min(known.alert_min, new.alert_min),
        alert_max=None if known.alert_max is None or new.alert_max is None else max(known.alert_max, new.alert_max),
    )
