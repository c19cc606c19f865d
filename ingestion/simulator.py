"""A deterministic sensor fleet: readings as landing lines, with injected faults and dirty records.

Pure: no clock, no files, no network. ``Simulation(config)`` yields :class:`Batch` es of lines in arrival
order; the same :class:`FleetConfig` (seed included) yields the same lines, byte for byte.

How the fleet behaves:

- devices come from ``lakehouse.registry.fleet(n)``; each reports exactly the metrics of its type
  (``contract.DEVICE_TYPES``) plus ``battery_pct`` and ``firmware``, every ``reporting_interval_s`` of
  ``device_types.csv`` plus a small jitter (0-5 % of the interval);
- a clean value is base + device offset + daily cycle + slow drift + noise (:mod:`ingestion.signals`),
  inside the valid range and the alert limits of ``metric_limits.csv``;
- ``seq`` starts at 1 and increases by one per reading a device takes;
- faults (spikes, stuck sensors, drift, dropouts, out-of-range values) start at random per device and
  simulated hour (``fault_rates``); each is written to :attr:`Simulation.fault_labels`;
- a share ``dirty_rate`` of readings comes with a dirty record (:mod:`ingestion.dirty`), each written
  to :attr:`Simulation.dirty_labels`. Readings hit by a fault are never made dirty, so a fault label
  always points at readings that reach bronze.

Time: simulated, starting at ``config.start``. A reading's *arrival* is its event time, except for late
lines and retries; lines come out sorted by arrival, which is what a landing sink partitions on.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ingestion.dirty import DIRTY_KINDS, DirtyMaker
from ingestion.labels import DEFAULT_FAULT_RATES, FAULT_KINDS
from ingestion.signals import (
    BATTERY_DECIMALS,
    DAY_S,
    FIRMWARE_VERSIONS,
    FIRMWARE_WEIGHTS,
    SIGNALS,
    Band,
    load_bands,
    load_device_types,
)
from lakehouse.contract import DEVICE_TYPES, format_event_time
from lakehouse.registry import REGISTRY_SIZE, TYPE_ORDER, fleet

DEFAULT_READINGS = 100_000
_JITTER = 0.05  # share of the reporting interval
_READINGS_PER_WINDOW = 40_000


@dataclass(frozen=True)
class FleetConfig:
    """What to simulate. ``readings`` and ``duration`` are exclusive (neither: 100,000 readings).

    ``start`` is the simulated clock's start (UTC; a naive datetime is taken as UTC). ``None`` lets the
    caller pick (``produce`` uses "now minus the run's simulated length", so data ends about now).
    ``dirty_kinds`` weighs the kinds of :data:`ingestion.dirty.DIRTY_KINDS` (default: all, equally);
    ``fault_rates`` is faults per device and simulated hour, per kind of :data:`FAULT_KINDS`.
    """

    devices: int = 50
    readings: int | None = None
    duration: timedelta | None = None
    start: datetime | None = None
    seed: int = 0
    dirty_rate: float = 0.01
    dirty_kinds: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(DIRTY_KINDS, 1.0))
    fault_rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FAULT_RATES))
    producer: str = "sim"

    def __post_init__(self) -> None:
        if self.readings is not None and self.duration is not None:
            raise ValueError("give readings or duration, not both (--readings / --duration)")
        if self.readings is None and self.duration is None:
            object.__setattr__(self, "readings", DEFAULT_READINGS)
        if self.readings is not None and self.readings < 1:
            raise ValueError(f"readings={self.readings}: must be at least 1")
        if self.duration is not None and self.duration.total_seconds() <= 0:
            raise ValueError(f"duration={self.duration}: must be positive")
        if not 1 <= self.devices <= REGISTRY_SIZE:
            raise ValueError(f"devices={self.devices}: the registry holds devices 1..{REGISTRY_SIZE}")
        if not 0 <= self.dirty_rate <= 1:
            raise ValueError(f"dirty_rate={self.dirty_rate}: must be a share between 0 and 1 (0.01 = 1 %)")
        unknown = set(self.dirty_kinds) - set(DIRTY_KINDS)
        if unknown:
            raise ValueError(f"unknown dirty kind(s) {sorted(unknown)}; known kinds: {', '.join(DIRTY_KINDS)}")
        if any(w < 0 for w in self.dirty_kinds.values()) or (
            self.dirty_rate > 0 and not any(w > 0 for w in self.dirty_kinds.values())
        ):
            raise ValueError("dirty_kinds weights must be >= 0 and at least one positive when dirty_rate > 0")
        unknown = set(self.fault_rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {sorted(unknown)}; known kinds: {', '.join(FAULT_KINDS)}")
        if any(r < 0 for r in self.fault_rates.values()):
            raise ValueError("fault rates are faults per device and simulated hour; they must be >= 0")
        if not self.producer or not all(c.isalnum() or c in "-_" for c in self.producer):
            raise ValueError(f"producer '{self.producer}': use letters, digits, '-' and '_' (it names files)")
        if self.start is not None and self.start.tzinfo is None:
            object.__setattr__(self, "start", self.start.replace(tzinfo=UTC))


def fleet_rate(devices: int) -> float:
    """Readings per simulated second the first ``devices`` devices of the registry send together."""
    timing = load_device_types()
    return sum(1.0 / timing[d.device_type].reporting_interval_s for d in fleet(devices))


def simulated_length(config: FleetConfig) -> timedelta:
    """How much simulated time the run covers (estimated from the fleet's rate in readings mode)."""
    if config.duration is not None:
        return config.duration
    return timedelta(seconds=config.readings / fleet_rate(config.devices))


def default_start(config: FleetConfig, now: datetime) -> datetime:
    """A start that makes the run end at about ``now``: its simulated length back, to the minute."""
    start = now.astimezone(UTC) - simulated_length(config)
    return start.replace(second=0, microsecond=0)


@dataclass
class Batch:
    """Lines in arrival order. ``sizes`` are UTF-8 bytes including the newline; ``keys`` the device ids
    (Kinesis partition keys)."""

    lines: list[str]
    arrival_ms: np.ndarray
    keys: list[str]
    sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.lines)


