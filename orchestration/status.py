"""``lakehouse status``: what each layer holds (rows, partitions, last run, freshness)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lakehouse import ops
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.warehouse import GOLD_ANOMALIES, GOLD_DEVICE_HEALTH, GOLD_HOURLY, SILVER_READINGS, SILVER_REJECTED


@dataclass
class LayerStatus:
    layer: str
    table: str
    rows: int | None
    partitions: int | None
    newest_event_at: datetime | None
    last_written_at: datetime | None

    @property
    def freshness(self) -> str:
        if self.newest_event_at is None:
            return ""
        lag = datetime.now(UTC).replace(tzinfo=None) - self.newest_event_at
        seconds = int(lag.total_seconds())
        if seconds < 0:
            return "in the future"
        if seconds < 120:
            return f"{seconds} s"
        if seconds < 7200:
            return f"{seconds // 60} min"
        return f"{seconds // 3600} h"


def _parquet_status(con, layer: str, uri: str, time_column: str | None, written_column: str) -> LayerStatus:
    files = list(Path(uri).glob("*/*.parquet"))
    if not files:
        return LayerStatus(layer, uri, 0, 0, None, None)
    time_expr = f"max({time_column})" if time_column else "null"
    rows, newest, written = con.execute(
        f"select count(*), {time_expr}, max({written_column}) from read_parquet('{uri}/*/*.parquet')"
    ).fetchall()[0]
    partitions = len({f.parent.name for f in files})
    return LayerStatus(layer, uri, rows, partitions, newest, written)


_TABLES = (
    ("silver", SILVER_READINGS.relation, "event_at", "event_date"),
    ("silver", SILVER_REJECTED.relation, None, None),
    ("gold", GOLD_HOURLY.relation, "hour_at", "hour_at"),
    ("gold", GOLD_ANOMALIES.relation, "ended_at", None),
    ("gold", GOLD_DEVICE_HEALTH.relation, "last_seen_at", None),
)


def layer_status(settings: Settings) -> list[LayerStatus]:
    import duckdb

    lake = settings.lake_root
    if not lake.is_local:
        raise LakehouseError(
            f"status reads the local warehouse; {lake.root} is remote. Query Athena instead "
            "(the same tables live in the Glue databases of the athena target)."
        )
    statuses = []
    with duckdb.connect() as con:
        statuses.append(_parquet_status(con, "bronze", lake.bronze_readings, "event_time", "_ingested_at"))
        statuses.append(_parquet_status(con, "quarantine", lake.quarantine_readings, None, "_ingested_at"))
    if not lake.warehouse.exists():
        return statuses
    with duckdb.connect(str(lake.warehouse), read_only=True) as con:
        existing = {
            f"{s}.{t}"
            for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        }
        for layer, table, time_column, partition_column in _TABLES:
            if table not in existing:
                statuses.append(LayerStatus(layer, table, None, None, None, None))
                continue
            newest = f"max({time_column})" if time_column else "null"
            parts = f"count(distinct {partition_column})" if partition_column else "null"
            rows, newest_at, partitions = con.execute(f"select count(*), {newest}, {parts} from {table}").fetchall()[0]
            statuses.append(LayerStatus(layer, table, rows, partitions, newest_at, None))
    return statuses


def last_run(settings: Settings) -> dict | None:
    runs = ops.read(settings.lake_root, "ops_runs")
    if not runs:
        return None
    latest = max(runs, key=lambda r: r.get("cycle_started_at") or "")
    steps = [r for r in runs if r["run_id"] == latest["run_id"]]
    failed = [r["step"] for r in steps if r["status"] == "failed"]
    return {
        "run_id": latest["run_id"],
        "started_at": latest.get("cycle_started_at"),
        "status": "failed" if failed else "ok",
        "failed_steps": failed,
    }


def format_status(statuses: list[LayerStatus], run: dict | None) -> str:
    header = f"{'layer':<11}{'table':<40}{'rows':>12}{'partitions':>12}  {'newest event':<24}{'freshness':>10}"
    lines = [header, "-" * len(header)]
    for s in statuses:
        table = s.table if len(s.table) <= 38 else "..." + s.table[-35:]
        rows = "missing" if s.rows is None else f"{s.rows:,}"
        parts = "" if s.partitions is None else f"{s.partitions:,}"
        newest = s.newest_event_at.isoformat(sep=" ", timespec="seconds") if s.newest_event_at else ""
        lines.append(f"{s.layer:<11}{table:<40}{rows:>12}{parts:>12}  {newest:<24}{s.freshness:>10}")
    if run:
        extra = f" (failed: {', '.join(run['failed_steps'])})" if run["failed_steps"] else ""
        lines.append(f"\nlast run: {run['run_id']} started {run['started_at']}: {run['status']}{extra}")
    else:
        lines.append("\nlast run: none yet (lakehouse run)")
    return "\n".join(lines)
