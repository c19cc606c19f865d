"""The queries behind the dashboard's pages, as functions that return DataFrames and small records.

Every query takes its values as parameters (``con.execute(sql, [params])``): what a user types into a
filter is data and never becomes SQL text. The only names put into SQL text are metric column names of
the lake's catalogue (``lakehouse.fleet``, names the catalogue validated), never anything typed into a filter.
Which metrics a device type reports, their units and alert limits come from that catalogue too, so a
user's own device types and metrics show like the simulator's.

Warehouse queries run on a read-only connection to the dashboard's private copy of the warehouse
(:mod:`dashboards.snapshot`); bronze and quarantine Parquet are read with an in-memory DuckDB; run
history and gate results come from the ops records under ``<lake>/ops/``.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dashboards.snapshot import RefreshResult, WarehouseSnapshot
from lakehouse import warehouse
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.fleet import Fleet, load_fleet
from lakehouse.lake import Lake
from lakehouse.ops import OPS_TABLES
from lakehouse.storage import LocalStorage

DEVICE_HEALTH = warehouse.GOLD_DEVICE_HEALTH.relation
ANOMALIES = warehouse.GOLD_ANOMALIES.relation
HOURLY = warehouse.GOLD_HOURLY.relation
SILVER_READINGS = warehouse.SILVER_READINGS.relation
SILVER_REJECTED = warehouse.SILVER_REJECTED.relation

# Worst first, for sorting the fleet table.
HEALTH_ORDER = ("critical", "silent", "degraded", "healthy")
SEVERITY_ORDER = ("critical", "warning", "info")
RESOLUTIONS = ("hourly", "readings")  # gold's hourly aggregates, or silver's accepted readings


class NoWarehouse(LakehouseError):
    """The lake has no warehouse yet, or none could be copied."""


class DashboardData:
    """What the pages read from one local lake: a private copy of the warehouse, Parquet, ops records."""

    def __init__(self, lake: Lake, snapshot_dir: Path | None = None, min_refresh_interval_s: float = 2.0) -> None:
        if not lake.is_local:
            raise LakehouseError(
                f"the local dashboard reads the DuckDB warehouse of a local lake, and {lake.root} is remote; "
                f"use `lakehouse quicksight deploy` for an s3:// lake, or point --lake at a local folder"
            )
        self.lake = lake
        directory = snapshot_dir or Path(tempfile.mkdtemp(prefix="lakehouse-dashboard-"))
        self.snapshot = WarehouseSnapshot(lake.warehouse, directory, min_interval_s=min_refresh_interval_s)
        self._ops = {table: OpsHistory(lake, table) for table in OPS_TABLES}

    def refresh(self, force: bool = False) -> RefreshResult:
        return self.snapshot.refresh(force=force)

    @contextmanager
    def warehouse(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection to the current copy of the warehouse, closed on the way out."""
        current = self.snapshot.current
        if current is None:
            raise NoWarehouse(
                f"no copy of the warehouse {self.lake.warehouse} yet: it does not exist or dbt is writing it; "
                f"run `lakehouse demo` or `lakehouse run`, then reload"
            )
        con = duckdb.connect(str(current.path), read_only=True)
        try:
            yield con
        finally:
            con.close()

    def fleet(self) -> Fleet:
        """The lake's catalogue as the pages use it (read each time: an import may have changed it)."""
        return load_fleet(Settings().with_overrides(lake=self.lake.root))

    def ops_records(self, table: str) -> list[dict[str, Any]]:
        return self._ops[table].records()


class OpsHistory:
    """The records of one ops table, read incrementally: ops files are written once and never change."""

    def __init__(self, lake: Lake, table: str) -> None:
        self.uri = lake.ops(table)
        self._storage = LocalStorage()
        self._files: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            uris = self._storage.list(self.uri, suffix=".json")
            for uri in uris:
                if uri not in self._files:
                    text = self._storage.read_bytes(uri).decode()
                    self._files[uri] = [json.loads(line) for line in text.splitlines() if line]
            return [row for uri in uris for row in self._files[uri]]


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    return con.execute(sql, list(params)).df()


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> tuple:
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0] if rows else ()


def existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall()
    return {name for (name,) in rows}


