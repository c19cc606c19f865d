"""The silver gate inside real cycles (Spark bronze, dbt silver and gold on DuckDB): a warning is reported
and the cycle completes; an error stops the cycle before gold, which keeps its contents, and
`lakehouse run` exits 3.

The readings are clean except that the environmental devices send Fahrenheit: 68-77 "degree Celsius"
is inside the valid range, so dbt accepts it, but most of it lies above the alert band, which the
`unit_scale_plausible` rule (a warning in gates.toml) reports. A copy of gates.toml that makes the rule
an error stands for an operator who wants such a cycle stopped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from lakehouse import ops
from lakehouse.config import REPO_ROOT, Settings
from lakehouse.contract import DEVICE_TYPES, format_event_time
from lakehouse.registry import fleet

pytestmark = pytest.mark.e2e

UNIT_RULE = "temperature_c_unit_plausible_for_environmental"
CLEAN = {
    "temperature_c": 55.0,
    "humidity_pct": 45.0,
    "pressure_hpa": 1013.0,
    "vibration_mm_s": 2.0,
    "accel_x_g": 0.1,
    "accel_y_g": -0.2,
    "accel_z_g": 0.98,
    "distance_mm": 800.0,
}


def _land(lake_root: Path, name: str, start: datetime, first_seq: int, readings: int = 40) -> int:
    """Write one landing file of contract lines from 8 registry devices; environmental ones in Fahrenheit."""
    lines = []
    for device in fleet(8):
        for i in range(readings):
            reading = {
                "device_id": device.device_id,
                "device_type": device.device_type,
                "site_id": device.site_id,
                "event_time": format_event_time(start + timedelta(seconds=30 * i)),
                "seq": first_seq + i,
                "battery_pct": 80.0,
                "firmware": "2.4.1",
            }
            for metric in DEVICE_TYPES[device.device_type]:
                reading[metric] = CLEAN[metric] + (i % 5) * 0.1
            if device.device_type == "environmental":
                reading["temperature_c"] = 68.0 + (i % 10)  # Fahrenheit, sent as if Celsius
            lines.append(json.dumps(reading))
    folder = lake_root / "landing" / "readings" / start.strftime("%Y/%m/%d/%H")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")
    return len(lines)


def _gold(settings: Settings) -> dict[str, list[tuple]]:
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        return {
            table: con.execute(f"select * from gold.{table} order by all").fetchall()
            for table in ("gold_sensor_metrics_hourly", "gold_anomalies", "gold_device_health")
        }


@pytest.fixture(scope="module")
def two_cycles(spark, tmp_path_factory):
    """Cycle 1 with the shipped gates.toml; cycle 2, more of the same, with the rule made an error."""
    from lakehouse.cli import main
    from orchestration.cycle import run_cycle

    root = tmp_path_factory.mktemp("cycle") / "lake"
    settings = Settings(lake=str(root))
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    _land(root, "readings-cycle-1.json", start, first_seq=1)
    echoed: list[str] = []
    first = run_cycle(settings, spark=spark, echo=echoed.append)
    gold_after_first = _gold(settings) if first.success else None

    strict = root.parent / "gates-strict.toml"
    text = (REPO_ROOT / "expectations" / "gates.toml").read_text()
    strict.write_text(
        text.replace('unit_scale_plausible = { severity = "warning"', 'unit_scale_plausible = { severity = "error"')
    )
    landed = _land(root, "readings-cycle-2.json", start + timedelta(hours=1), first_seq=1000)
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_GATES_CONFIG", str(strict))
    try:
        code = main(["--lake", str(root), "run"])
    finally:
        mp.undo()
    return {
        "settings": settings,
        "first": first,
        "echoed": echoed,
        "gold_after_first": gold_after_first,
        "code": code,
        "landed_second": landed,
    }


def test_a_warning_in_silver_is_reported_and_the_cycle_completes(two_cycles):
    first = two_cycles["first"]

    assert first.success, first.failure
    assert [s.status for s in first.steps] == ["ok"] * 6
    assert "1 warning(s)" in first.step("gate_silver").detail
    warning = next(line for line in two_cycles["echoed"] if "WARNING silver__readings" in line)
    assert UNIT_RULE in warning
    assert two_cycles["gold_after_first"]["gold_sensor_metrics_hourly"]  # gold was built


def test_an_error_in_silver_stops_the_cycle_exits_3_and_leaves_gold_unchanged(two_cycles, capsys):
    settings = two_cycles["settings"]

    assert two_cycles["code"] == 3
    assert _gold(settings) == two_cycles["gold_after_first"]
    steps = {
        r["step"]: r["status"]
        for r in ops.read(settings.lake_root, "ops_runs")
        if r["run_id"] != two_cycles["first"].run_id
    }
    assert steps["gate_silver"] == "failed"
    assert steps["gold"] == "skipped" and steps["gate_gold"] == "skipped"
    failures = [
        r
        for r in ops.read(settings.lake_root, "ops_gate_results")
        if r["layer"] == "silver" and not r["success"] and r["run_id"] != two_cycles["first"].run_id
    ]
    assert {r["expectation"] for r in failures} == {UNIT_RULE}
    assert {r["severity"] for r in failures} == {"error"}


def test_the_failed_increment_stays_in_silver(two_cycles):
    settings = two_cycles["settings"]

    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        later = con.execute("select count(*) from silver.silver_readings where seq >= 1000").fetchone()[0]

    assert later == two_cycles["landed_second"]
