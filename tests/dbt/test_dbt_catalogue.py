"""Silver judges each reading by the catalogue version in force at its event time, read from the lake
(models/catalogue); a catalogue change reaches readings already in silver through a backfill of their
dates, and only those whose event time falls under the new version."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from lakehouse.catalogue_store import import_files
from lakehouse.config import Settings

REFERENCE = {"reference_time": "2026-03-02 00:00:00"}
JULY_1 = datetime(2013, 7, 1)


def reasons(built) -> dict[str, str | None]:
    rows = built.query(
        "select strftime(event_at, '%m-%d %H'), rejection_reason from silver.silver_classified_readings "
        "where device_id = 'mch-00002' order by event_at"
    )
    return dict(rows)


def write_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_catalogue_change_after_a_backfill_changes_only_readings_under_the_new_version(
    tmp_path, bronze, lake_builder
):
    lake = tmp_path / "lake"
    # 2013 readings of the default catalogue's mch-00002 (installed 2024): one an hour, June 30 to July 3,
    # vibration 6 mm/s (inside the default valid range 0..100).
    rows = bronze.series(2, datetime(2013, 6, 30, 22), 4, 3600, vibration_mm_s=6.0)
    rows += bronze.series(2, datetime(2013, 7, 2, 22), 4, 3600, first_seq=10, vibration_mm_s=6.0)
    bronze.write(lake, rows, batch_id=0, ingested_at=datetime(2026, 3, 1))
    first = lake_builder(lake, vars=REFERENCE)
    assert first.result.success, first.result.failures
    assert set(reasons(first).values()) == {"before_install"}

    # The device was really installed on July 1 2013 (a change in force from then on), and machines'
    # vibration valid range shrinks to 0..5 from July 3 on.
    settings = Settings.load(env={}, cwd=tmp_path, lake=str(lake))
    device = "device_id,device_type,site_id,installed_at\nmch-00002,machine,site-02,2013-07-01\n"
    import_files(settings, [write_file(tmp_path, "d.csv", device)], effective_from=JULY_1)
    limit = (
        "device_type,metric,unit,valid_min,valid_max,alert_max,max_jump\n"
        "machine,vibration_mm_s,millimetre per second,0,5,4.5,2\n"
    )
    import_files(settings, [write_file(tmp_path, "m.csv", limit)], effective_from=datetime(2013, 7, 3))

    unchanged = lake_builder(lake, vars=REFERENCE)  # silver classified these readings already
    assert reasons(unchanged) == reasons(first)

    backfilled = lake_builder(lake, vars={**REFERENCE, "backfill_from": "2013-06-30", "backfill_to": "2013-07-03"})
    assert backfilled.result.success, backfilled.result.failures
    assert reasons(backfilled) == {
        "06-30 22": "before_install",  # under the first version: installed 2024
        "06-30 23": "before_install",
        "07-01 00": None,  # under the new version: installed July 1 2013
        "07-01 01": None,
        "07-02 22": None,
        "07-02 23": None,
        "07-03 00": "out_of_range",  # under the new limit: vibration 6 > 5
        "07-03 01": "out_of_range",
    }
    assert backfilled.query(
        "select distinct rejected_metric from silver.silver_rejected_readings where rejection_reason = 'out_of_range'"
    ) == [("vibration_mm_s",)]
    assert (
        backfilled.bronze_count()
        == backfilled.query(
            "select (select count(*) from silver.silver_readings)"
            " + (select count(*) from silver.silver_rejected_readings)"
        )[0][0]
    )


def test_per_device_overrides_and_retirement_come_from_the_catalogue(tmp_path, bronze, lake_builder):
    lake = tmp_path / "lake"
    day = bronze.DAY_1 + timedelta(hours=10)
    rows = bronze.series(2, day, 3, 600, vibration_mm_s=20.0)  # mch-00002: 20 mm/s, valid for it alone
    rows += bronze.series(6, day, 3, 600, vibration_mm_s=20.0)  # mch-00006: 20 mm/s, too much for a machine
    bronze.write(lake, rows, batch_id=0, ingested_at=bronze.DAY_1 + timedelta(hours=12))
    settings = Settings.load(env={}, cwd=tmp_path, lake=str(lake))
    override = (
        "device_type,device_id,metric,unit,valid_min,valid_max\n"
        "machine,,vibration_mm_s,millimetre per second,0,10\n"
        "machine,mch-00002,vibration_mm_s,millimetre per second,0,50\n"
    )
    retire = (
        "device_id,device_type,site_id,installed_at,retired_at\nmch-00006,machine,site-01,2024-02-12,2026-03-01 10:15\n"
    )
    files = [write_file(tmp_path, "m.csv", override), write_file(tmp_path, "d.csv", retire)]
    import_files(settings, files, effective_from=datetime(2024, 1, 1))

    built = lake_builder(lake, vars=REFERENCE)

    assert built.result.success, built.result.failures
    outcome = built.query(
        "select device_id, strftime(event_at, '%H:%M'), rejection_reason, rejected_metric "
        "from silver.silver_classified_readings order by all"
    )
    assert outcome == [
        ("mch-00002", "10:00", None, None),
        ("mch-00002", "10:10", None, None),
        ("mch-00002", "10:20", None, None),
        ("mch-00006", "10:00", "out_of_range", "vibration_mm_s"),
        ("mch-00006", "10:10", "out_of_range", "vibration_mm_s"),
        ("mch-00006", "10:20", "after_retirement", None),
    ]
