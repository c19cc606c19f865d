"""Run history and gate results, kept as append-only NDJSON records under ``<lake>/ops/<table>/``.

Files rather than warehouse tables, so that writing history never competes with dbt or a dashboard for
DuckDB's single writer lock, and so that it works the same on an S3 lake. ``ops_views`` exposes them
to DuckDB as views named after the tables (``ops_runs``, ``ops_gate_results``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from lakehouse.lake import Lake
from lakehouse.storage import storage_for

if TYPE_CHECKING:
    from lakehouse.config import Settings

OPS_TABLES = ("ops_runs", "ops_gate_results")


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def append(lake: Lake, table: str, rows: Iterable[dict[str, Any]], *, settings: Settings | None = None) -> str | None:
    """Write rows as one new NDJSON file of ``table``; returns its URI (None when there are no rows).
    ``settings``: how to reach an S3 lake (lakehouse/aws.py)."""
    if table not in OPS_TABLES:
        raise ValueError(f"unknown ops table '{table}'; known: {OPS_TABLES}")
    lines = [json.dumps(row, default=_default, sort_keys=True) for row in rows]
    if not lines:
        return None
    uri = f"{lake.ops(table)}/{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.json"
    storage_for(uri, settings).write_bytes(uri, ("\n".join(lines) + "\n").encode())
    return uri


def read(lake: Lake, table: str, *, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every record of ``table``, oldest file first."""
    storage = storage_for(lake.ops(table), settings)
    rows: list[dict[str, Any]] = []
    for uri in storage.list(lake.ops(table), suffix=".json"):
        rows.extend(json.loads(line) for line in storage.read_bytes(uri).decode().splitlines() if line)
    return rows
