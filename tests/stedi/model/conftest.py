"""Fixtures for the STEDI model tests: bronze Parquet of the three sources written with pyarrow in exactly
the layout the bronze job writes (``<lake>/bronze/<source>/event_date=D/*.parquet``, columns from
``lakehouse.source_contracts``), and a small scenario whose answers are known, built with the real dbt on DuckDB.

The scenario (times in minutes after T0; every customer registered at T0):

| customer | research consent | accelerometer at | step trainer (serial) at | note |
|---|---|---|---|---|
| alice | 10 (latest record; an older one: none) | 5, 10, 15, 25 | A: 5, 10, 15, 25, 35 | one reading at consent |
| bob | 0 | 5, 15, 25 | B: 5, 15, 25 | shares timestamps with alice |
| carol | none (public consent only) | 5 | C: 5 | never consented |
| dave | withdrawn (1 in an old record, none in the latest) | 5, 15 | D: 15 | |
| erin | 30 | 5, 15 | E: 5, 15, 35 | all readings before consent |
| frank | 0 | none | F: 5 | no accelerometer data |
| grace, heidi | 0 | grace 15, heidi 25 | G (both): 15, 25 | one serial, two customers |
| ghost | not a customer | 5 | | |
|  |  |  | X (nobody's): 5 | |

Batch 1 re-lands alice's accelerometer reading at 15 and bob's step-trainer reading at 25 (exact copies).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.config import Settings
from lakehouse.lake import Lake
from lakehouse.source_contracts import SOURCES, event_date_of
from orchestration.transform import TransformResult, transform

# A test salt (the repository has no salt of its own; a real one comes from LAKEHOUSE_PII_SALT).
SALT = "test-salt-not-a-secret-0123456789"
T0 = 1_655_000_000_000  # epoch ms, 2022-06-12
MINUTE = 60_000
INGESTED_AT = datetime(2026, 3, 1, 12, 0, 0)

_ARROW_TYPES = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "timestamp_ntz": pa.timestamp("us"),
    "int": pa.int32(),
}


def at(minutes: float) -> int:
    """Epoch ms of T0 + ``minutes``."""
    return T0 + int(minutes * MINUTE)


def customer_key(email: str, salt: str = SALT) -> str:
    """The documented customer key: sha256 of salt + lower-cased e-mail, as hex."""
    return hashlib.sha256((salt + email.lower()).encode()).hexdigest()


def bronze_schema(source: str) -> pa.Schema:
    """The bronze Parquet schema of a source, from its contract (the partition column is the folder)."""
    columns = [(name, kind) for name, kind in SOURCES[source].bronze_columns() if name != "event_date"]
    return pa.schema([pa.field(name, _ARROW_TYPES[kind]) for name, kind in columns])


def write_bronze(
    lake: Path | str,
    source: str,
    rows: list[dict[str, Any]],
    *,
    batch_id: int,
    ingested_at: datetime = INGESTED_AT,
) -> None:
    """Write rows of one source as one bronze micro-batch: a Parquet file per event date."""
    contract = SOURCES[source]
    schema = bronze_schema(source)
    bronze = Path(Lake(str(lake)).bronze(source))
    by_date: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        full = {name: row.get(name) for name in schema.names}
        full["_ingested_at"] = row.get("_ingested_at", ingested_at)
        full["_source_file"] = row.get("_source_file", f"landing/{source}/batch-{batch_id}.json")
        full["_batch_id"] = batch_id
        full["_schema_version"] = contract.schema_version
        by_date.setdefault(event_date_of(full[contract.event_field.column]), []).append(full)
    for event_date, date_rows in by_date.items():
        folder = bronze / f"event_date={event_date}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(date_rows, schema=schema)
        pq.write_table(table, folder / f"part-{batch_id:05d}-{len(list(folder.iterdir())):03d}.parquet")


def customer(name: str, serial: str, *, updated: float = 0, research: float | None = None, **extra: Any) -> dict:
    email = f"{name}@example.com"
    return {
        "customer_name": f"{name.title()} Example",
        "email": email,
        "phone": "8015551212",
        "birth_day": "1965-01-01",
        "serial_number": serial,
        "registration_date_ms": at(0),
        "last_update_date_ms": at(updated),
        "share_with_research_as_of_date_ms": None if research is None else at(research),
        **extra,
    }


def accelerometer(name: str, minutes: float, x: float) -> dict:
    return {"user_email": f"{name}@example.com", "timestamp_ms": at(minutes), "x": x, "y": -x, "z": 9.8}


def step(serial: str, minutes: float, distance: float) -> dict:
    return {"serial_number": serial, "sensor_reading_time_ms": at(minutes), "distance_from_object": distance}


# Accelerometer x and step-trainer distance encode whose reading it is: alice 1.x / 1xx, bob 2.x / 2xx, ...
CUSTOMERS = [
    customer("alice", "SN-A", updated=1),  # an earlier record without consent
    customer("alice", "SN-A", updated=10, research=10, share_with_public_as_of_date_ms=at(10)),
    customer("bob", "SN-B", research=0),
    customer("carol", "SN-C", share_with_public_as_of_date_ms=at(0)),
    customer("dave", "SN-D", updated=1, research=1),
    customer("dave", "SN-D", updated=20),  # the latest record withdraws the consent
    customer("erin", "SN-E", updated=30, research=30),
    customer("frank", "SN-F", research=0),
    customer("grace", "SN-G", research=0),
    customer("heidi", "SN-G", research=0),
]
ACCELEROMETER = [
    accelerometer("alice", 5, 1.05),
    accelerometer("alice", 10, 1.10),
    accelerometer("alice", 15, 1.15),
    accelerometer("alice", 25, 1.25),
    accelerometer("bob", 5, 2.05),
    accelerometer("bob", 15, 2.15),
    accelerometer("bob", 25, 2.25),
    accelerometer("carol", 5, 3.05),
    accelerometer("dave", 5, 4.05),
    accelerometer("dave", 15, 4.15),
    accelerometer("erin", 5, 5.05),
    accelerometer("erin", 15, 5.15),
    accelerometer("grace", 15, 7.15),
    accelerometer("heidi", 25, 8.25),
    accelerometer("ghost", 5, 9.05),
]
STEP_TRAINER = [
    step("SN-A", 5, 105.0),
    step("SN-A", 10, 110.0),
    step("SN-A", 15, 115.0),
    step("SN-A", 25, 125.0),
    step("SN-A", 35, 135.0),
    step("SN-B", 5, 205.0),
    step("SN-B", 15, 215.0),
    step("SN-B", 25, 225.0),
    step("SN-C", 5, 305.0),
    step("SN-D", 15, 415.0),
    step("SN-E", 5, 505.0),
    step("SN-E", 15, 515.0),
    step("SN-E", 35, 535.0),
    step("SN-F", 5, 605.0),
    step("SN-G", 15, 715.0),
    step("SN-G", 25, 725.0),
    step("SN-X", 5, 905.0),
]


def write_scenario(lake: Path) -> None:
    write_bronze(lake, "customer", CUSTOMERS, batch_id=0)
    write_bronze(lake, "accelerometer", ACCELEROMETER, batch_id=0)
    write_bronze(lake, "step_trainer", STEP_TRAINER, batch_id=0)
    # A re-landed file: exact copies, ingested later.
    later = INGESTED_AT + timedelta(minutes=5)
    write_bronze(lake, "accelerometer", [accelerometer("alice", 15, 1.15)], batch_id=1, ingested_at=later)
    write_bronze(lake, "step_trainer", [step("SN-B", 25, 225.0)], batch_id=1, ingested_at=later)


def write_sensor_readings(lake: Path, count: int = 10) -> None:
    """A few clean readings of registry device 1 (environmental) in bronze/readings, so that the silver step
    has the sensor data it always needs: a lake with STEDI and sensor data, as a cycle sees it."""
    from lakehouse.contract import BRONZE_PARTITION_COLUMN, DEVICE_TYPES, FIELDS, SCHEMA_VERSION
    from lakehouse.registry import device

    kinds = {"string": pa.string(), "long": pa.int64(), "double": pa.float64(), "timestamp": pa.timestamp("us")}
    schema = pa.schema(
        [pa.field(f.name, kinds[f.type]) for f in FIELDS]
        + [
            pa.field("_rescued_data", pa.string()),
            pa.field("_ingested_at", pa.timestamp("us")),
            pa.field("_source_file", pa.string()),
            pa.field("_batch_id", pa.int64()),
            pa.field("_schema_version", pa.int32()),
        ]
    )
    sensor = device(1)
    typical = {"temperature_c": 21.0, "humidity_pct": 45.0, "pressure_hpa": 1013.0}
    assert set(DEVICE_TYPES[sensor.device_type]) <= set(typical)
    start = INGESTED_AT - timedelta(hours=2)
    rows = [
        {
            "device_id": sensor.device_id,
            "device_type": sensor.device_type,
            "site_id": sensor.site_id,
            "event_time": start + timedelta(seconds=30 * i),
            "seq": i + 1,
            **{m: typical[m] + (i % 3) * 0.1 for m in DEVICE_TYPES[sensor.device_type]},
            "battery_pct": 90.0,
            "firmware": "2.4.1",
            "_ingested_at": INGESTED_AT,
            "_source_file": "landing/readings/batch-0.json",
            "_batch_id": 0,
            "_schema_version": SCHEMA_VERSION,
        }
        for i in range(count)
    ]
    folder = Path(Lake(str(lake)).bronze_readings) / f"{BRONZE_PARTITION_COLUMN}={start.date().isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "part-00000-000.parquet")


STEDI_SELECTION = "+tag:stedi"  # the STEDI models and the staging views under them
TABLES = {
    "customer_trusted": "trusted.customer_trusted",
    "accelerometer_trusted": "trusted.accelerometer_trusted",
    "step_trainer_trusted": "trusted.step_trainer_trusted",
    "customer_rejected": "trusted.customer_rejected",
    "accelerometer_rejected": "trusted.accelerometer_rejected",
    "step_trainer_rejected": "trusted.step_trainer_rejected",
    "stg_bronze__customer": "staging.stg_bronze__customer",
    "stg_bronze__accelerometer": "staging.stg_bronze__accelerometer",
    "stg_bronze__step_trainer": "staging.stg_bronze__step_trainer",
    "customers_curated": "curated.customers_curated",
    "machine_learning_curated": "curated.machine_learning_curated",
}


@dataclass
class BuiltStedi:
    settings: Settings
    result: TransformResult

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.settings.lake_root.warehouse), read_only=True) as con:
            return con.execute(sql).fetchall()

    def columns(self, model: str) -> list[str]:
        return [row[0] for row in self.query(f"describe {TABLES[model]}")]

    def rows(self, model: str, columns: str) -> list[tuple[Any, ...]]:
        return sorted(self.query(f"select {columns} from {TABLES[model]}"))


def build_stedi(lake: Path, select: str = STEDI_SELECTION, **overrides: Any) -> BuiltStedi:
    """Build the STEDI models (and the staging views under them) on ``lake`` with the real dbt."""
    settings = Settings.load(env={}, cwd=lake, lake=str(lake), **{"pii_salt": SALT, **overrides})
    return BuiltStedi(settings, transform(settings, select=select))


@pytest.fixture(scope="session")  # shared by the test modules; tests only read it (or fail to compile)
def since_consent(tmp_path_factory: pytest.TempPathFactory) -> BuiltStedi:
    lake = tmp_path_factory.mktemp("stedi_since_consent")
    write_scenario(lake)
    built = build_stedi(lake)  # the default policy
    assert built.result.success, built.result.failures
    return built


@pytest.fixture(scope="session")
def any_time(tmp_path_factory: pytest.TempPathFactory) -> BuiltStedi:
    lake = tmp_path_factory.mktemp("stedi_any_time")
    write_scenario(lake)
    built = build_stedi(lake, consent_policy="any_time")
    assert built.result.success, built.result.failures
    return built


@pytest.fixture(scope="session")
def stedi() -> SimpleNamespace:
    """The scenario's helpers for the tests: ``salt``, ``at(minutes)``, ``key(email)``, ``build(lake, ...)``."""
    return SimpleNamespace(
        salt=SALT,
        at=at,
        key=customer_key,
        build=build_stedi,
        T0=T0,
        write_scenario=write_scenario,
        write_bronze=write_bronze,
        write_sensor_readings=write_sensor_readings,
        customer=customer,
        accelerometer=accelerometer,
        step=step,
    )
