"""Specification of the dashboard's private warehouse copy: it sees another process's write lock without
taking a lock, copies only when nobody writes, keeps showing the previous copy meanwhile, and never stops
a writer from opening the warehouse."""

from __future__ import annotations

import duckdb
import pytest

from dashboards.data import DashboardData, NoWarehouse
from dashboards.snapshot import WarehouseSnapshot, writer_pid
from lakehouse.lake import Lake


@pytest.fixture
def warehouse(tmp_path):
    """A lake folder whose warehouse has a table with one row."""
    path = Lake(str(tmp_path / "lake")).warehouse
    path.parent.mkdir()
    with duckdb.connect(str(path)) as con:
        con.execute("create table readings as select 1 as reading_id")
    return path


def rows_in(snapshot: WarehouseSnapshot) -> int:
    with duckdb.connect(str(snapshot.current.path), read_only=True) as con:
        return con.execute("select count(*) from readings").fetchall()[0][0]


def test_a_write_lock_held_by_another_process_is_seen_with_its_process_id(warehouse, holders):
    assert writer_pid(warehouse) is None
    writer = holders.hold(warehouse, "write")
    assert writer_pid(warehouse) == writer.pid
    holders.release(writer)
    assert writer_pid(warehouse) is None


def test_a_read_only_connection_elsewhere_is_not_a_writer(warehouse, holders):
    holders.hold(warehouse, "read")
    assert writer_pid(warehouse) is None


def test_asking_for_the_lock_takes_none_a_writer_can_open_right_after(warehouse, holders):
    for _ in range(20):
        assert writer_pid(warehouse) is None
    writer = holders.hold(warehouse, "write", "insert into readings values (2)")
    assert writer.poll() is None


def test_the_previous_copy_is_kept_while_a_writer_holds_the_warehouse(warehouse, holders, tmp_path):
    snapshot = WarehouseSnapshot(warehouse, tmp_path / "copies", min_interval_s=0)
    assert snapshot.refresh().status == "copied"
    assert rows_in(snapshot) == 1

    writer = holders.hold(warehouse, "write", "insert into readings values (2); checkpoint")
    busy = snapshot.refresh()
    assert (busy.status, busy.writer_pid) == ("busy", writer.pid)
    assert "dbt is writing the warehouse" in busy.message
    assert rows_in(snapshot) == 1

    holders.release(writer)
    fresh = snapshot.refresh()
    assert fresh.status == "copied"
    assert fresh.snapshot.version == 2
    assert rows_in(snapshot) == 2


def test_the_dashboard_reading_its_copy_never_stops_a_writer_from_opening_the_warehouse(warehouse, holders, tmp_path):
    data = DashboardData(Lake(str(warehouse.parent)), tmp_path / "copies", min_refresh_interval_s=0)
    data.refresh()
    with data.warehouse() as con:
        writer = holders.hold(warehouse, "write", "insert into readings values (3)")
        assert con.execute("select count(*) from readings").fetchall() == [(1,)]
    assert writer.poll() is None, "the writer opened the warehouse while the dashboard was reading"


def test_an_unchanged_warehouse_is_not_copied_again(warehouse, tmp_path):
    snapshot = WarehouseSnapshot(warehouse, tmp_path / "copies", min_interval_s=0)
    first = snapshot.refresh()
    again = snapshot.refresh()
    assert (first.status, again.status) == ("copied", "unchanged")
    assert again.snapshot == first.snapshot
    assert [p.name for p in (tmp_path / "copies").iterdir()] == ["1"]


def test_a_newer_copy_replaces_the_older_one_on_disk(warehouse, tmp_path):
    snapshot = WarehouseSnapshot(warehouse, tmp_path / "copies", min_interval_s=0)
    snapshot.refresh()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("insert into readings values (2)")
    assert snapshot.refresh().status == "copied"
    assert [p.name for p in (tmp_path / "copies").iterdir()] == ["2"]
    snapshot.close()
    assert not (tmp_path / "copies").exists()


def test_refreshes_within_the_minimum_interval_reuse_the_last_answer(warehouse, tmp_path):
    snapshot = WarehouseSnapshot(warehouse, tmp_path / "copies", min_interval_s=3600)
    first = snapshot.refresh()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("insert into readings values (2)")
    assert snapshot.refresh() is first
    assert snapshot.refresh(force=True).status == "copied"


def test_a_lake_without_a_warehouse_says_how_to_build_one(tmp_path):
    data = DashboardData(Lake(str(tmp_path / "lake")), tmp_path / "copies")
    result = data.refresh()
    assert result.status == "missing"
    assert "lakehouse demo" in result.message
    with pytest.raises(NoWarehouse, match="lakehouse demo"), data.warehouse():
        pass


def test_a_remote_lake_is_refused_with_the_quicksight_alternative(tmp_path):
    from lakehouse.errors import LakehouseError

    with pytest.raises(LakehouseError, match="quicksight deploy"):
        DashboardData(Lake("s3://bucket/lake"), tmp_path / "copies")


def test_the_dashboard_command_refuses_a_remote_lake_and_names_the_alternative(capsys):
    from lakehouse.cli import main

    assert main(["--lake", "s3://bucket/lake", "dashboard"]) == 2
    assert "use `lakehouse quicksight deploy`" in capsys.readouterr().err
