"""Fixtures for the gates: a temporary lake with bronze Parquet and manifests written with pyarrow, and a
DuckDB warehouse with silver and gold tables created with SQL, all from small clean data that tests spoil
one defect at a time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.config import Settings
from lakehouse.contract import METRICS, SCHEMA_VERSION
from lakehouse.registry import fleet

DAY = "2026-03-01"
START = datetime(2026, 3, 1, 0, 0, 0)
INGESTED_AT = datetime(2026, 3, 2, 0, 5, 0)  # bronze ran after the readings were taken

# Readings inside every alert band, in the seed's units.
CLEAN_VALUES = {
    "temperature_c": {"environmental": 21.5, "machine": 55.0},
    "humidity_pct": {"environmental": 45.0},
    "pressure_hpa": {"environmental": 1013.0, "machine": 2500.0},
    "vibration_mm_s": {"machine": 2.0},
    "accel_x_g": {"wearable": 0.1},
    "accel_y_g": {"wearable": -0.2},
    "accel_z_g": {"wearable": 0.98},
    "distance_mm": {"step_trainer": 800.0},
}

BRONZE_SCHEMA = pa.schema(
    [
        ("device_id", pa.string()),
        ("device_type", pa.string()),
        ("site_id", pa.string()),
        ("event_time", pa.timestamp("us")),
        ("seq", pa.int64()),
        *[(m, pa.float64()) for m in METRICS],
        ("battery_pct", pa.float64()),
        ("firmware", pa.string()),
        ("_rescued_data", pa.string()),
        ("_ingested_at", pa.timestamp("us")),
        ("_source_file", pa.string()),
        ("_batch_id", pa.int64()),
        ("_schema_version", pa.int32()),
    ]
)


def clean_readings(
    devices: int = 8,
    per_device: int = 24,
    start: datetime = START,
    step: timedelta = timedelta(minutes=30),
    batch_id: int = 0,
    seq_start: int = 1,
) -> pd.DataFrame:
    """Bronze rows of ``devices`` registry devices, ``per_device`` readings each, ``step`` apart."""
    rows = []
    for d in fleet(devices):
        for i in range(per_device):
            row = {
                "device_id": d.device_id,
                "device_type": d.device_type,
                "site_id": d.site_id,
                "event_time": start + step * i,
                "seq": seq_start + i,
            }
            wobble = ((i * 7 + d.index * 3) % 11 - 5) / 50  # small, deterministic, never all equal
            for metric in METRICS:
                base = CLEAN_VALUES[metric].get(d.device_type)
                row[metric] = None if base is None else round(base + wobble * (abs(base) / 20 + 0.1), 4)
            row.update(
                battery_pct=90.0 - i * 0.1,
                firmware="2.4.1",
                _rescued_data=None,
                _ingested_at=INGESTED_AT,
                _source_file=f"landing/readings/2026/03/01/00/readings-{batch_id}.json",
                _batch_id=batch_id,
                _schema_version=SCHEMA_VERSION,
            )
            rows.append(row)
    return pd.DataFrame(rows)


def silver_from(bronze: pd.DataFrame) -> pd.DataFrame:
    """Silver rows as the dbt model produces them from clean bronze."""
    frame = (
        bronze.rename(
            columns={
                "event_time": "event_at",
                "_ingested_at": "ingested_at",
                "_source_file": "source_file",
                "_batch_id": "batch_id",
            }
        )
        .rename(columns={"_schema_version": "schema_version"})
        .drop(columns=["_rescued_data"])
    )
    frame.insert(4, "event_date", frame["event_at"].dt.date)
    frame["unit_conversion"] = pd.Series([None] * len(frame), dtype=object)  # clean readings: none converted
    return frame


@dataclass
class GateLake:
    """A lake in a temporary folder; tests write its layers and gate them."""

    settings: Settings
    clean_readings = staticmethod(clean_readings)
    silver_from = staticmethod(silver_from)
    day = DAY
    bronze_schema = BRONZE_SCHEMA

    @property
    def lake(self):
        return self.settings.lake_root

    @property
    def root(self) -> Path:
        return Path(self.lake.root)

    # bronze ----------------------------------------------------------------------------------------------
    def write_bronze(
        self,
        readings: pd.DataFrame,
        batch_id: int,
        *,
        quarantine_rows: int = 0,
        schema: pa.Schema | None = None,
        manifest: bool = True,
        partition_of: pd.Series | None = None,
    ) -> None:
        """Write one bronze batch: Parquet per event date, and its manifest (lines = rows + quarantined).

        ``partition_of`` overrides the event date folder of each row (default: the date of event_time).
        """
        readings = readings.assign(_batch_id=batch_id)
        if partition_of is None:
            partition_of = pd.to_datetime(readings["event_time"]).dt.date.astype(str)
        dates = sorted(set(partition_of))
        for day in dates:
            part = readings[partition_of == day]
            folder = self.root / "bronze" / "readings" / f"event_date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            table = pa.Table.from_pandas(part, schema=schema or BRONZE_SCHEMA, preserve_index=False)
            pq.write_table(table, folder / f"part-b{batch_id:010d}-00000.parquet")
        if manifest:
            self.write_manifest(batch_id, bronze_rows=len(readings), quarantine_rows=quarantine_rows, event_dates=dates)

    def write_manifest(self, batch_id: int, *, bronze_rows: int, quarantine_rows: int, event_dates: list[str]):
        folder = self.root / "_manifests" / "bronze_readings"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"batch-{batch_id:010d}.json").write_text(
            json.dumps(
                {
                    "batch_id": batch_id,
                    "started_at": "2026-03-02T00:05:00+00:00",
                    "finished_at": "2026-03-02T00:05:09+00:00",
                    "source_files": [],
                    "lines": bronze_rows + quarantine_rows,
                    "bronze_rows": bronze_rows,
                    "quarantine_rows": quarantine_rows,
                    "event_dates": event_dates,
                    "quarantine_reasons": {"malformed_json": quarantine_rows} if quarantine_rows else {},
                }
            )
        )

    # warehouse -------------------------------------------------------------------------------------------
    def write_warehouse(
        self,
        silver: pd.DataFrame,
        *,
        rejected: pd.DataFrame | None = None,
        hourly: pd.DataFrame | None = None,
        anomalies: pd.DataFrame | None = None,
        health: pd.DataFrame | None = None,
        skip: tuple[str, ...] = (),
    ) -> None:
        """(Re)create the warehouse: silver as given, gold computed from it with SQL unless given."""
        path = self.lake.warehouse
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        con = duckdb.connect(str(path))
        try:
            con.execute("create schema silver; create schema gold")
            con.register("silver_frame", silver)
            con.execute("create table silver.silver_readings as select * from silver_frame")
            if rejected is None:
                rejected = silver.head(0).assign(
                    rejection_reason=pd.Series(dtype=str), rejected_metric=pd.Series(dtype=str)
                )
            if "copy_number" not in rejected.columns:  # each rejected row the only copy of its key
                rejected = rejected.assign(copy_number=1)
            con.register("rejected_frame", rejected)
            con.execute("create table silver.silver_rejected_readings as select * from rejected_frame")
            tables = {
                "gold_sensor_metrics_hourly": hourly,
                "gold_anomalies": anomalies,
                "gold_device_health": health,
            }
            for name, frame in tables.items():
                if name in skip:
                    continue
                if frame is None:
                    con.execute(f"create table gold.{name} as {GOLD_SQL[name]}")
                else:
                    con.register(f"{name}_frame", frame)
                    con.execute(f"create table gold.{name} as select * from {name}_frame")
        finally:
            con.close()

    def execute(self, *statements: str) -> None:
        """Spoil the warehouse with SQL (a test's defect)."""
        con = duckdb.connect(str(self.lake.warehouse))
        try:
            for statement in statements:
                con.execute(statement)
        finally:
            con.close()

    def query(self, sql: str) -> pd.DataFrame:
        con = duckdb.connect(str(self.lake.warehouse), read_only=True)
        try:
            return con.execute(sql).df()
        finally:
            con.close()


_SEED = Path(__file__).resolve().parents[2] / "lakehouse" / "defaults" / "device_types.csv"
_INTERVALS = "(values {}) as t(device_type, s)".format(
    ", ".join(f"('{r.device_type}', {r.reporting_interval_s})" for r in pd.read_csv(_SEED).itertuples())
)
_UNPIVOT = " union all ".join(
    f"select device_id, device_type, site_id, '{m}' as metric, date_trunc('hour', event_at) as hour_at, "
    f"{m} as value from silver.silver_readings where {m} is not null"
    for m in METRICS
)
GOLD_SQL = {
    "gold_sensor_metrics_hourly": f"""
        select v.device_id, v.device_type, v.site_id, v.metric, v.hour_at, count(*) as reading_count,
               min(value) as min_value, max(value) as max_value, avg(value) as avg_value,
               coalesce(stddev_samp(value), 0) as stddev_value,
               quantile_cont(value, 0.5) as p50_value, quantile_cont(value, 0.95) as p95_value,
               3600 // any_value(t.s) as expected_count,
               least(1, count(*) / (3600 // any_value(t.s))) as completeness,
               cast(v.hour_at as date) as event_date, cast(null as timestamp) as last_ingested_at
        from ({_UNPIVOT}) as v join {_INTERVALS} using (device_type)
        group by all""",
    "gold_anomalies": """
        select md5(device_id || 'temperature_c') as anomaly_id, device_id, device_type, site_id,
               'temperature_c' as metric, 'threshold_breach' as anomaly_kind,
               min(event_at) as started_at, max(event_at) as ended_at, max(temperature_c) as peak_value,
               0.2 as score, 'warning' as severity, count(*) as reading_count, min(event_date) as event_date,
               max(ingested_at) as last_ingested_at
        from silver.silver_readings where device_type = 'machine' group by all""",
    "gold_device_health": """
        select device_id, any_value(device_type) as device_type, any_value(site_id) as site_id,
               max(event_at) as last_seen_at, count(*) as readings_24h, 0.9 as completeness_24h,
               min(battery_pct) as battery_pct, 0 as open_anomalies, 'healthy' as health_status,
               0.9 as uptime_24h, max(event_at) as as_of_at
        from silver.silver_readings group by device_id""",
}


@pytest.fixture
def gate_lake(tmp_path) -> GateLake:
    """An empty lake in a temporary folder, with helpers to fill it."""
    return GateLake(Settings(lake=str(tmp_path / "lake")))


@pytest.fixture(scope="session")
def moto_endpoint():
    """A moto S3 server on 127.0.0.1, on a free port, for the length of the test session."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_lake(moto_endpoint, monkeypatch):
    """A lake under s3://gates-lake/lake on the moto server; boto3 finds it through AWS_ENDPOINT_URL."""
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="gates-lake")
    settings = Settings(lake="s3://gates-lake/lake", aws_endpoint_url=moto_endpoint, aws_region="us-east-1")
    yield settings, s3
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="gates-lake"):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket="gates-lake", Key=item["Key"])
    s3.delete_bucket(Bucket="gates-lake")
