"""Specification of the reading contract, the registry and the lake layout."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse import contract, registry
from lakehouse.lake import Lake


def test_the_contract_names_every_metric_with_its_unit():
    assert set(contract.METRICS) == {
        "temperature_c",
        "humidity_pct",
        "pressure_hpa",
        "vibration_mm_s",
        "accel_x_g",
        "accel_y_g",
        "accel_z_g",
        "distance_mm",
    }
    assert all(contract.FIELD_BY_NAME[m].unit for m in contract.METRICS)


def test_every_device_type_reports_only_contract_metrics():
    for metrics in contract.DEVICE_TYPES.values():
        assert set(metrics) <= set(contract.METRICS)


def test_the_keys_of_a_reading_are_required():
    assert contract.REQUIRED_FIELDS == ("device_id", "device_type", "site_id", "event_time", "seq")


def test_event_times_are_formatted_in_utc_with_milliseconds():
    moment = datetime(2026, 11, 23, 10, 5, 7, 123456, tzinfo=UTC)
    assert contract.format_event_time(moment) == "2026-11-23T10:05:07.123Z"


def test_every_metric_a_device_type_reports_has_limits_in_the_seed():
    limits = contract.load_metric_limits()
    for device_type, metrics in contract.DEVICE_TYPES.items():
        for metric in metrics:
            limit = limits[(device_type, metric)]
            assert limit.valid_min < limit.valid_max


def test_a_broken_limits_seed_is_reported_with_its_file_and_line(tmp_path):
    seed = tmp_path / "metric_limits.csv"
    seed.write_text("device_type,metric,unit,valid_min,valid_max,alert_min,alert_max\nmachine,x,u,low,1,,\n")
    with pytest.raises(ValueError, match=r"metric_limits.csv:2"):
        contract.load_metric_limits(seed)


def test_registry_ids_match_the_device_id_pattern_and_types_rotate():
    devices = registry.fleet(8)
    assert [d.device_type for d in devices[:4]] == list(contract.DEVICE_TYPES)
    assert all(contract.is_valid_device_id(d.device_id) for d in devices)


def test_a_fleet_larger_than_the_registry_is_refused_with_the_limit():
    with pytest.raises(ValueError, match="1..1000"):
        registry.fleet(1001)


def test_a_local_lake_becomes_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lake = Lake("./lake")
    assert lake.root == str(tmp_path / "lake")
    assert lake.bronze_readings == str(tmp_path / "lake" / "bronze" / "readings")
    assert lake.warehouse == Path(tmp_path / "lake" / "warehouse.duckdb")


def test_an_s3_lake_is_passed_to_the_engines_unchanged():
    lake = Lake("s3://sensor-bucket/prod/lake/")
    assert not lake.is_local
    assert lake.bronze_readings == "s3://sensor-bucket/prod/lake/bronze/readings"
    assert lake.checkpoint("bronze_readings") == "s3://sensor-bucket/prod/lake/_checkpoints/bronze_readings"


@pytest.mark.parametrize("uri", ["s3://", "gs://bucket/lake", "hdfs://nn/lake"])
def test_an_unusable_lake_uri_is_refused_with_the_fix(uri):
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        Lake(uri)
