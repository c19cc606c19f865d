"""An industrial test-bench export: one semicolon-separated CSV with decimal commas and eight channels
(current, voltage, flow, two vibration RMS values, pressure, two temperatures). After one catalogue
import, a replay maps each column to a metric and all eight land in silver and gold. The values are real
recorded series (eight of NAB's CloudWatch series), one per channel."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta

import duckdb
import pytest

from lakehouse.cli import main
from lakehouse.config import Settings
from orchestration.transform import transform
from tests.support.datasets import NAB_DIR

pytestmark = pytest.mark.e2e

AWS_DIR = NAB_DIR / "realAWSCloudwatch"
ROWS = 240
# Export column -> catalogue metric, unit.
CHANNELS = {
    "Strom [A]": ("current_a", "ampere"),
    "Spannung [V]": ("voltage_v", "volt"),
    "Durchfluss [l/min]": ("flow_l_min", "litre per minute"),
    "Vib RMS Antrieb [mm/s]": ("vibration_rms_drive_mm_s", "millimetre per second"),
    "Vib RMS Pumpe [mm/s]": ("vibration_rms_pump_mm_s", "millimetre per second"),
    "Druck [bar]": ("pressure_bar", "bar"),
    "Temp Einlauf [C]": ("temperature_inlet_c", "degree Celsius"),
    "Temp Auslauf [C]": ("temperature_outlet_c", "degree Celsius"),
}


@pytest.fixture(scope="module")
def bench_lake(spark, tmp_path_factory):
    from spark.bronze_job import run_bronze

    folder = tmp_path_factory.mktemp("bench")
    series = []
    for path in sorted(AWS_DIR.glob("*.csv"))[:8]:
        with path.open(newline="") as handle:
            series.append([row["value"] for row in csv.DictReader(handle)][:ROWS])
    if len(series) != 8:
        pytest.fail(f"expected NAB's realAWSCloudwatch series in {AWS_DIR}")
    start = datetime(2024, 6, 3, 8, 0)
    export = folder / "pruefstand_2024-06-03.csv"
    lines = ["Zeitstempel;" + ";".join(CHANNELS)]
    for i in range(ROWS):
        stamp = (start + timedelta(seconds=5 * i)).isoformat(sep=" ")
        lines.append(stamp + ";" + ";".join(column[i].replace(".", ",") for column in series))
    export.write_text("\n".join(lines) + "\n")
    catalogue = folder / "bench.csv"
    catalogue.write_text(
        "kind,device_type,reporting_interval_s,silence_after_s,metric,unit,valid_min,valid_max,device_id,site_id,installed_at\n"
        "device_type,pump_test_bench,5,60,,,,,,,\n"
        + "".join(f"metric,pump_test_bench,,,{m},{u},-1e12,1e12,,,\n" for m, u in CHANNELS.values())
        + "device,pump_test_bench,,,,,,,bench-01,plant-2,2024-06-01\n"
    )
    settings = Settings.load(env={}, cwd=folder, lake=str(folder / "lake"))
    assert main(["--lake", settings.lake, "catalog", "import", str(catalogue)]) == 0
    maps = [arg for column, (metric, _) in CHANNELS.items() for arg in ("--map", f"{column}={metric}")]
    argv = ["--lake", settings.lake, "replay", str(export), "--device", "bench-01", "--time-column", "Zeitstempel"]
    assert main([*argv, *maps, "--quiet"]) == 0
    run_bronze(settings, spark=spark)
    built = transform(settings, vars={"reference_time": "2026-03-02 00:00:00"}, data_tests=False)
    assert built.success, built.failures
    return settings, series


def test_all_eight_channels_land_in_silver_as_metrics(bench_lake):
    settings, series = bench_lake
    metrics = [metric for metric, _ in CHANNELS.values()]
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        rows = con.execute(f"select {', '.join(metrics)} from silver.silver_readings order by event_at").fetchall()
    assert rows == [tuple(float(column[i]) for column in series) for i in range(ROWS)]


def test_gold_has_every_channel_as_a_metric(bench_lake):
    settings, _ = bench_lake
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        counts = con.execute(
            "select metric, sum(reading_count) from gold.gold_sensor_metrics_hourly group by metric order by metric"
        ).fetchall()
    assert counts == sorted((metric, ROWS) for metric, _ in CHANNELS.values())
