"""Many real series into one lake: each lands fully under names of its own, and a replay that is refused
writes nothing (all of a file's readings land, or none)."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingestion.replay import ReplayConfig, ReplayError, replay
from lakehouse.catalogue_store import import_files
from lakehouse.storage import LocalStorage
from tests.support.datasets import NAB_DIR

AWS_DIR = NAB_DIR / "realAWSCloudwatch"
SERIES = 50
ROWS = 120  # ten hours of five-minute readings per series

CATALOGUE = (
    "kind,device_type,reporting_interval_s,silence_after_s,metric,unit,valid_min,valid_max,device_id,site_id,installed_at\n"
    "device_type,cloud_metric,300,1800,,,,,,,\n"
    "metric,cloud_metric,,,recorded_value,as recorded,-1e15,1e15,,,\n"
    + "".join(f"device,cloud_metric,,,,,,,aws-{n:03d},aws-us-east-1,2014-01-01\n" for n in range(1, SERIES + 1))
)


def real_values() -> list[list[str]]:
    """Fifty windows of real CloudWatch values: three from each of the 17 NAB series."""
    files = sorted(AWS_DIR.glob("*.csv"))
    if len(files) != 17:
        pytest.fail(f"expected the 17 NAB realAWSCloudwatch series in {AWS_DIR}; see its README")
    windows = []
    for path in files:
        with path.open(newline="") as handle:
            values = [row["value"] for row in csv.DictReader(handle)]
        windows += [values[k * ROWS : (k + 1) * ROWS] for k in range(3)]
    return windows[:SERIES]


@pytest.fixture
def fifty_series(tmp_path, settings) -> list[Path]:
    """Fifty CSVs of real values, all re-timed to start at the same instant (2014-04-02 14:30 UTC)."""
    catalogue = tmp_path / "fleet.csv"
    catalogue.write_text(CATALOGUE)
    import_files(settings, [catalogue])
    paths = []
    for n, values in enumerate(real_values(), start=1):
        path = tmp_path / f"series-{n:03d}.csv"
        start = datetime(2014, 4, 2, 14, 30)
        times = [(start + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(len(values))]
        path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in zip(times, values, strict=True)))
        paths.append(path)
    return paths


def landed(settings) -> dict[str, list[dict]]:
    storage = LocalStorage()
    by_device: dict[str, list[dict]] = {}
    for uri in storage.list(settings.lake_root.landing_readings, suffix=".json"):
        for line in storage.read_bytes(uri).decode().splitlines():
            reading = json.loads(line)
            by_device.setdefault(reading["device_id"], []).append(reading)
    return by_device


def test_fifty_series_that_start_at_the_same_instant_each_land_fully(settings, fifty_series):
    for n, path in enumerate(fifty_series, start=1):
        replay(settings, [path], ReplayConfig(device_id=f"aws-{n:03d}", mapping={"value": "recorded_value"}))

    by_device = landed(settings)
    assert sorted(by_device) == [f"aws-{n:03d}" for n in range(1, SERIES + 1)]
    for n, path in enumerate(fifty_series, start=1):
        with path.open(newline="") as handle:
            expected = [float(row["value"]) for row in csv.DictReader(handle)]
        readings = sorted(by_device[f"aws-{n:03d}"], key=lambda r: r["seq"])
        assert [r["recorded_value"] for r in readings] == expected
        assert readings[0]["event_time"] == "2014-04-02T14:30:00.000Z"


def test_a_replay_again_of_the_same_series_writes_nothing_new(settings, fifty_series):
    config = ReplayConfig(device_id="aws-001", mapping={"value": "recorded_value"})
    replay(settings, [fifty_series[0]], config)
    before = sorted(LocalStorage().list(settings.lake_root.landing_readings))

    replay(settings, [fifty_series[0]], config)

    assert sorted(LocalStorage().list(settings.lake_root.landing_readings)) == before


def test_a_replay_refused_half_way_leaves_the_landing_zone_as_it_was(tmp_path, settings, fifty_series):
    from lakehouse.config import Settings

    # Learn the names this replay writes (in another lake), then let one of them, not the first, already
    # hold other bytes in this lake: the replay must not write the files before it.
    rehearsal = Settings.load(env={}, cwd=tmp_path, lake=str(tmp_path / "rehearsal"))
    import_files(rehearsal, [tmp_path / "fleet.csv"])
    config = ReplayConfig(device_id="aws-002", mapping={"value": "recorded_value"})
    small = {"buffer_bytes": 4096}
    from ingestion.sinks import SinkOptions

    names = replay(rehearsal, [fifty_series[1]], config, options=SinkOptions(**small)).files_written
    assert names > 2
    rehearsed = sorted(LocalStorage().list(rehearsal.lake_root.landing_readings))
    taken = Path(settings.lake_root.landing_readings) / Path(rehearsed[1]).relative_to(
        rehearsal.lake_root.landing_readings
    )
    taken.parent.mkdir(parents=True, exist_ok=True)
    taken.write_text('{"someone": "else"}\n')
    before = {uri: LocalStorage().read_bytes(uri) for uri in LocalStorage().list(settings.lake_root.landing_readings)}

    with pytest.raises(ReplayError, match=rf"1 of the {names} landing files this replay would write already exist"):
        replay(settings, [fifty_series[1]], config, options=SinkOptions(**small))

    after = {uri: LocalStorage().read_bytes(uri) for uri in LocalStorage().list(settings.lake_root.landing_readings)}
    assert after == before