@dataclass
class SimulationStats:
    readings: int = 0
    lines: int = 0
    dirty: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    first_event_ms: int | None = None
    last_event_ms: int | None = None

    @property
    def dirty_lines(self) -> int:
        return sum(self.dirty.values())

    @property
    def clean_lines(self) -> int:
        return self.lines - self.dirty_lines


@dataclass
class _Group:
    """The devices of one type, as arrays (device-major)."""

    device_type: str
    metrics: tuple[str, ...]
    interval_s: float
    silence_s: float
    ids: np.ndarray  # of str
    site_ids: list[str]
    prefixes: np.ndarray  # of str: the line up to the event time's value, per device
    suffixes: np.ndarray  # of str: the firmware field and the closing brace, per device
    template: str  # str.format template of a line, with the metrics' decimals
    phase_s: np.ndarray
    params: dict[str, dict[str, np.ndarray]]
    battery0: np.ndarray
    battery_rate: np.ndarray
    seq_next: np.ndarray


@dataclass
class _Fault:
    kind: str
    group: int
    device: int  # index within the group
    metric: str | None
    start_ms: int
    end_ms: int | None  # None: lasts ``budget`` readings
    budget: int = 0
    value: float | None = None
    delta: float = 0.0
    reached: float = 0.0
    readings: int = 0
    first_ms: int | None = None
    last_ms: int | None = None


