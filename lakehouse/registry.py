"""The simulator's fleet: which devices it simulates, their type, site and install date.

Device identity is fixed by its index: device ``i`` (1-based) has type ``TYPE_ORDER[(i-1) % 4]`` and
site ``site-{(i-1) % SITES + 1:02d}``. These 1,000 devices are the default catalogue of a new lake
(``lakehouse.catalogue_store.default_entries``); the user's own devices are catalogue data, not code.
"""

from __future__ import annotations

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
