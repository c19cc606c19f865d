"""Replay: recorded CSV and NDJSON series become one reading per row, in time order, through a sink."""

from __future__ import annotations

import csv
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from ingestion.replay import ReplayConfig, ReplayError, parse_speed, parse_timestamp, replay, replay_schedule
from lakehouse.catalogue_store import read_versions, state_of
from lakehouse.cli import main
from lakehouse.contract import DEVICE_TYPES, format_event_time
from tests.support.datasets import NAB_DIR

NAB_FILES = ("ambient_temperature_system_failure.csv", "cpu_utilization_asg_misconfiguration.csv")


@pytest.fixture(scope="session")
def nab_dir() -> Path:
    if not all((NAB_DIR / name).is_file() for name in NAB_FILES):
        pytest.fail(
            f"the NAB sample files are missing from {NAB_DIR.resolve()}: the replay tests need "
            f"{' and '.join(NAB_FILES)} from github.com/numenta/NAB (data/realKnownCause/) in ../shared/datasets/nab/"
        )
    return NAB_DIR


def _nab_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("name", "device_id", "metric"),
    [(NAB_FILES[0], "env-00001", "temperature_c"), (NAB_FILES[1], "mch-00002", "vibration_mm_s")],
)
def test_replay_of_a_nab_file_yields_one_reading_per_csv_row_with_utc_timestamps(
    nab_dir, settings, read_landing, name, device_id, metric
):
    report = replay(settings, [nab_dir / name], ReplayConfig(device_id=device_id, mapping={"value": metric}))

    rows = _nab_rows(nab_dir / name)
    readings = [json.loads(line) for line in read_landing(settings.lake_root)]
    assert report.readings == len(readings) == len(rows) > 7000
    for row, reading in zip(rows, readings, strict=True):
        # "2013-07-04 00:00:00", naive in the file, is UTC
        assert reading["event_time"] == row["timestamp"].replace(" ", "T") + ".000Z"
        assert reading[metric] == float(row["value"])
    assert [r["seq"] for r in readings] == list(range(1, len(rows) + 1))
    assert {(r["device_id"], r["device_type"]) for r in readings} == {(device_id, readings[0]["device_type"])}
    assert metric in DEVICE_TYPES[readings[0]["device_type"]]


def test_replay_of_both_nab_files_together_interleaves_them_in_time_order(nab_dir, settings, read_landing):
    config = ReplayConfig(device_column=None, device_id="env-00005", mapping={"value": "temperature_c"})
    report = replay(settings, [nab_dir / NAB_FILES[0], nab_dir / NAB_FILES[1]], config)

    times = [json.loads(line)["event_time"] for line in read_landing(settings.lake_root)]
    assert report.readings == len(times) == sum(len(_nab_rows(nab_dir / name)) for name in NAB_FILES)
    assert times == sorted(times)
    assert [c.readings for c in report.files] == [len(_nab_rows(nab_dir / name)) for name in NAB_FILES]


def test_fahrenheit_is_converted_to_celsius_when_asked(nab_dir, settings, read_landing):
    config = ReplayConfig(device_id="env-00001", mapping={"value": "temperature_c"}, convert={"value": "degF_to_degC"})
    replay(settings, [nab_dir / NAB_FILES[0]], config)
    first = json.loads(read_landing(settings.lake_root)[0])
    assert first["temperature_c"] == pytest.approx((69.88083514 - 32) * 5 / 9, abs=1e-6)


