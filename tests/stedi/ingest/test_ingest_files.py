"""Specification of ``lakehouse ingest-files``: whole files into a source's landing folder, atomically, each
content once, never overwriting, with errors that name the path."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion.ingest_files import ingest_files
from lakehouse.cli import main
from lakehouse.errors import LakehouseError

from .conftest import settings_for

NOON = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
CUSTOMER = b'{"email":"a@test.com","serialNumber":"s-1","registrationDate":1,"lastUpdateDate":2}\n'


def landed(settings, source: str) -> dict[str, bytes]:
    root = Path(settings.lake_root.landing(source))
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_file_is_copied_whole_under_the_hour_of_the_copy_and_a_digest_of_its_content(settings, tmp_path):
    source = tmp_path / "customers.json"
    source.write_bytes(CUSTOMER * 3)

    report = ingest_files(settings, "customer", [source], now=NOON)

    (name,) = landed(settings, "customer")
    assert re.fullmatch(r"2026/11/23/12/customers-[0-9a-f]{16}\.json", name)
    assert landed(settings, "customer")[name] == CUSTOMER * 3
    assert [(f.lines, f.bytes, f.copied) for f in report.files] == [(3, len(CUSTOMER) * 3, True)]


def test_ingesting_the_same_content_again_copies_nothing_even_an_hour_later(settings, tmp_path):
    first, twin = tmp_path / "a.json", tmp_path / "copy-of-a.ndjson"
    first.write_bytes(CUSTOMER)
    twin.write_bytes(CUSTOMER)
    ingest_files(settings, "customer", [first], now=NOON)
    before = {p: p.stat().st_mtime_ns for p in Path(settings.lake_root.landing("customer")).rglob("*.json")}

    again = ingest_files(settings, "customer", [first, twin], now=NOON.replace(hour=13))

    assert [f.copied for f in again.files] == [False, False]
    assert {p: p.stat().st_mtime_ns for p in Path(settings.lake_root.landing("customer")).rglob("*.json")} == before


def test_a_folder_gives_its_json_files_recursively_and_skips_hidden_and_other_files(settings, tmp_path):
    folder = tmp_path / "export"
    (folder / "2022" / "06").mkdir(parents=True)
    (folder / "a.json").write_bytes(b'{"n":1}\n')
    (folder / "2022" / "06" / "b.jsonl").write_bytes(b'{"n":2}\n')
    (folder / "2022" / "c.ndjson").write_bytes(b'{"n":3}\n')
    (folder / ".hidden.json").write_bytes(b'{"n":4}\n')
    (folder / "_SUCCESS.json").write_bytes(b'{"n":5}\n')
    (folder / "notes.txt").write_bytes(b"not data\n")

    report = ingest_files(settings, "accelerometer", [folder], now=NOON)

    assert sorted(Path(f.origin).name for f in report.files) == ["a.json", "b.jsonl", "c.ndjson"]
    assert sorted(landed(settings, "accelerometer").values()) == [b'{"n":1}\n', b'{"n":2}\n', b'{"n":3}\n']
    # Landed names never start with "." or "_", which Spark would skip.
    assert all(Path(name).name[0] not in "._" for name in landed(settings, "accelerometer"))


def test_nothing_is_left_half_written_or_under_a_temporary_name(settings, tmp_path):
    big = tmp_path / "_big export.json"
    big.write_bytes(CUSTOMER * 20_000)
    ingest_files(settings, "customer", [big], now=NOON)
    (name,) = landed(settings, "customer")
    assert Path(name).name.startswith("big-export-")
    assert landed(settings, "customer")[name] == CUSTOMER * 20_000


def test_a_missing_path_is_named_and_nothing_is_copied(settings, tmp_path):
    good = tmp_path / "good.json"
    good.write_bytes(CUSTOMER)
    with pytest.raises(LakehouseError, match=r"nowhere\.json: no such file or folder"):
        ingest_files(settings, "customer", [good, tmp_path / "nowhere.json"], now=NOON)
    assert landed(settings, "customer") == {}


def test_a_gzip_file_is_refused_with_the_command_that_fixes_it(settings, tmp_path):
    packed = tmp_path / "step.json"
    packed.write_bytes(gzip.compress(b'{"n":1}\n'))
    with pytest.raises(LakehouseError, match=r"step\.json: is gzip-compressed; decompress it first \(gunzip -k"):
        ingest_files(settings, "step_trainer", [packed], now=NOON)


def test_a_folder_without_json_files_is_an_error_naming_it(settings, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LakehouseError, match=r"empty: the folder holds no \*\.json, \*\.ndjson or \*\.jsonl files"):
        ingest_files(settings, "customer", [tmp_path / "empty"], now=NOON)


def test_an_unknown_source_names_the_sources_there_are(settings, tmp_path):
    with pytest.raises(LakehouseError, match="unknown source 'customers'; choose one of: customer, accelerometer"):
        ingest_files(settings, "customers", [tmp_path], now=NOON)


def test_the_command_prints_what_it_copied_and_what_had_landed_already(settings, tmp_path, capsys):
    source = tmp_path / "customers.json"
    source.write_bytes(CUSTOMER)
    assert main(["--lake", settings.lake, "ingest-files", "--source", "customer", str(source)]) == 0
    assert main(["--lake", settings.lake, "ingest-files", "--source", "customer", str(source)]) == 0
    out = capsys.readouterr().out
    assert f"copied   {source} -> {settings.lake_root.landing('customer')}/" in out
    assert f"skipped  {source}: the same content already landed as" in out
    assert "ingest-files customer: 0 file(s) copied (0 lines), 1 already landed" in out


def test_the_command_exits_2_naming_a_missing_path(settings, tmp_path, capsys):
    code = main(["--lake", settings.lake, "ingest-files", "--source", "step_trainer", str(tmp_path / "gone.json")])
    assert code == 2
    assert f"{tmp_path / 'gone.json'}: no such file or folder" in capsys.readouterr().err


def test_on_an_s3_lake_each_file_is_one_object_and_lands_once(moto_endpoint, aws_env, tmp_path):
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="stedi-lake")
    settings = settings_for("s3://stedi-lake/lake", aws_endpoint_url=moto_endpoint)
    source = tmp_path / "accel.json"
    source.write_bytes(b'{"user":"a@test.com","timestamp":1655564444103,"x":1,"y":0,"z":0}\n')

    first = ingest_files(settings, "accelerometer", [source], now=NOON)
    again = ingest_files(settings, "accelerometer", [source], now=NOON.replace(hour=14))

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="stedi-lake", Prefix="lake/landing/")["Contents"]]
    assert len(keys) == 1 and re.fullmatch(
        r"lake/landing/accelerometer/2026/11/23/12/accel-[0-9a-f]{16}\.json", keys[0]
    )
    assert s3.get_object(Bucket="stedi-lake", Key=keys[0])["Body"].read() == source.read_bytes()
    assert [f.copied for f in first.files + again.files] == [True, False]