def require_tables(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    missing = sorted(set(tables) - existing_tables(con))
    if missing:
        raise NoWarehouse(
            f"the warehouse has no {', '.join(missing)} yet; build gold with `lakehouse run` (or `lakehouse demo`)"
        )


# ---- fleet overview -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetSummary:
    as_of_at: datetime | None  # the fleet's clock: gold_device_health's reference time
    devices: int  # registered devices with accepted readings
    online: int  # devices whose last reading is within their type's silence limit
    by_status: pd.DataFrame  # health_status, devices

    @property
    def offline(self) -> int:
        return self.devices - self.online


def fleet_summary(con: duckdb.DuckDBPyConnection) -> FleetSummary:
    require_tables(con, DEVICE_HEALTH)
    devices, online, as_of_at = _one(
        con,
        f"select count(*), count(*) filter (where health_status <> ?), max(as_of_at) from {DEVICE_HEALTH}",
        ["silent"],
    )
    by_status = _df(
        con,
        f"select health_status, count(*) as devices from {DEVICE_HEALTH} group by health_status "
        f"order by list_position(?, health_status), health_status",
        [list(HEALTH_ORDER)],
    )
    return FleetSummary(as_of_at, int(devices), int(online), by_status)


def anomaly_window(as_of_at: datetime | None, hours: int = 24) -> tuple[datetime, datetime]:
    """The last ``hours`` of the fleet's clock (or of the wall clock when there is no fleet yet)."""
    until = as_of_at or datetime.now(UTC).replace(tzinfo=None)
    return until - timedelta(hours=hours), until


def anomalies_by_kind_and_site(con: duckdb.DuckDBPyConnection, since: datetime, until: datetime) -> pd.DataFrame:
    """Anomaly windows that overlap [since, until], counted by kind, site and severity."""
    require_tables(con, ANOMALIES)
    return _df(
        con,
        f"select anomaly_kind, site_id, severity, count(*) as anomalies from {ANOMALIES} "
        f"where ended_at >= ? and started_at <= ? group by all order by anomaly_kind, site_id, severity",
        [since, until],
    )


def fleet_devices(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every device of gold_device_health, worst status first."""
    require_tables(con, DEVICE_HEALTH)
    return _df(
        con,
        f"select device_id, device_type, site_id, health_status, last_seen_at, readings_24h, "
        f"round(completeness_24h, 3) as completeness_24h, battery_pct, open_anomalies from {DEVICE_HEALTH} "
        f"order by list_position(?, health_status), device_id",
        [list(HEALTH_ORDER)],
    )


# ---- device detail --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    device_id: str
    device_type: str
    site_id: str
    health_status: str
    last_seen_at: datetime | None
    battery_pct: float | None
    open_anomalies: int
    as_of_at: datetime | None
    metrics: tuple[str, ...] = ()  # what its device type reports (the catalogue's), silver's columns


def device(con: duckdb.DuckDBPyConnection, device_id: str, fleet: Fleet) -> Device | None:
    require_tables(con, DEVICE_HEALTH)
    rows = con.execute(
        f"select device_id, device_type, site_id, health_status, last_seen_at, battery_pct, open_anomalies, "
        f"as_of_at from {DEVICE_HEALTH} where device_id = ?",
        [device_id],
    ).fetchall()
    if not rows:
        return None
    found = Device(*rows[0])
    return replace(found, metrics=fleet.reported.get(found.device_type, ()))


def device_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    require_tables(con, DEVICE_HEALTH)
    return [d for (d,) in con.execute(f"select device_id from {DEVICE_HEALTH} order by device_id").fetchall()]


def device_series(
    con: duckdb.DuckDBPyConnection,
    dev: Device,
    since: datetime,
    until: datetime,
    resolution: str = "hourly",
) -> pd.DataFrame:
    """The device's metrics over [since, until] in long form: event_at, metric, value, min_value, max_value.

    ``hourly``: gold's hourly average with the hour's min and max; ``readings``: every accepted reading
    from silver (min and max equal the value).
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution '{resolution}' is not one of {RESOLUTIONS}")
    if not dev.metrics:
        return pd.DataFrame(columns=["event_at", "metric", "value", "min_value", "max_value"])
    if resolution == "hourly":
        require_tables(con, HOURLY)
        return _df(
            con,
            f"select hour_at as event_at, metric, avg_value as value, min_value, max_value from {HOURLY} "
            f"where device_id = ? and hour_at between ? and ? order by metric, event_at",
            [dev.device_id, since, until],
        )
    require_tables(con, SILVER_READINGS)
    # Column names from the catalogue (validated metric names that silver models), not from a filter.
    columns = ", ".join(dev.metrics)
    return _df(
        con,
        f"select event_at, metric, value, value as min_value, value as max_value from ("
        f"unpivot (select event_at, {columns} from {SILVER_READINGS} "
        f"where device_id = ? and event_at between ? and ?) on {columns} into name metric value value"
        f") order by metric, event_at",
        [dev.device_id, since, until],
    )


def first_hour(con: duckdb.DuckDBPyConnection, device_id: str) -> datetime | None:
    """The first hour with readings of the device (the start of "everything")."""
    require_tables(con, HOURLY)
    (first,) = _one(con, f"select min(hour_at) from {HOURLY} where device_id = ?", [device_id])
    return first


def count_readings(con: duckdb.DuckDBPyConnection, device_id: str, since: datetime, until: datetime) -> int:
    require_tables(con, SILVER_READINGS)
    (count,) = _one(
        con,
        f"select count(*) from {SILVER_READINGS} where device_id = ? and event_at between ? and ?",
        [device_id, since, until],
    )
    return int(count)


def device_anomalies(con: duckdb.DuckDBPyConnection, device_id: str, since: datetime, until: datetime) -> pd.DataFrame:
    """The device's anomaly windows that overlap [since, until], newest first."""
    require_tables(con, ANOMALIES)
    return _df(
        con,
        f"select anomaly_kind, metric, severity, started_at, ended_at, round(score, 3) as score, peak_value, "
        f"reading_count from {ANOMALIES} where device_id = ? and ended_at >= ? and started_at <= ? "
        f"order by started_at desc",
        [device_id, since, until],
    )


@dataclass(frozen=True)
class Thresholds:
    metric: str
    alert_min: float | None
    alert_max: float | None
    valid_min: float
    valid_max: float


def thresholds(device_type: str, fleet: Fleet) -> dict[str, Thresholds]:
    """Alert and valid limits of the device type's metrics, from the lake's catalogue."""
    return {
        metric: Thresholds(metric, limit.alert_min, limit.alert_max, limit.valid_min, limit.valid_max)
        for (kind, metric), limit in fleet.limits.items()
        if kind == device_type
    }


# ---- anomalies ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnomalyFilter:
    kinds: Sequence[str] = ()  # empty: every kind
    severities: Sequence[str] = ()
    sites: Sequence[str] = ()
    device_text: str = ""  # part of a device id, as typed
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 500


@dataclass(frozen=True)
class AnomalyOptions:
    kinds: list[str]
    severities: list[str]
    sites: list[str]
    first_at: datetime | None
    last_at: datetime | None


def anomaly_options(con: duckdb.DuckDBPyConnection) -> AnomalyOptions:
    """The values the filters offer: what the anomalies table holds."""
    require_tables(con, ANOMALIES)
    kinds = [k for (k,) in con.execute(f"select distinct anomaly_kind from {ANOMALIES} order by 1").fetchall()]
    severities = [s for (s,) in con.execute(f"select distinct severity from {ANOMALIES}").fetchall()]
    severities.sort(key=lambda s: SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else len(SEVERITY_ORDER))
    sql = f"select distinct site_id from {ANOMALIES} where site_id is not null order by 1"
    sites = [s for (s,) in con.execute(sql).fetchall()]
    first_at, last_at = _one(con, f"select min(started_at), max(ended_at) from {ANOMALIES}")
    return AnomalyOptions(kinds, severities, sites, first_at, last_at)


@dataclass(frozen=True)
class AnomalyPage:
    total: int  # windows matching the filter
    devices: int  # devices with a matching window
    rows: pd.DataFrame  # at most filter.limit of them, most severe and newest first
    by_kind: pd.DataFrame = field(default_factory=pd.DataFrame)  # anomaly_kind, severity, anomalies


_ANOMALY_WHERE = """
    (len(?::varchar[]) = 0 or list_contains(?::varchar[], anomaly_kind))
    and (len(?::varchar[]) = 0 or list_contains(?::varchar[], severity))
    and (len(?::varchar[]) = 0 or list_contains(?::varchar[], site_id))
    and (? = '' or strpos(lower(device_id), lower(?)) > 0)
    and (?::timestamp is null or ended_at >= ?::timestamp)
    and (?::timestamp is null or started_at <= ?::timestamp)
"""


def _anomaly_params(f: AnomalyFilter) -> list[Any]:
    kinds, severities, sites = list(f.kinds), list(f.severities), list(f.sites)
    text = f.device_text.strip()
    return [kinds, kinds, severities, severities, sites, sites, text, text, f.since, f.since, f.until, f.until]


def find_anomalies(con: duckdb.DuckDBPyConnection, f: AnomalyFilter) -> AnomalyPage:
    """Anomaly windows matching the filter. The device text matches anywhere in the id, as plain text."""
    require_tables(con, ANOMALIES)
    params = _anomaly_params(f)
    total, devices = _one(
        con, f"select count(*), count(distinct device_id) from {ANOMALIES} where {_ANOMALY_WHERE}", params
    )
    rows = _df(
        con,
        f"select device_id, device_type, site_id, anomaly_kind, metric, severity, started_at, ended_at, "
        f"round(score, 3) as score, peak_value, reading_count, anomaly_id from {ANOMALIES} "
        f"where {_ANOMALY_WHERE} order by list_position(?, severity), started_at desc, anomaly_id limit ?",
        [*params, list(SEVERITY_ORDER), int(f.limit)],
    )
    by_kind = _df(
        con,
        f"select anomaly_kind, severity, count(*) as anomalies from {ANOMALIES} where {_ANOMALY_WHERE} "
        f"group by anomaly_kind, severity order by anomaly_kind, list_position(?, severity)",
        [*params, list(SEVERITY_ORDER)],
    )
    return AnomalyPage(int(total), int(devices), rows, by_kind)


# ---- data quality ---------------------------------------------------------------------------------------


def rejection_counts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Bronze rows silver rejected, by reason (and metric, for the reasons that name one)."""
    require_tables(con, SILVER_REJECTED)
    return _df(
        con,
        f"select rejection_reason, coalesce(rejected_metric, '') as rejected_metric, count(*) as readings "
        f"from {SILVER_REJECTED} group by all order by readings desc, rejection_reason, rejected_metric",
    )


def quarantine_counts(lake: Lake) -> pd.DataFrame:
    """Landing lines bronze quarantined, by reason code and ingest date (empty when there are none)."""
    glob = f"{lake.quarantine_readings}/*/*.parquet"
    if not any(Path(lake.quarantine_readings).glob("*/*.parquet")):
        return pd.DataFrame(columns=["reason", "ingest_date", "lines"])
    with duckdb.connect() as con:
        return _df(
            con,
            "select reason, cast(ingest_date as varchar) as ingest_date, count(*) as lines "
            "from read_parquet(?, hive_partitioning = true) group by all order by ingest_date desc, lines desc",
            [glob],
        )


@dataclass(frozen=True)
class LayerFreshness:
    layer: str
    table: str
    rows: int | None
    newest_event_at: datetime | None  # the newest reading the layer holds (UTC)
    last_written_at: datetime | None  # when the newest row was ingested or built (UTC)
    problem: str = ""

    def lag(self, now: datetime) -> timedelta | None:
        return None if self.newest_event_at is None else now - self.newest_event_at


def layer_freshness(con: duckdb.DuckDBPyConnection, lake: Lake) -> list[LayerFreshness]:
    """For bronze, silver and gold: rows, newest event and when it was last written."""
    layers = [_bronze_freshness(lake)]
    tables = existing_tables(con)
    for layer, table, newest, written in (
        ("silver", SILVER_READINGS, "max(event_at)", "max(ingested_at)"),
        ("gold", HOURLY, "max(hour_at + interval 1 hour)", "max(last_ingested_at)"),
        ("gold", ANOMALIES, "max(ended_at)", "max(last_ingested_at)"),
        ("gold", DEVICE_HEALTH, "max(last_seen_at)", "null"),
    ):
        if table not in tables:
            layers.append(LayerFreshness(layer, table, None, None, None, "not built yet"))
            continue
        rows, newest_at, written_at = _one(con, f"select count(*), {newest}, {written} from {table}")
        layers.append(LayerFreshness(layer, table, int(rows), newest_at, written_at))
    return layers


def _bronze_freshness(lake: Lake) -> LayerFreshness:
    table = "bronze/readings (Parquet)"
    if not any(Path(lake.bronze_readings).glob("*/*.parquet")):
        return LayerFreshness("bronze", table, 0, None, None, "no bronze files yet")
    try:
        with duckdb.connect() as con:
            rows, newest, written = _one(
                con,
                "select count(*), max(event_time), max(_ingested_at) from read_parquet(?)",
                [f"{lake.bronze_readings}/*/*.parquet"],
            )
    except duckdb.IOException as exc:  # a compaction replaced files while they were listed
        return LayerFreshness("bronze", table, None, None, None, f"could not read bronze right now: {exc}")
    return LayerFreshness("bronze", table, int(rows), newest, written)


def latest_gate_results(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per layer: its latest gate run, how many expectations it checked, failed and warned."""
    columns = ["layer", "status", "expectations", "errors", "warnings", "validated_at", "run_id", "scope"]
    if not records:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(records)
    latest = frame.sort_values("validated_at").groupby("layer").tail(1)[["layer", "run_id", "validated_at"]]
    rows = []
    for layer, run_id, validated_at in latest.itertuples(index=False):
        gate = frame[(frame.layer == layer) & (frame.run_id == run_id) & (frame.validated_at == validated_at)]
        keys = gate.suite + " :: " + gate.expectation
        failed = gate[~gate.success.astype(bool)]
        errors = (failed.suite + " :: " + failed.expectation)[failed.severity == "error"].nunique()
        warnings = (failed.suite + " :: " + failed.expectation)[failed.severity == "warning"].nunique()
        status = "failed" if errors else ("passed with warnings" if warnings else "passed")
        rows.append([layer, status, keys.nunique(), errors, warnings, validated_at, run_id, gate.scope.iloc[0]])
    result = pd.DataFrame(rows, columns=columns)
    order = {"bronze": 0, "silver": 1, "gold": 2}
    return result.sort_values("layer", key=lambda s: s.map(order)).reset_index(drop=True)


def failed_expectations(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The failures of each layer's latest gate run: suite, expectation, severity, rows and partitions."""
    columns = ["layer", "severity", "suite", "expectation", "unexpected_rows", "partitions"]
    latest = latest_gate_results(records)
    if latest.empty:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(records)
    rows = []
    for gate in latest.itertuples(index=False):
        failed = frame[
            (frame.layer == gate.layer)
            & (frame.run_id == gate.run_id)
            & (frame.validated_at == gate.validated_at)
            & ~frame.success.astype(bool)
        ]
        for (suite, expectation, severity), group in failed.groupby(["suite", "expectation", "severity"]):
            unexpected = pd.to_numeric(group.unexpected_count, errors="coerce").fillna(0).sum()
            partitions = ", ".join(sorted(p for p in group.partition.dropna().unique()))
            rows.append([gate.layer, severity, suite, expectation, int(unexpected), partitions])
    return pd.DataFrame(rows, columns=columns)


def recent_runs(records: list[dict[str, Any]], limit: int = 10) -> pd.DataFrame:
    """The latest cycles from ops_runs, newest first: status, failed step, seconds and rows per layer."""
    columns = [
        "run_id",
        "started_at",
        "status",
        "failed_step",
        "seconds",
        "landing_lines",
        "bronze_rows",
        "quarantined",
        "silver_rows",
        "rejected",
    ]
    if not records:
        return pd.DataFrame(columns=columns)
    rows = []
    by_run: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_run.setdefault(record["run_id"], []).append(record)
    for run_id, steps in by_run.items():
        step = {s["step"]: s for s in steps}
        failed = [s["step"] for s in steps if s["status"] == "failed"]
        bronze, silver = step.get("bronze", {}), step.get("silver", {})
        rows.append(
            [
                run_id,
                steps[0].get("cycle_started_at"),
                "failed" if failed else "ok",
                ", ".join(failed),
                round(sum(s.get("seconds") or 0 for s in steps), 1),
                bronze.get("rows_in"),
                bronze.get("rows_out"),
                bronze.get("rows_rejected"),
                silver.get("rows_out"),
                silver.get("rows_rejected"),
            ]
        )
    frame = pd.DataFrame(rows, columns=columns).sort_values("started_at", ascending=False)
    return frame.head(limit).reset_index(drop=True)