def _window_grid(group: _Group, w0: float, w1: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Device index and event time (s since start) of each reading whose slot falls in [w0, w1)."""
    interval = group.interval_s
    k_lo = np.ceil((w0 - group.phase_s) / interval).astype(np.int64)
    k_hi = np.ceil((w1 - group.phase_s) / interval).astype(np.int64)
    counts = np.maximum(k_hi - k_lo, 0)
    total = int(counts.sum())
    device = np.repeat(np.arange(len(counts)), counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    k = k_lo[device] + within
    t = group.phase_s[device] + k * interval + rng.uniform(0.0, _JITTER * interval, total)
    return device, t


class Simulation:
    """Iterate to get :class:`Batch` es; labels and counts fill in as it runs."""

    def __init__(self, config: FleetConfig) -> None:
        if config.start is None:
            raise ValueError("FleetConfig.start is None; pass a start (produce() picks one for you)")
        self.config = config
        self.start_ms = int(round(config.start.timestamp() * 1000))
        self.stats = SimulationStats(
            dirty=dict.fromkeys((k for k, w in config.dirty_kinds.items() if w > 0), 0),
            faults=dict.fromkeys((k for k, r in config.fault_rates.items() if r > 0), 0),
        )
        self.fault_labels: list[dict[str, Any]] = []
        self.dirty_labels: list[dict[str, Any]] = []

        static, window, faults, dirty = np.random.SeedSequence(config.seed).spawn(4)
        self._rng = np.random.default_rng(window)
        self._frng = np.random.default_rng(faults)
        self._drng = np.random.default_rng(dirty)
        self._dirty = DirtyMaker(random.Random(int(dirty.generate_state(1)[0])))
        self._bands = load_bands()
        self._groups = self._build_groups(np.random.default_rng(static))
        self._active: list[_Fault] = []
        self._busy_until: list[np.ndarray] = [np.zeros(len(g.ids), dtype=np.int64) for g in self._groups]
        kinds = [k for k, w in config.dirty_kinds.items() if w > 0]
        weights = np.array([config.dirty_kinds[k] for k in kinds], dtype=float)
        self._dirty_kinds = kinds
        self._dirty_p = weights / weights.sum() if len(kinds) else weights
        rate = sum(1.0 / g.interval_s * len(g.ids) for g in self._groups)
        self._window_s = float(min(max(round(_READINGS_PER_WINDOW / rate / 60) * 60, 60), DAY_S))
        self._pending = _Items()

    # ---- set-up -------------------------------------------------------------------------------------
    def _build_groups(self, rng: np.random.Generator) -> list[_Group]:
        timing = load_device_types()
        devices = fleet(self.config.devices)
        groups = []
        for device_type in TYPE_ORDER:
            members = [d for d in devices if d.device_type == device_type]
            if not members:
                continue
            n = len(members)
            interval = timing[device_type].reporting_interval_s
            firmware = rng.choice(FIRMWARE_VERSIONS, size=n, p=FIRMWARE_WEIGHTS)
            params = {}
            for metric in DEVICE_TYPES[device_type]:
                signal = SIGNALS[(device_type, metric)]
                params[metric] = {
                    "offset": rng.normal(0.0, signal.offset_sd, n),
                    "amplitude": signal.daily_amplitude * rng.uniform(0.7, 1.3, n),
                    "peak_s": (signal.peak_hour + rng.normal(0.0, 1.0, n)) * 3600.0,
                    "drift": signal.drift_amplitude * rng.uniform(0.3, 1.0, n),
                    "drift_period_s": rng.uniform(3.0, 10.0, n) * DAY_S,
                    "drift_phase": rng.uniform(0.0, 2 * np.pi, n),
                }
            groups.append(
                _Group(
                    device_type=device_type,
                    metrics=DEVICE_TYPES[device_type],
                    interval_s=interval,
                    silence_s=timing[device_type].silence_after_s,
                    ids=np.array([d.device_id for d in members], dtype=object),
                    site_ids=[d.site_id for d in members],
                    prefixes=np.array(
                        [
                            f'{{"device_id":"{d.device_id}","device_type":"{device_type}",'
                            f'"site_id":"{d.site_id}","event_time":"'
                            for d in members
                        ],
                        dtype=object,
                    ),
                    suffixes=np.array([f',"firmware":"{fw}"}}' for fw in firmware], dtype=object),
                    template=_line_template(device_type),
                    phase_s=rng.uniform(0.0, interval, n),
                    params=params,
                    battery0=rng.uniform(0.0, 85.0, n),
                    battery_rate=rng.uniform(0.2, 1.0, n),
                    seq_next=np.ones(n, dtype=np.int64),
                )
            )
        return groups

    # ---- the run ------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        config = self.config
        end_s = config.duration.total_seconds() if config.duration is not None else None
        remaining = config.readings if config.readings is not None else None
        w0 = 0.0
        while True:
            w1 = w0 + self._window_s
            if end_s is not None:
                w1 = min(w1, end_s)
            items, taken = self._window(w0, w1, end_s, remaining)
            if remaining is not None:
                remaining -= taken
            last = (remaining is not None and remaining <= 0) or (end_s is not None and w1 >= end_s)
            if last:
                self._finish(end_s)
            batch = self._emit(items, None if last else self.start_ms + int(round(w1 * 1000)))
            if len(batch):
                yield batch
            if last:
                return
            w0 = w1

    def _window(self, w0: float, w1: float, end_s: float | None, remaining: int | None) -> tuple[_Items, int]:
        # Noise is drawn for every slot before faults remove any, so that faults change only the readings
        # they label: a run without faults has the same values everywhere else.
        grids = []
        for g in self._groups:
            device, t = _window_grid(g, w0, w1, self._rng)
            grids.append((device, t, self._rng.standard_normal((len(g.metrics), len(t)))))
        self._schedule_faults(w0, w1)
        keeps = []
        for gi, (device, t, _) in enumerate(grids):
            keep = np.ones(len(t), dtype=bool) if end_s is None else t < end_s
            for f in self._active:
                if f.kind == "dropout" and f.group == gi:
                    keep &= ~(
                        (device == f.device)
                        & (t * 1000 >= f.start_ms - self.start_ms)
                        & (t * 1000 < f.end_ms - self.start_ms)
                    )
            keeps.append(keep)
        grids = [(d[k], t[k], z[:, k]) for (d, t, z), k in zip(grids, keeps, strict=True)]
        total = sum(len(t) for _, t, _ in grids)
        if remaining is not None and total > remaining:
            times = np.concatenate([t for _, t, _ in grids])
            chosen = np.zeros(total, dtype=bool)
            chosen[np.argsort(times, kind="stable")[:remaining]] = True
            parts = np.split(chosen, np.cumsum([len(t) for _, t, _ in grids])[:-1])
            grids = [(d[k], t[k], z[:, k]) for (d, t, z), k in zip(grids, parts, strict=True)]
            total = remaining

        items = _Items()
        affected_parts = []
        for gi, (device, t, noise) in enumerate(grids):
            lines, arrival, keys, affected = self._readings(gi, device, t, noise)
            ascii_sizes = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) + 1
            items.extend(lines, arrival, keys, ascii_sizes)
            affected_parts.append(affected)
        if total:
            self.stats.readings += total
            first, last = int(items.arrival.min()), int(items.arrival.max())
            self.stats.first_event_ms = first if self.stats.first_event_ms is None else self.stats.first_event_ms
            self.stats.last_event_ms = max(last, self.stats.last_event_ms or last)
            self._retire_faults(self.start_ms + int(round(w1 * 1000)))
            items = self._make_dirty(items, np.concatenate(affected_parts))
        return items, total

    def _readings(
        self, gi: int, device: np.ndarray, t: np.ndarray, noise_rows: np.ndarray
    ) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
        """Format the readings of one group (device-major, time-ascending per device)."""
        g = self._groups[gi]
        n_dev = len(g.ids)
        counts = np.bincount(device, minlength=n_dev)
        starts = np.cumsum(counts) - counts
        seq = g.seq_next[device] + (np.arange(len(device)) - starts[device])
        g.seq_next += counts
        t_ms = self.start_ms + np.round(t * 1000).astype(np.int64)
        abs_s = t_ms / 1000.0
        time_of_day = np.mod(abs_s, DAY_S)

        values: dict[str, np.ndarray] = {}
        for metric, noise in zip(g.metrics, noise_rows, strict=True):
            signal = SIGNALS[(g.device_type, metric)]
            p = g.params[metric]
            if signal.shape == "activity":
                activity = np.clip(np.cos(2 * np.pi * (time_of_day - p["peak_s"][device]) / DAY_S) + 0.3, 0.05, 1.3)
                v = signal.base + p["offset"][device] + activity * signal.noise_sd * noise
            else:
                v = (
                    signal.base
                    + p["offset"][device]
                    + p["amplitude"][device] * np.cos(2 * np.pi * (time_of_day - p["peak_s"][device]) / DAY_S)
                    + p["drift"][device]
                    * np.sin(2 * np.pi * t / p["drift_period_s"][device] + p["drift_phase"][device])
                    + signal.noise_sd * noise
                )
            band = self._bands[(g.device_type, metric)]
            values[metric] = np.clip(v, band.safe_min, band.safe_max)
        battery = 100.0 - np.mod(g.battery0[device] + g.battery_rate[device] * t / 3600.0, 85.0)

        affected = self._apply_faults(gi, device, starts, counts, t_ms, values)

        et = np.datetime_as_string(t_ms.astype("datetime64[ms]"), unit="ms").tolist()
        lines = list(
            map(
                g.template.format,
                g.prefixes[device].tolist(),
                et,
                seq.tolist(),
                *[values[m].tolist() for m in g.metrics],
                battery.tolist(),
                g.suffixes[device].tolist(),
            )
        )
        keys = g.ids[device].tolist()
        return lines, t_ms, keys, affected

    # ---- faults -------------------------------------------------------------------------------------
    def _schedule_faults(self, w0: float, w1: float) -> None:
        rng = self._frng
        hours = (w1 - w0) / 3600.0
        candidates = []
        for kind in FAULT_KINDS:
            rate = self.config.fault_rates.get(kind, 0.0)
            if rate <= 0:
                continue
            for gi, g in enumerate(self._groups):
                counts = rng.poisson(rate * hours, len(g.ids))
                for device in np.nonzero(counts)[0].tolist():
                    for start in rng.uniform(w0, w1, counts[device]).tolist():
                        candidates.append((int(round(start * 1000)) + self.start_ms, gi, device, kind))
        for start_ms, gi, device, kind in sorted(candidates):
            if self._busy_until[gi][device] > start_ms:
                continue  # one fault at a time per device, so that labels never overlap
            self._active.append(self._new_fault(kind, gi, device, start_ms))

    def _new_fault(self, kind: str, gi: int, device: int, start_ms: int) -> _Fault:
        rng = self._frng
        g = self._groups[gi]
        interval_ms = int(g.interval_s * 1000)
        if kind == "dropout":
            shortest = max(2 * g.silence_s, 600.0)
            end_ms = start_ms + int(rng.uniform(shortest, shortest + 3000.0) * 1000)
            fault = _Fault(kind, gi, device, None, start_ms, end_ms)
            self._busy_until[gi][device] = end_ms
            return fault
        metric = g.metrics[int(rng.integers(len(g.metrics)))]
        band = self._bands[(g.device_type, metric)]
        if kind == "spike":
            fault = _Fault(kind, gi, device, metric, start_ms, None, budget=1, value=_spike_value(band, rng))
            # Without alert limits (distance) a spike is a jump of 6-10 noise deviations from the current
            # value, decided when the fault meets its reading.
            fault.delta = rng.uniform(6.0, 10.0) * SIGNALS[(g.device_type, metric)].noise_sd
        elif kind == "out_of_range":
            fault = _Fault(
                kind,
                gi,
                device,
                metric,
                start_ms,
                None,
                budget=int(rng.integers(1, 6)),
                value=_out_of_range_value(band, rng),
            )
        elif kind == "stuck":
            fault = _Fault(kind, gi, device, metric, start_ms, start_ms + int(rng.uniform(900, 7200) * 1000))
        elif kind == "drift":
            toward_max = band.alert_max is not None or band.alert_min is None
            if band.alert_max is not None and band.alert_min is not None:
                toward_max = bool(rng.random() < 0.5)
            delta = rng.uniform(0.3, 0.6) * (band.safe_max - band.safe_min)
            fault = _Fault(
                kind,
                gi,
                device,
                metric,
                start_ms,
                start_ms + int(rng.uniform(3600, 4 * 3600) * 1000),
                delta=delta if toward_max else -delta,
            )
        else:
            raise ValueError(f"unknown fault kind '{kind}'; known kinds: {', '.join(FAULT_KINDS)}")
        busy = fault.end_ms if fault.end_ms is not None else start_ms + (fault.budget + 1) * interval_ms
        self._busy_until[gi][device] = busy
        return fault

    def _apply_faults(
        self,
        gi: int,
        device: np.ndarray,
        starts: np.ndarray,
        counts: np.ndarray,
        t_ms: np.ndarray,
        values: dict[str, np.ndarray],
    ) -> np.ndarray:
        affected = np.zeros(len(device), dtype=bool)
        g = self._groups[gi]
        for f in self._active:
            if f.group != gi or f.kind == "dropout":
                continue
            lo = int(starts[f.device])
            hi = lo + int(counts[f.device])
            times = t_ms[lo:hi]
            a = lo + int(np.searchsorted(times, f.start_ms, "left"))
            b = lo + (int(np.searchsorted(times, f.end_ms, "right")) if f.end_ms is not None else len(times))
            if f.end_ms is None:
                b = min(b, a + f.budget)
            if b <= a:
                continue
            v = values[f.metric]
            band = self._bands[(g.device_type, f.metric)]
            decimals = SIGNALS[(g.device_type, f.metric)].decimals
            if f.kind == "spike":
                if f.value is None:
                    up = v[a] + f.delta <= band.valid_max
                    f.value = float(np.clip(v[a] + (f.delta if up else -f.delta), band.valid_min, band.valid_max))
                v[a:b] = f.value
            elif f.kind == "out_of_range":
                span = band.valid_max - band.valid_min
                v[a:b] = f.value + np.sign(f.value - band.valid_min) * self._frng.uniform(0, 0.02 * span, b - a)
            elif f.kind == "stuck":
                if f.value is None:
                    f.value = _as_sent(v[a], decimals)
                v[a:b] = f.value
            elif f.kind == "drift":
                ramp = (t_ms[a:b] - f.start_ms) / (f.end_ms - f.start_ms)
                v[a:b] = np.clip(v[a:b] + f.delta * ramp, band.valid_min, band.valid_max)
                f.reached = float(f.delta * ramp[-1])
            affected[a:b] = True
            f.readings += b - a
            f.budget = max(f.budget - (b - a), 0)
            f.first_ms = int(t_ms[a]) if f.first_ms is None else f.first_ms
            f.last_ms = int(t_ms[b - 1])
        return affected

    def _retire_faults(self, now_ms: int) -> None:
        still = []
        for f in self._active:
            done = (f.end_ms is None and f.budget == 0 and f.readings > 0) or (
                f.end_ms is not None and f.end_ms <= now_ms
            )
            if done:
                self._label_fault(f, run_end_ms=None)
            else:
                still.append(f)
        self._active = still

    def _finish(self, end_s: float | None) -> None:
        run_end = self.start_ms + int(end_s * 1000) if end_s is not None else self.stats.last_event_ms
        for f in self._active:
            self._label_fault(f, run_end_ms=run_end)
        self._active = []
        self.fault_labels.sort(key=lambda r: (r["start"], r["device_id"], r["kind"]))

    def _label_fault(self, f: _Fault, run_end_ms: int | None) -> None:
        g = self._groups[f.group]
        if f.kind == "dropout":
            end_ms = f.end_ms if run_end_ms is None else min(f.end_ms, run_end_ms)
            if end_ms <= f.start_ms:
                return
            start, end = f.start_ms, end_ms
        else:
            if f.readings == 0:
                return
            start, end = f.first_ms, f.last_ms
        label: dict[str, Any] = {
            "device_id": g.ids[f.device],
            "device_type": g.device_type,
            "site_id": g.site_ids[f.device],
            "metric": f.metric,
            "kind": f.kind,
            "start": _fmt_ms(start),
            "end": _fmt_ms(end),
            "readings": None if f.kind == "dropout" else f.readings,
        }
        if f.kind in ("spike", "stuck"):
            label["value"] = _as_sent(f.value, SIGNALS[(g.device_type, f.metric)].decimals)
        elif f.kind == "drift":
            label["delta"] = round(f.reached, 3)  # the shift at ``end`` (less if the run ended first)
        self.fault_labels.append(label)
        self.stats.faults[f.kind] = self.stats.faults.get(f.kind, 0) + 1

    # ---- dirty records and arrival order ------------------------------------------------------------
    def _make_dirty(self, items: _Items, affected: np.ndarray) -> _Items:
        rate = self.config.dirty_rate
        if rate <= 0 or not self._dirty_kinds:
            return items
        n = len(items.lines)
        chosen = np.nonzero((self._drng.random(n) < rate) & ~affected)[0]
        if not len(chosen):
            return items
        kinds = self._drng.choice(len(self._dirty_kinds), size=len(chosen), p=self._dirty_p)
        extra = _Items()
        for i, k in zip(chosen.tolist(), kinds.tolist(), strict=True):
            kind = self._dirty_kinds[k]
            dirty = self._dirty.make(kind, items.lines[i], int(items.arrival[i]))
            self.dirty_labels.append(dirty.label)
            self.stats.dirty[kind] += 1
            if DIRTY_KINDS[kind].adds_line:
                extra.append(dirty.line, dirty.arrival_ms, dirty.key)
            else:
                items.replace(i, dirty.line, dirty.arrival_ms)
        items.merge(extra)
        return items

    def _emit(self, items: _Items, until_ms: int | None) -> Batch:
        pending = self._pending
        pending.merge(items)
        order = np.argsort(pending.arrival, kind="stable")
        arrival = pending.arrival[order]
        cut = len(order) if until_ms is None else int(np.searchsorted(arrival, until_ms, "left"))
        lines = np.array(pending.lines, dtype=object)[order].tolist()
        keys = np.array(pending.keys, dtype=object)[order].tolist()
        sizes = pending.sizes[order]
        self._pending = _Items()
        self._pending.extend(lines[cut:], arrival[cut:], keys[cut:], sizes[cut:])
        self.stats.lines += cut
        return Batch(lines[:cut], arrival[:cut], keys[:cut], sizes[:cut])


class _Items:
    """Lines with their arrival times (epoch ms), partition keys and sizes (UTF-8 bytes + newline)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.keys: list[str] = []
        self._arrival: list[np.ndarray] = []
        self._sizes: list[np.ndarray] = []

    @property
    def arrival(self) -> np.ndarray:
        if len(self._arrival) != 1:
            self._arrival = [np.concatenate(self._arrival) if self._arrival else np.zeros(0, dtype=np.int64)]
        return self._arrival[0]

    @property
    def sizes(self) -> np.ndarray:
        if len(self._sizes) != 1:
            self._sizes = [np.concatenate(self._sizes) if self._sizes else np.zeros(0, dtype=np.int64)]
        return self._sizes[0]

    def extend(self, lines: list[str], arrival: np.ndarray, keys: list[str], sizes: np.ndarray | None = None) -> None:
        """Add lines; ``sizes`` may be given when known (ASCII lines: ``len + 1``)."""
        self.lines.extend(lines)
        self.keys.extend(keys)
        self._arrival.append(np.asarray(arrival, dtype=np.int64))
        self._sizes.append(line_sizes(lines) if sizes is None else np.asarray(sizes, dtype=np.int64))

    def append(self, line: str, arrival_ms: int, key: str) -> None:
        self.extend([line], np.array([arrival_ms], dtype=np.int64), [key])

    def replace(self, i: int, line: str, arrival_ms: int) -> None:
        self.lines[i] = line
        self.arrival[i] = arrival_ms
        self.sizes[i] = len(line.encode()) + 1

    def merge(self, other: _Items) -> None:
        if other.lines:
            self.extend(other.lines, other.arrival, other.keys, other.sizes)


def line_sizes(lines: list[str]) -> np.ndarray:
    """UTF-8 bytes of each line plus its newline."""
    sizes = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) + 1
    if not all(map(str.isascii, lines)):
        for i, line in enumerate(lines):
            if not line.isascii():
                sizes[i] = len(line.encode()) + 1
    return sizes


