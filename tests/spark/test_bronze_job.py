"""Specification of the bronze job: exact accounting, batch-addressed files, nothing read twice."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from spark.bronze_job import JOB, run_bronze

GOOD = (
    '{{"device_id":"env-{i:05d}","device_type":"environmental","site_id":"site-01",'
    '"event_time":"2026-11-2{day}T10:00:{s:02d}.000Z","seq":{i},"temperature_c":20.5}}'
)
BAD = [
    "{truncated",
    "",
    '{"device_id":"env-00001"}',
    '{"device_id":"env-00001","device_type":"environmental",'
    '"site_id":"site-01","event_time":"2026-11-23T10:00:00.000Z","seq":"x"}',
]


def write_landing(lake_root: str, name: str, lines: list[str], hour: str = "2026/11/23/10") -> Path:
    folder = Path(lake_root) / "landing" / "readings" / hour
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def bronze_rows(lake) -> list[tuple]:
    return (
        duckdb.connect()
        .execute(
            f"select device_id, seq, event_date from read_parquet('{lake.bronze_readings}/*/*.parquet', "
            "hive_partitioning=true) order by seq"
        )
        .fetchall()
    )


def test_every_landing_line_is_in_bronze_or_quarantine_exactly_once(spark, lake_settings):
    lake = lake_settings.lake_root
    good = [GOOD.format(i=i, day=3 + i % 2, s=i % 60) for i in range(1, 41)]
    write_landing(lake.root, "a.json", good[:20] + BAD[:2])
    write_landing(lake.root, "b.json", good[20:] + BAD[2:])

    report = run_bronze(lake_settings, spark=spark)

    assert (report.lines, report.bronze_rows, report.quarantine_rows) == (44, 40, 4)
    assert dict(report.quarantine_reasons()) == {
        "malformed_json": 1,
        "empty_line": 1,
        "missing_required:device_type": 1,
        "type_mismatch:seq": 1,
    }
    assert len(bronze_rows(lake)) == 40
    quarantined = duckdb.connect().execute(
        f"select reason, raw_line from read_parquet('{lake.quarantine_readings}/*/*.parquet')"
    )
    assert sorted(r[0] for r in quarantined.fetchall()) == sorted(report.quarantine_reasons().elements())
    # Late and early events land in their own event date.
    assert {str(r[2]) for r in bronze_rows(lake)} == {"2026-11-23", "2026-11-24"}


def test_a_second_run_reads_only_new_files(spark, lake_settings):
    lake = lake_settings.lake_root
    write_landing(lake.root, "a.json", [GOOD.format(i=i, day=3, s=i) for i in range(1, 11)])
    first = run_bronze(lake_settings, spark=spark)
    again = run_bronze(lake_settings, spark=spark)
    write_landing(lake.root, "b.json", [GOOD.format(i=i, day=3, s=i) for i in range(11, 16)], hour="2026/11/23/11")
    third = run_bronze(lake_settings, spark=spark)

    assert first.bronze_rows == 10
    assert again.batches == []
    assert third.bronze_rows == 5
    assert third.batches[0].source_files[0].endswith("2026/11/23/11/b.json")
    assert len(bronze_rows(lake)) == 15


def test_each_batch_publishes_files_named_by_its_batch_id_and_a_manifest(spark, lake_settings):
    lake = lake_settings.lake_root
    write_landing(lake.root, "a.json", [GOOD.format(i=i, day=3, s=i) for i in range(1, 6)])
    report = run_bronze(lake_settings, spark=spark)
    batch = report.batches[0]

    files = sorted(p.name for p in Path(lake.bronze_readings).glob("event_date=*/*.parquet"))
    assert files == [f"part-b{batch.batch_id:010d}-00000.parquet"]
    manifest = json.loads((Path(lake.manifests(JOB)) / f"batch-{batch.batch_id:010d}.json").read_text())
    assert (manifest["lines"], manifest["bronze_rows"], manifest["quarantine_rows"]) == (5, 5, 0)
    assert manifest["event_dates"] == ["2026-11-23"]
    assert not list(Path(lake.root).glob("_staging/**/*.parquet"))
