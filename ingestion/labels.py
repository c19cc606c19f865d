"""Ground truth beside the data: what the simulator injected, under ``<lake>/landing/_labels/``.

The folder starts with ``_`` so Spark and the landing readers skip it. Two NDJSON files per run:

- ``faults-<producer>-<start>.ndjson``, one line per injected fault: ``device_id``, ``device_type``,
  ``site_id``, ``metric`` (null for a dropout), ``kind`` (:data:`FAULT_KINDS`), ``start`` and ``end``
  (event times of the first and last reading the fault changed; for a dropout, the silent interval),
  ``readings`` (readings changed; null for a dropout), and ``value`` (spike, stuck) or ``delta`` (drift);
- ``dirty-<producer>-<start>.ndjson``, one line per dirty record: ``kind``
  (:data:`ingestion.dirty.DIRTY_KINDS`), ``destination`` (``quarantine`` or ``bronze``), ``reason`` (the
  quarantine reason bronze must give it, or null), ``device_id``, ``seq``, ``event_time`` (as sent),
  ``arrival_time``, ``raw_line`` (the exact line), and per kind ``delay_s`` (late),
  ``true_event_time`` (clock skew) or ``extra_fields``.
"""

from __future__ import annotations

import json
from typing import Any

from lakehouse.lake import Lake
from lakehouse.storage import Storage, storage_for

FAULT_KINDS = ("spike", "stuck", "drift", "dropout", "out_of_range")
# Expected faults per device and simulated hour. The demo fleet (50 devices, about 4 simulated hours)
# gets about ten spikes and a few of each other kind.
DEFAULT_FAULT_RATES: dict[str, float] = {
    "spike": 0.05,
    "stuck": 0.02,
    "drift": 0.02,
    "dropout": 0.02,
    "out_of_range": 0.02,
}
LABELS_FOLDER = ("landing", "_labels")


def labels_uri(lake: Lake, name: str) -> str:
    return lake.uri(*LABELS_FOLDER, name)


def write_labels(lake: Lake, name: str, rows: list[dict[str, Any]], storage: Storage | None = None) -> str:
    """Write label rows as NDJSON under ``<lake>/landing/_labels/``; returns the file's URI. ``storage``:
    the lake's (with the settings' endpoint and region); default: one chosen by the URI alone."""
    uri = labels_uri(lake, name)
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    (storage or storage_for(uri)).write_bytes(uri, data)
    return uri


def read_labels(uri: str) -> list[dict[str, Any]]:
    """The rows of a labels file written by :func:`write_labels`."""
    text = storage_for(uri).read_bytes(uri).decode()
    return [json.loads(line) for line in text.split("\n") if line]