def _line_template(device_type: str) -> str:
    """The ``str.format`` template of a reading line of ``device_type``, in contract field order.

    Fields: prefix (device_id, device_type, site_id, and the start of event_time), event time, seq,
    the metrics, battery_pct, suffix (firmware). Literal format specs round each metric to its decimals;
    formatting this way is several times faster than ``json.dumps`` per reading.
    """
    metrics = "".join(f'"{m}":{{:.{SIGNALS[(device_type, m)].decimals}f}},' for m in DEVICE_TYPES[device_type])
    return '{}{}Z","seq":{},' + metrics + f'"battery_pct":{{:.{BATTERY_DECIMALS}f}}' + "{}"


def _as_sent(value: float, decimals: int) -> float:
    """The value a line carries after formatting with ``decimals``."""
    return float(f"{value:.{decimals}f}")


def _spike_value(band: Band, rng: np.random.Generator) -> float | None:
    """Beyond an alert limit but inside the valid range: a spike that passes bronze and raises an alert.
    None for a metric without alert limits (the spike is then a jump from the current value)."""
    if band.alert_max is not None and (band.alert_min is None or rng.random() < 0.5):
        return band.alert_max + rng.uniform(0.1, 0.6) * (band.valid_max - band.alert_max)
    if band.alert_min is not None:
        return band.alert_min - rng.uniform(0.1, 0.6) * (band.alert_min - band.valid_min)
    return None


def _out_of_range_value(band: Band, rng: np.random.Generator) -> float:
    span = band.valid_max - band.valid_min
    if rng.random() < 0.5:
        return band.valid_max + rng.uniform(0.05, 0.5) * span
    return band.valid_min - rng.uniform(0.05, 0.5) * span


def _fmt_ms(ms: int) -> str:
    return format_event_time(datetime.fromtimestamp(ms / 1000, tz=UTC))
