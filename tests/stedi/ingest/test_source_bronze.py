"""Specification of bronze for the STEDI sources: the same job as readings, one query per source, exact
accounting (landing lines = bronze + quarantine), every real-world quirk in bronze with its value, and the
columns the trusted models read."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from ingestion.ingest_files import ingest_files
from ingestion.stedi import StediConfig, produce_stedi
from lakehouse.cli import main
from lakehouse.source_contracts import SOURCES
from spark.bronze_job import run_bronze

from .conftest import settings_for

# Hand-written lines per source: (line, reason or None for bronze). Simulated files come on top.
QUIRKS: dict[str, list[tuple[str, str | None]]] = {
    "customer": [
        ('{"customerName":"Int Consent","email":"int@test.com","phone":"8015551212","birthDay":"1963-02-27",'
         '"serialNumber":"s-int","registrationDate":1655564376361,"lastUpdateDate":1655564376361,'
         '"shareWithResearchAsOfDate":1655564376361,"shareWithPublicAsOfDate":1655564376361,'
         '"shareWithFriendsAsOfDate":1655564376361}', None),
        ('{"email":"float@test.com","serialNumber":"s-float","registrationDate":1655564376361.0,'
         '"lastUpdateDate":1655564376361.0,"shareWithResearchAsOfDate":1655564376361.0}', None),
        ('{"email":"null@test.com","serialNumber":"s-null","registrationDate":1655564376361,'
         '"lastUpdateDate":1655564376361,"shareWithResearchAsOfDate":null,"shareWithPublicAsOfDate":null}', None),
        ('{"email":"absent@test.com","birthDay":"0399-01-01","serialNumber":"s-absent",'
         '"registrationDate":1655564376361,"lastUpdateDate":1655564376361}', None),
        ('{"email":"short@test.com","birthDay":"399-01-01","serialNumber":"s-short","phone":8015551212,'
         '"registrationDate":1655564376361,"lastUpdateDate":1655564376361,"source":"web","tags":["a","b"]}', None),
        ('{"serialNumber":"s-x","registrationDate":1655564376361,"lastUpdateDate":1655564376361}',
         "missing_required:email"),
        ('{"email":null,"serialNumber":"s-x","registrationDate":1655564376361,"lastUpdateDate":1655564376361}',
         "missing_required:email"),
        ('{"email":"x@test.com","serialNumber":"s-x","lastUpdateDate":1655564376361}',
         "missing_required:registrationDate"),
        ('{"email":"x@test.com","serialNumber":"s-x","registrationDate":1655564376361,"lastUpdateDate":"yesterday"}',
         "type_mismatch:lastUpdateDate"),
        ('{"email":"x@test.com","serialNumber":"s-x","registrationDate":1655564376361,"lastUpdateDate":1655564376,'
         '"shareWithResearchAsOfDate":1655564376361}', "impossible_timestamp:lastUpdateDate"),
        ('{"email":"x@test.com","serialNumber":"s-x","registrationDate":1655564376361,"lastUpdateDate":1655564376361,'
         '"shareWithResearchAsOfDate":"2022-06-18"}', "type_mismatch:shareWithResearchAsOfDate"),
        ("", "empty_line"),
        ("[1, 2]", "malformed_json"),
        ('{"email":"x@test.com","serialNumber":"s-x",', "malformed_json"),
    ],
    "accelerometer": [
        ('{"user":"int@test.com","timestamp":1655596799999,"x":1,"y":-1,"z":0}', None),  # 23:59:59.999 UTC
        ('{"user":"int@test.com","timeStamp":1655596800000.0,"x":0.5,"y":0.25,"z":-0.75}', None),  # next day
        ('{"user":"int@test.com","timestamp":1655564444103,"x":1.0,"y":1.0,"z":1.0,"device":"iPhone"}', None),
        ('{"user":"int@test.com","timestamp":1655564444103,"x":"1.5","y":1.0,"z":1.0}', "type_mismatch:x"),
        ('{"user":"int@test.com","timestamp":1655564444103,"x":1.0,"y":1.0}', "missing_required:z"),
        ('{"timestamp":1655564444103,"x":1.0,"y":1.0,"z":1.0}', "missing_required:user"),
        ('{"user":"int@test.com","timestamp":1e300,"x":1.0,"y":1.0,"z":1.0}', "type_mismatch:timestamp"),
        ('{"user":"int@test.com","timestamp":4102444800000,"x":1.0,"y":1.0,"z":1.0}',
         "impossible_timestamp:timestamp"),
    ],
    "step_trainer": [
        ('{"sensorReadingTime":1655564444103,"serialNumber":"s-int","distanceFromObject":218}', None),
        ('{"sensorReadingTime":1655564444603.0,"serialNumber":"s-int","distanceFromObject":218.5}', None),
        ('{"sensorReadingTime":1655564444103,"distanceFromObject":218}', "missing_required:serialNumber"),
        ('{"sensorReadingTime":1655564444103,"serialNumber":"s-int","distanceFromObject":null}',
         "missing_required:distanceFromObject"),
        ('{"sensorReadingTime":1655564444103,"serialNumber":"s-int","distanceFromObject":"far"}',
         "type_mismatch:distanceFromObject"),
        ("\x00\x17 garbage", "malformed_json"),
    ],
}  # fmt: skip

BRONZE_COLUMNS = {
    "customer": [
        ("customer_name", "VARCHAR"),
        ("email", "VARCHAR"),
        ("phone", "VARCHAR"),
        ("birth_day", "VARCHAR"),
        ("serial_number", "VARCHAR"),
        ("registration_date_ms", "BIGINT"),
        ("last_update_date_ms", "BIGINT"),
        ("share_with_research_as_of_date_ms", "BIGINT"),
        ("share_with_public_as_of_date_ms", "BIGINT"),
        ("share_with_friends_as_of_date_ms", "BIGINT"),
    ],
    "accelerometer": [
        ("user_email", "VARCHAR"),
        ("timestamp_ms", "BIGINT"),
        ("x", "DOUBLE"),
        ("y", "DOUBLE"),
        ("z", "DOUBLE"),
    ],
    "step_trainer": [
        ("sensor_reading_time_ms", "BIGINT"),
        ("serial_number", "VARCHAR"),
        ("distance_from_object", "DOUBLE"),
    ],
}
METADATA_COLUMNS = [
    ("_rescued_data", "VARCHAR"),
    ("_ingested_at", "TIMESTAMP"),
    ("_source_file", "VARCHAR"),
    ("_batch_id", "BIGINT"),
    ("_schema_version", "INTEGER"),
    ("event_date", "DATE"),
]


def query(sql: str) -> list[tuple]:
    return duckdb.connect().execute(sql).fetchall()


def bronze(lake, source: str) -> str:
    return f"read_parquet('{lake.bronze(source)}/*/*.parquet', hive_partitioning=true)"


def quarantine(lake, source: str) -> str:
    return f"read_parquet('{lake.quarantine(source)}/*/*.parquet', hive_partitioning=true)"


@pytest.fixture(scope="module")
def landed(spark, tmp_path_factory):
    """A lake with a simulated STEDI dataset and a quirks file per source, landed by one bronze run."""
    root = tmp_path_factory.mktemp("stedi") / "lake"
    settings = settings_for(root)
    produced = produce_stedi(settings, StediConfig(customers=12, seed=2))
    quirks = tmp_path_factory.mktemp("quirks")
    for source, rows in QUIRKS.items():
        (quirks / f"{source}-quirks.json").write_text("\n".join(line for line, _ in rows) + "\n")
        ingest_files(settings, source, [quirks / f"{source}-quirks.json"])
    report = run_bronze(settings, spark=spark)
    return settings, produced, report


def test_every_landing_line_of_every_source_is_in_bronze_or_quarantine_exactly_once(landed):
    settings, produced, report = landed
    lake = settings.lake_root
    for source, rows in QUIRKS.items():
        simulated = produced.answers["landing"][source]["lines"]
        bronze_rows = query(f"select count(*) from {bronze(lake, source)}")[0][0]
        quarantined = query(f"select reason, raw_line from {quarantine(lake, source)}")
        batches = report.sources[source]
        assert sum(b.lines for b in batches) == simulated + len(rows), source
        assert bronze_rows == sum(b.bronze_rows for b in batches) == simulated + sum(r is None for _, r in rows)
        assert sorted(quarantined) == sorted((r, line) for line, r in rows if r is not None), source
        assert sum(b.quarantine_rows for b in batches) == len(quarantined)


def test_the_simulated_files_land_whole_in_bronze(landed):
    settings, produced, _ = landed
    for source in SOURCES:
        rows = query(
            f"select count(*) from {bronze(settings.lake_root, source)} where _source_file like '%-stedi-s2-%'"
        )[0][0]
        assert rows == produced.answers["landing"][source]["bronze_rows"], source


def test_bronze_has_the_columns_and_types_the_trusted_models_read(landed):
    settings, _, _ = landed
    for source, columns in BRONZE_COLUMNS.items():
        described = query(f"describe select * from {bronze(settings.lake_root, source)}")
        assert [(name, kind) for name, kind, *_ in described] == columns + METADATA_COLUMNS, source


def test_consent_dates_as_integers_floats_nulls_or_absent_keys_all_land(landed):
    settings, _, _ = landed
    rows = dict(
        query(
            f"select email, share_with_research_as_of_date_ms from {bronze(settings.lake_root, 'customer')} "
            "where email in ('int@test.com', 'float@test.com', 'null@test.com', 'absent@test.com')"
        )
    )
    assert rows == {
        "int@test.com": 1655564376361,
        "float@test.com": 1655564376361,
        "null@test.com": None,
        "absent@test.com": None,
    }


def test_birth_days_are_kept_as_sent_and_numbers_in_text_keys_as_their_text(landed):
    settings, _, _ = landed
    rows = query(
        f"select email, birth_day, phone from {bronze(settings.lake_root, 'customer')} "
        "where email in ('absent@test.com', 'short@test.com') order by email"
    )
    assert rows == [("absent@test.com", "0399-01-01", None), ("short@test.com", "399-01-01", "8015551212")]


def test_unknown_keys_are_kept_in_rescued_data(landed):
    settings, _, _ = landed
    lake = settings.lake_root
    ((customer,),) = query(f"select _rescued_data from {bronze(lake, 'customer')} where email = 'short@test.com'")
    assert json.loads(customer) == {"source": "web", "tags": '["a","b"]'}
    rescued = query(f"select _rescued_data from {bronze(lake, 'accelerometer')} where _rescued_data is not null")
    assert [json.loads(r[0]) for r in rescued] == [{"device": "iPhone"}]
    assert query(f"select count(*) from {bronze(lake, 'step_trainer')} where _rescued_data is not null") == [(0,)]


def test_event_date_is_the_utc_date_of_the_record_time_and_timeStamp_is_read_as_timestamp(landed):
    settings, _, _ = landed
    rows = query(
        f"select timestamp_ms, x, cast(event_date as varchar) from {bronze(settings.lake_root, 'accelerometer')} "
        "where user_email = 'int@test.com' order by timestamp_ms"
    )
    assert rows == [
        (1655564444103, 1.0, "2022-06-18"),
        (1655596799999, 1.0, "2022-06-18"),
        (1655596800000, 0.5, "2022-06-19"),
    ]


def test_each_source_publishes_batch_addressed_files_and_its_own_manifests(landed):
    settings, _, report = landed
    lake = settings.lake_root
    for source in SOURCES:
        (batch,) = report.sources[source]
        files = sorted(p.name for p in Path(lake.bronze(source)).glob("event_date=*/*.parquet"))
        assert files and all(name.startswith(f"part-b{batch.batch_id:010d}-") for name in files)
        manifest = json.loads(
            (Path(lake.manifests(f"bronze_{source}")) / f"batch-{batch.batch_id:010d}.json").read_text()
        )
        assert (manifest["lines"], manifest["bronze_rows"], manifest["quarantine_rows"]) == (
            batch.lines,
            batch.bronze_rows,
            batch.quarantine_rows,
        )
        assert Path(lake.checkpoint(f"bronze_{source}")).is_dir()
    assert report.batches == []  # no readings in this lake


def test_lakehouse_bronze_once_lands_only_new_files_of_the_source_that_got_them(landed, tmp_path, capsys):
    # Adds to the shared lake, so it comes after the specs that count its rows. The command reuses the
    # session's Spark (getOrCreate).
    settings, _, _ = landed
    extra = tmp_path / "late.json"
    extra.write_text(
        '{"sensorReadingTime":1655564999000,"serialNumber":"s-late","distanceFromObject":1}\n'
        '{"sensorReadingTime":1655564999000,"serialNumber":"s-late"}\n'
    )
    ingest_files(settings, "step_trainer", [extra])

    assert main(["--lake", settings.lake, "bronze", "--once"]) == 0

    out = capsys.readouterr().out
    assert "bronze step_trainer: 2 lines: 1 bronze, 1 quarantined" in out
    assert "quarantined        1  missing_required:distanceFromObject" in out
    assert "bronze customer" not in out and "bronze accelerometer" not in out
    late = query(
        f"select serial_number from {bronze(settings.lake_root, 'step_trainer')} where serial_number = 's-late'"
    )
    assert late == [("s-late",)]


def test_a_lake_without_source_landing_folders_lands_readings_only(spark, lake_settings):
    folder = Path(lake_settings.lake_root.landing_readings, "2026", "11", "23", "10")
    folder.mkdir(parents=True)
    (folder / "r.json").write_text(
        '{"device_id":"env-00001","device_type":"environmental","site_id":"site-01",'
        '"event_time":"2026-11-23T10:00:00.000Z","seq":1,"temperature_c":20.5}\n'
    )
    report = run_bronze(lake_settings, spark=spark)
    assert report.bronze_rows == 1 and report.sources == {}
    assert not any(Path(lake_settings.lake_root.bronze(source)).exists() for source in SOURCES)
