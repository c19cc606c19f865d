"""The device registry: which devices exist, their type, site and install date.

Device identity is fixed by its index, so the dbt seed ``device_registry.csv`` and the simulator agree
without sharing state: device ``i`` (1-based) has type ``TYPE_ORDER[(i-1) % 4]`` and site
``site-{(i-1) % SITES + 1:02d}``. ``lakehouse registry --write`` regenerates the seed from this module.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lakehouse.contract import DEVICE_TYPES, device_id_for

TYPE_ORDER = tuple(DEVICE_TYPES)  # environmental, machine, wearable, step_trainer
SITES = 5
REGISTRY_SIZE = 1000
_FIRST_INSTALL = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Device:
    index: int
    device_id: str
    device_type: str
    site_id: str
    installed_at: datetime


def device(index: int) -> Device:
    if not 1 <= index <= REGISTRY_SIZE:
        raise ValueError(f"device index {index} is outside the registry (1..{REGISTRY_SIZE})")
    device_type = TYPE_ORDER[(index - 1) % len(TYPE_ORDER)]
    return Device(
        index=index,
        device_id=device_id_for(device_type, index),
        device_type=device_type,
        site_id=f"site-{(index - 1) % SITES + 1:02d}",
        installed_at=_FIRST_INSTALL + timedelta(days=(index * 7) % 365),
    )


def fleet(size: int) -> list[Device]:
    """The first ``size`` devices of the registry."""
    if not 1 <= size <= REGISTRY_SIZE:
        raise ValueError(
            f"--devices {size}: the registry holds devices 1..{REGISTRY_SIZE}; choose a fleet size in that range"
        )
    return [device(i) for i in range(1, size + 1)]


def registry_csv() -> str:
    """The seed file's content: one row per registered device."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["device_id", "device_type", "site_id", "installed_at"])
    for d in fleet(REGISTRY_SIZE):
        writer.writerow([d.device_id, d.device_type, d.site_id, d.installed_at.strftime("%Y-%m-%d %H:%M:%S")])
    return out.getvalue()
