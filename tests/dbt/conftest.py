"""Fixtures for the dbt tests: small bronze lakes written with pyarrow (the Parquet the Spark job writes,
without Spark), built with the real dbt on DuckDB. Tests reach the helpers through the ``bronze`` fixture."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
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
from lakehouse.contract import BRONZE_PARTITION_COLUMN, DEVICE_TYPES, FIELDS, METRICS, SCHEMA_VERSION
from lakehouse.lake import Lake
from lakehouse.registry import device
from orchestration.transform import TransformResult, transform

_ARROW_TYPES = {"string": pa.string(), "long": pa.int64(), "double": pa.float64(), "timestamp": pa.timestamp("us")}

BRONZE_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW_TYPES[f.type]) for f in FIELDS]
    + [
        pa.field("_rescued_data", pa.string()),
        pa.field("_ingested_at", pa.timestamp("us")),
        pa.field("_source_file", pa.string()),
        pa.field("_batch_id", pa.int64()),
        pa.field("_schema_version", pa.int32()),
    ]
)

# Values in the middle of every valid range, per metric.
TYPICAL = {
    "temperature_c": 21.0,
    "humidity_pct": 45.0,
    "pressure_hpa": 1013.0,
    "vibration_mm_s": 2.0,
    "accel_x_g": 0.1,
    "accel_y_g": -0.1,
    "accel_z_g": 1.0,
    "distance_mm": 800.0,
}
MACHINE_PRESSURE_HPA = 2500.0


def reading(index: int, event_time: datetime, seq: int, **values: Any) -> dict[str, Any]:
    """A bronze row for registry device ``index`` with typical values for its type; ``values`` override."""
    d = device(index)
    row: dict[str, Any] = {
        "device_id": d.device_id,
        "device_type": d.device_type,
        "site_id": d.site_id,
        "event_time": event_time,
        "seq": seq,
        "battery_pct": 90.0,
        "firmware": "2.4.1",
    }
    for metric in METRICS:
        row[metric] = TYPICAL[metric] if metric in DEVICE_TYPES[d.device_type] else None
    if d.device_type == "machine":
        row["pressure_hpa"] = MACHINE_PRESSURE_HPA
    row.update(values)
    return row


def series(
    index: int,
    start: datetime,
    count: int,
    every_s: float,
    first_seq: int = 1,
    noise: random.Random | None = None,
    **values: Any,
):
    """``count`` readings of one device, ``every_s`` seconds apart; with ``noise``, metrics vary by about
    1 % of their typical value (so that they look like real signals, not stuck sensors)."""
    rows = [reading(index, start + timedelta(seconds=i * every_s), first_seq + i, **values) for i in range(count)]
    if noise is not None:
        for row in rows:
            for metric in METRICS:
                if row[metric] is not None and metric not in values:
                    row[metric] = round(row[metric] + noise.gauss(0, 0.01 * abs(row[metric]) + 0.01), 3)
    return rows


def write_bronze(
    lake: Lake | str | Path,
    rows: Iterable[dict[str, Any]],
    *,
    batch_id: int,
    ingested_at: datetime,
    source_file: str | None = None,
) -> int:
    """Write rows as one bronze micro-batch: one Parquet file per event date. Returns the row count."""
    lake = lake if isinstance(lake, Lake) else Lake(str(lake))
    by_date: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        full = {name: row.get(name) for name in BRONZE_SCHEMA.names}
        full["_ingested_at"] = row.get("_ingested_at", ingested_at)
        full["_source_file"] = row.get("_source_file", source_file or f"landing/readings/batch-{batch_id}.json")
        full["_batch_id"] = row.get("_batch_id", batch_id)
        full["_schema_version"] = row.get("_schema_version", SCHEMA_VERSION)
        by_date.setdefault(full["event_time"].date().isoformat(), []).append(full)
    for event_date, date_rows in by_date.items():
        folder = Path(lake.bronze_readings) / f"{BRONZE_PARTITION_COLUMN}={event_date}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(date_rows, schema=BRONZE_SCHEMA)
        pq.write_table(table, folder / f"part-{batch_id:05d}-{len(list(folder.iterdir())):03d}.parquet")
    return sum(len(r) for r in by_date.values())


# Every fixture lake is judged at this moment, so tests do not depend on the wall clock.
REFERENCE_TIME = datetime(2026, 3, 2, 0, 0, 0)
DAY_1 = datetime(2026, 3, 1, 0, 0, 0)


@dataclass
class BuiltLake:
    settings: Settings
    result: TransformResult

    @property
    def warehouse(self) -> Path:
        return self.settings.lake_root.warehouse

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql).fetchall()

    def rows(self, table: str, exclude: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
        """Every row of a table (without the ``exclude`` columns), sorted by its non-float values."""
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            columns = [c[0] for c in con.execute(f"describe {table}").fetchall() if c[0] not in exclude]
            rows = con.execute(f"select {', '.join(columns)} from {table}").fetchall()
        return sorted(rows, key=lambda row: repr([v for v in row if not isinstance(v, float)]))

    def execute(self, sql: str) -> None:
        with duckdb.connect(str(self.warehouse)) as con:
            con.execute(sql)

    def bronze_count(self) -> int:
        glob = f"{self.settings.lake_root.bronze_readings}/*/*.parquet"
        with duckdb.connect() as con:
            return con.execute(f"select count(*) from read_parquet('{glob}')").fetchall()[0][0]


def build(lake: Path, *, with_tests: bool = True, **kwargs: Any) -> BuiltLake:
    """Run the whole dbt project on ``lake`` (reference time pinned) and return the result.

    ``with_tests=False`` leaves dbt's data and unit tests out, for
    the intermediate builds of a scenario: test_dbt_build runs them on a full build.
    """
    settings = Settings.load(env={}, cwd=lake, lake=str(lake))
    vars = {"reference_time": REFERENCE_TIME.strftime("%Y-%m-%d %H:%M:%S"), **kwargs.pop("vars", {})}
    result = transform(settings, vars=vars, data_tests=with_tests, **kwargs)
    return BuiltLake(settings, result)


@dataclass(frozen=True)
class DirtyFleet:
    """What the small fleet fixture put into bronze on purpose, to find again in silver."""

    clean_rows: int
    retried: dict[str, Any]  # key of a reading sent twice in one file
    republished_keys: list[tuple[str, datetime, int]]  # readings of batch 0 published again in batch 1
    out_of_range: tuple[str, datetime, int, str]  # device_id, event_at, seq, metric
    unknown_device: str
    future: tuple[str, datetime, int]
    type_mismatch: tuple[str, datetime, int]


def write_small_fleet(lake: Path) -> DirtyFleet:
    """Four devices (one per type) over two hours on DAY_1, with every kind of dirt silver must catch."""
    start = DAY_1 + timedelta(hours=10)
    env = series(1, start, 240, 30)  # environmental, every 30 s
    mch = series(2, start, 720, 10)  # machine, every 10 s
    wrb = series(3, start, 1440, 5)  # wearable, every 5 s
    stp = series(4, start, 1440, 5)  # step trainer, every 5 s
    # Vary the values so that statistics are not trivial.
    for i, row in enumerate(env):
        row["temperature_c"] = 20.0 + (i % 7) * 0.5
        row["humidity_pct"] = 40.0 + (i % 11)
    for i, row in enumerate(mch):
        row["vibration_mm_s"] = 1.0 + (i % 13) * 0.1
    for i, row in enumerate(stp):
        row["distance_mm"] = 500.0 + (i % 17) * 10
    batch_0 = env + mch + wrb + stp
    retried = dict(env[10])
    batch_0.append(dict(retried))  # a device retry: the same line twice in one file
    out_of_range_row = reading(1, start + timedelta(seconds=15), 9001, humidity_pct=130.0)
    unknown = dict(reading(1, start, 1), device_id="env-99999")  # matches the id pattern, not registered
    future_row = reading(2, DAY_1 + timedelta(hours=13), 9002)  # 1 h after its ingest: clock skew
    mismatch = dict(reading(3, start + timedelta(seconds=2), 9003), device_type="machine")
    dirty = [out_of_range_row, unknown, future_row, mismatch]
    write_bronze(lake, batch_0 + dirty, batch_id=0, ingested_at=DAY_1 + timedelta(hours=12))
    # A re-published batch: 50 machine readings again, ingested later.
    republished = [dict(r) for r in mch[100:150]]
    write_bronze(lake, republished, batch_id=1, ingested_at=DAY_1 + timedelta(hours=12, minutes=5))
    return DirtyFleet(
        clean_rows=len(env) + len(mch) + len(wrb) + len(stp),
        retried=retried,
        republished_keys=[(r["device_id"], r["event_time"], r["seq"]) for r in republished],
        out_of_range=(out_of_range_row["device_id"], out_of_range_row["event_time"], 9001, "humidity_pct"),
        unknown_device="env-99999",
        future=(future_row["device_id"], future_row["event_time"], 9002),
        type_mismatch=(mismatch["device_id"], mismatch["event_time"], 9003),
    )


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltLake, DirtyFleet]:
    lake = tmp_path_factory.mktemp("lake")
    fleet = write_small_fleet(lake)
    built = build(lake, unit_tests=True)
    assert built.result.success, built.result.failures
    return built, fleet


BRONZE_HELPERS = SimpleNamespace(
    reading=reading, series=series, write=write_bronze, DAY_1=DAY_1, REFERENCE_TIME=REFERENCE_TIME
)


@pytest.fixture
def bronze() -> SimpleNamespace:
    """The bronze helpers and the fixture clock, for tests that write their own bronze."""
    return BRONZE_HELPERS


@pytest.fixture(scope="module")
def module_lake(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """An empty lake shared by a module's tests: ``path``, ``build(**transform_kwargs)``, ``bronze``."""
    path = tmp_path_factory.mktemp("lake")
    return SimpleNamespace(
        path=path, build=lambda **kwargs: build(path, with_tests=False, **kwargs), bronze=BRONZE_HELPERS
    )


@pytest.fixture
def lake_builder(tmp_path: Path) -> Callable[..., BuiltLake]:
    """Builds the test's lake (``tmp_path``), or another one given as ``lake``."""

    def _build(lake: Path | None = None, **kwargs: Any) -> BuiltLake:
        return build(lake or tmp_path, with_tests=False, **kwargs)

    return _build
