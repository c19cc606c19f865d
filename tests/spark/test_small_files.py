"""Specification of bronze on a landing zone of many tiny files, as Firehose leaves them: every line of
every file is accounted for, in bronze or in quarantine, and every row names the file it came from."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb

from spark.bronze_job import run_bronze

FILES = 2400
GOOD = (
    '{{"device_id":"env-{d:05d}","device_type":"environmental","site_id":"site-01",'
    '"event_time":"2026-11-23T{h:02d}:{m:02d}:{s:02d}.000Z","seq":{i},"temperature_c":20.5}}'
)
DIRTY = ['{"device_id":"env-00001","device_ty', "not json at all", '{"device_id":"env-00002"}']


def tiny_file(n: int) -> tuple[str, list[str]]:
    """The text of landing file ``n`` and the lines Spark's text source reads from it.

    Eight kinds in turn: empty, one line without a newline, one line with one, a dirty line alone, three
    lines, three lines without the last newline, a blank line, and lines ending in CRLF.
    """
    good = [GOOD.format(d=n % 40 + 1, h=n % 24, m=n % 60, s=k, i=n * 10 + k) for k in range(3)]
    kind = n % 8
    if kind == 0:
        return "", []
    if kind == 1:
        return good[0], good[:1]
    if kind == 2:
        return good[0] + "\n", good[:1]
    if kind == 3:
        return DIRTY[n % 3] + "\n", [DIRTY[n % 3]]
    if kind == 4:
        return "\n".join(good) + "\n", good
    if kind == 5:
        lines = [good[0], DIRTY[n % 3], good[2]]
        return "\n".join(lines), lines
    if kind == 6:
        return "\n", [""]
    return "\r\n".join(good) + "\r\n", good


def land_tiny_files(lake_root: str) -> dict[str, list[str]]:
    """Writes FILES tiny files over 24 hour folders; returns each file's path and its lines."""
    written = {}
    for n in range(FILES):
        folder = Path(lake_root) / "landing" / "readings" / "2026" / "11" / "23" / f"{n % 24:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        text, lines = tiny_file(n)
        path = folder / f"sim-{n:05d}.json"
        path.write_text(text, newline="")
        written[str(path)] = lines
    return written


def local_path(source_file: str) -> str:
    return unquote(urlparse(source_file).path)


def test_thousands_of_tiny_files_are_accounted_for_line_by_line_with_their_source_file(spark, lake_settings):
    lake = lake_settings.lake_root
    written = land_tiny_files(lake.root)
    lines = sum(len(v) for v in written.values())

    report = run_bronze(lake_settings, spark=spark)

    assert report.lines == lines == report.bronze_rows + report.quarantine_rows
    con = duckdb.connect()
    bronze = con.execute(
        f"select _source_file, count(*) from read_parquet('{lake.bronze_readings}/*/*.parquet') group by 1"
    ).fetchall()
    quarantine = con.execute(
        f"select _source_file, raw_line, reason from read_parquet('{lake.quarantine_readings}/*/*.parquet')"
    ).fetchall()
    assert sum(n for _, n in bronze) == report.bronze_rows
    assert len(quarantine) == report.quarantine_rows
    # Per file: its bronze rows and quarantined lines are exactly the lines it holds.
    per_file = Counter({local_path(f): n for f, n in bronze})
    per_file.update(local_path(f) for f, _, _ in quarantine)
    assert per_file == Counter({path: len(v) for path, v in written.items() if v})
    # A quarantined line keeps its raw text and a reason, and is a line of the file it names.
    for source_file, raw_line, reason in quarantine:
        assert reason
        assert raw_line in written[local_path(source_file)]
    assert Counter(reason for _, _, reason in quarantine) == Counter(
        {"malformed_json": 400, "missing_required:device_type": 200, "empty_line": 300}
    )
    assert sorted(local_path(f) for b in report.batches for f in b.source_files) == sorted(
        path for path, v in written.items() if v
    )
