"""Specification of the catalogue: the user's device types, metrics and devices, kept in the lake,
imported as a whole or not at all, versioned with the time each change took effect."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from lakehouse.catalogue import SINCE_ALWAYS, CatalogueError
from lakehouse.catalogue_store import changes_uri, import_files, in_force, read_versions, state_of
from lakehouse.cli import main
from lakehouse.config import Settings

PUMP_TYPES = "device_type,reporting_interval_s,silence_after_s,description\npump,60,600,Test-bench pump\n"
PUMP_METRICS = (
    "device_type,metric,unit,valid_min,valid_max,alert_min,alert_max,max_jump\n"
    "pump,current_a,ampere,0,50,,40,10\n"
    "pump,flow_l_min,litre per minute,0,500,5,,100\n"
)
PUMP_DEVICES = "device_id,device_type,site_id,installed_at\npump-001,pump,bench-1,2023-05-01\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(env={}, cwd=tmp_path, lake=str(tmp_path / "lake"))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def files_of(settings: Settings) -> dict[str, bytes]:
    folder = Path(changes_uri(settings))
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))} if folder.exists() else {}


def test_a_new_lake_gets_the_simulators_fleet_as_its_default_catalogue(settings):
    (version,) = read_versions(settings) or [None]
    assert version is None  # nothing is written until something needs the catalogue

    main(["--lake", settings.lake, "catalog", "list", "--kind", "device_type"])

    (default,) = read_versions(settings)
    kinds = [e.kind for e in default.entries]
    assert (kinds.count("device_type"), kinds.count("metric"), kinds.count("device")) == (4, 10, 1000)
    machine = state_of([default]).entries[("device", "mch-00002")]
    assert (machine.get("device_type"), machine.get("site_id"), machine.valid_from) == (
        "machine",
        "site-02",
        SINCE_ALWAYS,
    )


def test_an_import_of_types_metrics_and_devices_is_one_new_version(tmp_path, settings):
    report = import_files(
        settings,
        [
            write(tmp_path, "types.csv", PUMP_TYPES),
            write(tmp_path, "m.csv", PUMP_METRICS),
            write(tmp_path, "d.csv", PUMP_DEVICES),
        ],
    )

    assert (report.version, report.added, report.changed) == (2, 4, 0)
    versions = read_versions(settings)
    assert [v.version for v in versions] == [1, 2]
    device = state_of(versions).entries[("device", "pump-001")]
    assert (device.get("site_id"), device.get("installed_at"), device.valid_from) == (
        "bench-1",
        datetime(2023, 5, 1),
        SINCE_ALWAYS,
    )
    flow = state_of(versions).entries[("metric", "pump", "", "flow_l_min")]
    assert (flow.get("unit"), flow.get("alert_min"), flow.get("alert_max")) == ("litre per minute", 5.0, None)


def test_importing_the_same_file_again_changes_nothing(tmp_path, settings):
    types = write(tmp_path, "types.csv", PUMP_TYPES)
    import_files(settings, [types])
    before = files_of(settings)

    report = import_files(settings, [types])

    assert report.version is None and report.unchanged == 1
    assert files_of(settings) == before


def test_a_change_is_a_new_version_in_force_from_its_time_and_history_is_kept(tmp_path, settings):
    import_files(settings, [write(tmp_path, "t.csv", PUMP_TYPES), write(tmp_path, "m.csv", PUMP_METRICS)])
    raised = PUMP_METRICS.replace("pump,current_a,ampere,0,50,,40,10", "pump,current_a,ampere,0,80,,60,10")

    report = import_files(settings, [write(tmp_path, "m2.csv", raised)], effective_from=datetime(2024, 1, 1))

    assert (report.version, report.changed, report.unchanged) == (3, 1, 1)
    versions = read_versions(settings)
    key = ("metric", "pump", "", "current_a")
    assert in_force(versions, "metric", datetime(2023, 12, 31))[key].get("valid_max") == 50.0
    assert in_force(versions, "metric", datetime(2024, 1, 1))[key].get("valid_max") == 80.0


def test_a_change_without_a_time_takes_effect_when_it_is_imported(tmp_path, settings):
    import_files(settings, [write(tmp_path, "t.csv", PUMP_TYPES)])
    slower = PUMP_TYPES.replace("pump,60,600", "pump,120,900")

    import_files(settings, [write(tmp_path, "t2.csv", slower)], now=datetime(2026, 6, 1, 12, 0))

    entry = state_of(read_versions(settings)).entries[("device_type", "pump")]
    assert (entry.get("reporting_interval_s"), entry.valid_from) == (120.0, datetime(2026, 6, 1, 12, 0))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        pytest.param(
            "d.csv",
            "device_id,device_type,site_id,installed_at\nx-1,submarine,s1,2024-01-01\n",
            r"d\.csv:2: unknown device type 'submarine'; import the device type first .* known types: environmental",
            id="an unknown device type",
        ),
        pytest.param(
            "d.csv",
            "device_id,device_type,site_id,installed_at\nx-1,machine,s1,2024-01-01\nx-1,machine,s2,2024-02-01\n",
            r"d\.csv:3: device x-1 is given twice \(also at \S*d\.csv:2\); keep one row per device",
            id="a duplicate device",
        ),
        pytest.param(
            "d.csv",
            "device_id,device_type,site_id,installed_at\nx-1,machine,s1,last tuesday\n",
            r"d\.csv:2: installed_at='last tuesday' is not a date or time; write a UTC date or time like 2013-07-04",
            id="a bad date",
        ),
        pytest.param(
            "m.csv",
            "device_type,metric,unit,valid_min,valid_max\nmachine,temperature_c,degree Fahrenheit,-40,300\n",
            r"m\.csv:2: metric temperature_c in 'degree Fahrenheit' but the catalogue .* has it in 'degree Celsius'; "
            r"a metric has one unit everywhere: .* \(e\.g\. temperature_c_degree_fahrenheit\)",
            id="a unit conflict",
        ),
        pytest.param(
            "d.csv",
            'device_id,device_type,site_id,installed_at\nx-1,machine,s1,2024-01-01\nx-2,machine,"s2,2024-01-01\n',
            r"d\.csv:3: 3 cells but the header has 4",
            id="a malformed line",
        ),
        pytest.param(
            "d.json",
            '[\n  {"device_id": "x-1", "device_type": "machine", "site_id": "s1", "installed_at": "2024-01-01"},\n'
            '  {"device_id": "x-2", "device_type": "machine", "site_id": "s1", "installed_at": "2024-13-01"}\n]\n',
            r"d\.json:3: installed_at='2024-13-01' is not a date or time",
            id="a bad date in JSON, with its line",
        ),
    ],
)
def test_a_bad_import_names_file_line_and_fix_and_leaves_the_catalogue_unchanged(
    tmp_path, settings, name, content, message
):
    good = write(tmp_path, "good.csv", PUMP_TYPES)  # a good file in the same import is not applied either
    import_files(
        settings, [write(tmp_path, "first.csv", "device_type,reporting_interval_s,silence_after_s\nfan,5,60\n")]
    )
    before = files_of(settings)

    with pytest.raises(CatalogueError, match=message) as refused:
        import_files(settings, [good, write(tmp_path, name, content)])

    assert str(refused.value).startswith("catalogue import refused, nothing changed")
    assert files_of(settings) == before


def test_the_cli_prints_the_refusal_and_exits_2(tmp_path, settings, capsys):
    bad = write(tmp_path, "d.csv", "device_id,device_type,site_id,installed_at\nx-1,submarine,s1,2024-01-01\n")
    assert main(["--lake", settings.lake, "catalog", "import", str(bad)]) == 2
    assert "d.csv:2: unknown device type 'submarine'" in capsys.readouterr().err


def test_aws_iot_list_things_json_imports_devices_with_attributes_as_columns(tmp_path, settings):
    things = {
        "things": [
            {
                "thingName": "press-17",
                "thingTypeName": "machine",
                "thingArn": "arn:aws:iot:eu-west-1:123456789012:thing/press-17",
                "attributes": {"site_id": "plant-3", "installed_at": "2025-02-03T08:00:00Z"},
                "version": 4,
            },
            {
                "thingName": "room-2",
                "thingTypeName": "environmental",
                "thingArn": "arn:aws:iot:eu-west-1:123456789012:thing/room-2",
                "attributes": {"site_id": "plant-3", "installed_at": "2025-02-04", "retired_at": "2026-01-01"},
                "version": 1,
            },
        ]
    }
    path = write(tmp_path, "things.json", json.dumps(things, indent=2))

    import_files(settings, [path])

    state = state_of(read_versions(settings))
    press, room = state.entries[("device", "press-17")], state.entries[("device", "room-2")]
    assert (press.get("device_type"), press.get("site_id"), press.get("installed_at")) == (
        "machine",
        "plant-3",
        datetime(2025, 2, 3, 8, 0),
    )
    assert room.get("retired_at") == datetime(2026, 1, 1)


def test_a_json_document_with_sections_and_a_per_device_override(tmp_path, settings):
    document = {
        "device_types": [{"device_type": "pump", "reporting_interval_s": 60, "silence_after_s": 600}],
        "metrics": [
            {"device_type": "pump", "metric": "current_a", "unit": "ampere", "valid_min": 0, "valid_max": 50},
            {"device_type": "pump", "device_id": "pump-001", "metric": "current_a", "unit": "ampere",
             "valid_min": 0, "valid_max": 90},
        ],
        "devices": [{"device_id": "pump-001", "device_type": "pump", "site_id": "b1", "installed_at": "2023-05-01"}],
    }  # fmt: skip
    import_files(settings, [write(tmp_path, "all.json", json.dumps(document))])

    metrics = in_force(read_versions(settings), "metric", datetime(2024, 1, 1))
    assert metrics[("metric", "pump", "", "current_a")].get("valid_max") == 50.0
    assert metrics[("metric", "pump", "pump-001", "current_a")].get("valid_max") == 90.0


def test_duckdb_reads_every_version_of_the_catalogue_from_the_lake(tmp_path, settings):
    import_files(settings, [write(tmp_path, "t.csv", PUMP_TYPES), write(tmp_path, "d.csv", PUMP_DEVICES)])

    rows = duckdb.sql(
        f"select version, kind, count(*) from read_parquet('{changes_uri(settings)}/*.parquet') "
        f"group by all order by all"
    ).fetchall()

    assert rows == [
        (1, "device", 1000),
        (1, "device_type", 4),
        (1, "metric", 10),
        (2, "device", 1),
        (2, "device_type", 1),
    ]


def test_catalog_show_prints_a_device_with_its_type_metrics_and_history(tmp_path, settings, capsys):
    main(["--lake", settings.lake, "catalog", "import", str(write(tmp_path, "t.csv", PUMP_TYPES)),
          str(write(tmp_path, "m.csv", PUMP_METRICS)), str(write(tmp_path, "d.csv", PUMP_DEVICES))])  # fmt: skip
    capsys.readouterr()

    assert main(["--lake", settings.lake, "catalog", "show", "pump-001"]) == 0

    out = capsys.readouterr().out
    assert "pump-001         pump             bench-1    installed 2023-05-01 00:00:00" in out
    assert "metric flow_l_min of pump" in out and "[0, 500] litre per minute; alert min 5; max jump 100" in out
    assert "version 2" in out
    assert main(["--lake", settings.lake, "catalog", "show", "nope-1"]) == 2
    assert "device nope-1 is not in the catalogue" in capsys.readouterr().err