def test_a_semicolon_csv_with_several_channels_and_decimal_commas(tmp_path, settings, read_landing):
    export = tmp_path / "export.csv"
    export.write_text(
        "Zeit;Temp;Feuchte;Druck\n"
        "2024-05-01 10:00:00;21,5;40,1;1013,2\n"
        "2024-05-01 10:01:00;21,6;;1013,1\n"  # no humidity: left out of that reading
        "2024-05-01 10:02:00;;;\n"  # nothing at all: skipped
        "2024-05-01T10:03:00+02:00;21,7;40,3;1013,0\n"  # an offset: converted to UTC
    )
    mapping = {"Temp": "temperature_c", "Feuchte": "humidity_pct", "Druck": "pressure_hpa"}
    report = replay(settings, [export], ReplayConfig(device_id="env-00005", mapping=mapping, time_column="Zeit"))

    readings = [json.loads(line) for line in read_landing(settings.lake_root)]
    assert readings == [
        {"device_id": "env-00005", "device_type": "environmental", "site_id": "site-05",
         "event_time": "2024-05-01T08:03:00.000Z", "seq": 1, "temperature_c": 21.7, "humidity_pct": 40.3,
         "pressure_hpa": 1013.0},
        {"device_id": "env-00005", "device_type": "environmental", "site_id": "site-05",
         "event_time": "2024-05-01T10:00:00.000Z", "seq": 2, "temperature_c": 21.5, "humidity_pct": 40.1,
         "pressure_hpa": 1013.2},
        {"device_id": "env-00005", "device_type": "environmental", "site_id": "site-05",
         "event_time": "2024-05-01T10:01:00.000Z", "seq": 3, "temperature_c": 21.6, "pressure_hpa": 1013.1},
    ]  # fmt: skip
    (counts,) = report.files
    assert (counts.rows, counts.readings, counts.skipped) == (4, 3, 1)


def test_ndjson_with_a_device_column_counts_seq_per_device(tmp_path, settings, read_landing):
    capture = tmp_path / "capture.ndjson"
    rows = [
        {"ts": 1714557600, "sensor": "mch-00002", "t": 55.1, "vib": 2.1},
        {"ts": 1714557600000 + 10_000, "sensor": "mch-00006", "t": 60.0, "vib": 3.0},  # epoch milliseconds
        {"ts": "2024-05-01T10:00:20Z", "sensor": "mch-00002", "t": 55.3, "vib": None},
    ]
    capture.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = ReplayConfig(device_column="sensor", mapping={"t": "temperature_c", "vib": "vibration_mm_s"})
    report = replay(settings, [capture], config)

    readings = [json.loads(line) for line in read_landing(settings.lake_root)]
    assert [(r["device_id"], r["seq"], r["event_time"]) for r in readings] == [
        ("mch-00002", 1, "2024-05-01T10:00:00.000Z"),
        ("mch-00006", 1, "2024-05-01T10:00:10.000Z"),
        ("mch-00002", 2, "2024-05-01T10:00:20.000Z"),
    ]
    assert "vibration_mm_s" not in readings[2]
    assert report.devices == {"mch-00002": 2, "mch-00006": 1}


@pytest.mark.parametrize(
    ("content", "config", "message"),
    [
        ("timestamp,value\n2024-01-01 00:00:00,hot\n", {"mapping": {"value": "temperature_c"}},
         r"data\.csv:2: value='hot' is not a number"),
        ("timestamp,value\nyesterday,1.0\n", {"mapping": {"value": "temperature_c"}},
         r"data\.csv:2: timestamp='yesterday' is not a timestamp"),
        ("when,value\n2024-01-01 00:00:00,1.0\n", {"mapping": {"value": "temperature_c"}},
         r"no time column found .* columns: when, value; pass --time-column"),
        ("timestamp,value\n2024-01-01 00:00:00,1.0\n", {"mapping": {"value": "distance_mm"}},
         r"env-00001 is a environmental device, whose type has no metric \['distance_mm'\] in the catalogue"),
        ("timestamp,value\n2024-01-01 00:00:00,1.0\n", {}, r"no column maps to a metric; pass --map COLUMN=METRIC"),
        ("timestamp,value\n2024-01-01 00:00:00,1.0,2.0\n", {"mapping": {"value": "temperature_c"}},
         r"data\.csv:2: 3 cells but the header has 2"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_replayed_is_refused_naming_the_file_line_and_fix(
    tmp_path, settings, read_landing, content, config, message
):
    data = tmp_path / "data.csv"
    data.write_text(content)
    with pytest.raises(ReplayError, match=message):
        replay(settings, [data], ReplayConfig(device_id="env-00001", **config))
    assert read_landing(settings.lake_root) == []


def test_a_device_the_catalogue_does_not_know_is_refused_with_the_command_that_registers_it(
    tmp_path, settings, read_landing
):
    data = tmp_path / "data.csv"
    data.write_text("timestamp,temperature_c\n2024-01-01 00:00:00,20.5\n2024-01-01 00:00:30,20.7\n")
    refusal = r"device env-09001 is not in the catalogue. Register it as you replay:\n  lakehouse replay \S*data.csv "
    with pytest.raises(ReplayError, match=refusal + r"--device env-09001 --register --device-type TYPE"):
        replay(settings, [data], ReplayConfig(device_id="env-09001"))
    assert read_landing(settings.lake_root) == []

    config = ReplayConfig(device_id="env-09001", site_id="site-09", register_device_type="environmental")
    replay(settings, [data], config)

    readings = [json.loads(line) for line in read_landing(settings.lake_root)]
    assert [(r["site_id"], r["device_type"], r["temperature_c"]) for r in readings] == [
        ("site-09", "environmental", 20.5),
        ("site-09", "environmental", 20.7),
    ]
    device = state_of(read_versions(settings)).entries[("device", "env-09001")]
    assert (device.get("device_type"), device.get("installed_at")) == ("environmental", datetime(2024, 1, 1))


def test_registering_needs_a_device_type_the_catalogue_has(tmp_path, settings, read_landing):
    data = tmp_path / "data.csv"
    data.write_text("timestamp,temperature_c\n2024-01-01 00:00:00,20.5\n")
    with pytest.raises(ReplayError, match=r"--device-type pump: not a device type of the catalogue \(known: env"):
        replay(settings, [data], ReplayConfig(device_id="pump-1", register_device_type="pump"))
    assert read_landing(settings.lake_root) == []
    assert ("device", "pump-1") not in state_of(read_versions(settings)).entries


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2013-07-04 00:00:00", datetime(2013, 7, 4, tzinfo=UTC)),
     ("2013-07-04T02:00:00+02:00", datetime(2013, 7, 4, tzinfo=UTC)),
     ("2013-07-04T00:00:00.250Z", datetime(2013, 7, 4, 0, 0, 0, 250_000, tzinfo=UTC)),
     ("1372896000", datetime(2013, 7, 4, tzinfo=UTC)),
     ("1372896000000", datetime(2013, 7, 4, tzinfo=UTC))],
)  # fmt: skip
def test_timestamps_are_read_as_utc(text, expected):
    assert parse_timestamp(text) == expected
    assert format_event_time(parse_timestamp(text)).endswith("Z")


@pytest.mark.parametrize(("text", "speed"), [("max", None), ("60x", 60.0), ("0.5", 0.5)])
def test_speed_is_a_factor_of_recorded_time_or_max(text, speed):
    assert parse_speed(text) == speed


def test_the_schedule_spreads_recorded_time_divided_by_the_speed():
    recorded_ms = np.array([0, 3_600_000, 7_200_000, 7_200_000]) + 1_372_896_000_000
    assert replay_schedule(recorded_ms, 3600.0).tolist() == [0.0, 1.0, 2.0, 2.0]
    assert replay_schedule(recorded_ms, None).tolist() == [0.0, 0.0, 0.0, 0.0]


def test_a_paced_replay_waits_for_the_recorded_time_to_pass(tmp_path, settings, read_landing):
    data = tmp_path / "data.csv"
    data.write_text("timestamp,value\n" + "".join(f"2024-01-01 00:00:{s:02d},{s}.5\n" for s in range(0, 60, 15)))
    began = time.monotonic()
    replay(settings, [data], ReplayConfig(device_id="env-00001", mapping={"value": "temperature_c"}, speed=100.0))
    assert time.monotonic() - began >= 0.45  # 45 s of recorded time at 100x
    assert len(read_landing(settings.lake_root)) == 4


def test_lakehouse_replay_command_prints_what_it_sent(nab_dir, settings, read_landing, capsys):
    exit_code = main(
        ["--lake", settings.lake, "replay", str(nab_dir / NAB_FILES[0]), "--device", "env-00001",
         "--map", "value=temperature_c", "--convert", "value=degF_to_degC", "--quiet"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert exit_code == 0
    assert "replayed 7,267 readings from 1 file(s)" in out
    assert "env-00001" in out and "2013-07-04T00:00:00.000Z .. 2014-05-28T15:00:00.000Z" in out
    assert len(read_landing(settings.lake_root)) == 7267
