"""Specification of the QuickSight definitions and their deployment.

Every request is checked against botocore's QuickSight service model: ``validate_parameters`` (required
members, types, no unknown keys) and, stricter, every enum value, length, range and pattern the model
declares. The definition is checked for what the model cannot see (columns that exist, fields that
actions name, layouts that place every visual). Deployment runs through boto3 against a moto server on
127.0.0.1 with the calls moto implements (data sources, data sets, dashboards; not analyses).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import validate_parameters

from dashboards import PAGES
from dashboards.quicksight.definitions import TABLE_BY_KEY, TABLES, QuickSightTarget, build_resources
from dashboards.quicksight.deploy import DeployError, deploy, quicksight_client
from lakehouse.config import DBT_PROJECT_DIR
from lakehouse.contract import load_metric_limits
from lakehouse.errors import LakehouseError

ACCOUNT = "123456789012"
REGION = "us-east-1"
ANALYSTS = f"arn:aws:quicksight:{REGION}:{ACCOUNT}:group/default/analysts"
MODEL = botocore.session.get_session().get_service_model("quicksight")
TARGET = QuickSightTarget(ACCOUNT, REGION, principals=(ANALYSTS,))
RESOURCES = build_resources(TARGET)
REQUESTS = RESOURCES.create_requests() + RESOURCES.update_requests()


def strict_problems(value: Any, shape, path: str) -> Iterator[str]:
    """What botocore's validator does not check: enums, maximum lengths and sizes, ranges, patterns."""
    kind, meta = shape.type_name, shape.metadata
    if kind == "structure":
        for name, member in value.items():
            yield from strict_problems(member, shape.members[name], f"{path}.{name}")
    elif kind == "list":
        if len(value) > meta.get("max", len(value)):
            yield f"{path}: {len(value)} items, at most {meta['max']}"
        for i, item in enumerate(value):
            yield from strict_problems(item, shape.member, f"{path}[{i}]")
    elif kind == "map":
        for key, item in value.items():
            yield from strict_problems(key, shape.key, f"{path}<{key}>")
            yield from strict_problems(item, shape.value, f"{path}[{key}]")
    elif kind == "string":
        if shape.enum and value not in shape.enum:
            yield f"{path}: {value!r} is not one of {shape.name}'s values"
        if len(value) > meta.get("max", len(value)):
            yield f"{path}: {len(value)} characters, at most {meta['max']}"
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            yield f"{path}: {value!r} does not match {meta['pattern']}"
    elif kind in ("integer", "long", "double", "float"):
        low, high = meta.get("min", value), meta.get("max", value)
        if not low <= value <= high:
            yield f"{path}: {value} outside [{low}, {high}]"


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: f"{r.operation}-{r.params.get('DataSetId', '')}")
def test_every_request_is_valid_for_botocores_quicksight_model(request_):
    input_shape = MODEL.operation_model(request_.operation).input_shape
    validate_parameters(request_.params, input_shape)  # raises ParamValidationError with every problem
    assert list(strict_problems(request_.params, input_shape, request_.operation)) == []


def test_a_deploy_creates_or_updates_every_resource_and_grants_the_principals():
    operations = [r.operation for r in REQUESTS]
    assert operations[:7] == ["CreateDataSource"] + ["CreateDataSet"] * 5 + ["CreateAnalysis"]
    assert "CreateDashboard" in operations and "UpdateDashboardPublishedVersion" in operations
    granted = [r for r in REQUESTS if r.operation.endswith("Permissions")]
    assert len(granted) == 1 + len(TABLES) + 2
    assert all(r.params["GrantPermissions"][0]["Principal"] == ANALYSTS for r in granted)


def test_there_is_one_data_set_per_gold_table_reading_the_glue_database_dbt_athena_writes():
    tables = set()
    for table, params in zip(TABLES, RESOURCES.data_sets, strict=True):
        relational = params["PhysicalTableMap"][f"{table.key}-table"]["RelationalTable"]
        tables.add(relational["Name"])
        assert relational["Schema"] == f"lakehouse_{table.layer}"
        assert relational["DataSourceArn"] == f"arn:aws:quicksight:{REGION}:{ACCOUNT}:datasource/lakehouse-athena"
        assert params["ImportMode"] == "DIRECT_QUERY"
    assert tables >= {"gold_sensor_metrics_hourly", "gold_sensor_metrics_daily", "gold_anomalies", "gold_device_health"}
    athena = RESOURCES.data_source["DataSourceParameters"]["AthenaParameters"]
    assert (RESOURCES.data_source["Type"], athena) == ("ATHENA", {"WorkGroup": "primary"})


def model_columns(layer: str, model: str) -> list[str]:
    folder = DBT_PROJECT_DIR / "models" / layer
    for path in folder.glob("_*__models.yml"):
        for entry in yaml.safe_load(path.read_text())["models"]:
            if entry["name"] == model:
                return [c["name"] for c in entry["columns"]]
    raise AssertionError(f"model {model} is not described in {folder}")


QUICKSIGHT_TYPE = {"VARCHAR": "STRING", "BIGINT": "INTEGER", "INTEGER": "INTEGER", "DOUBLE": "DECIMAL"}
QUICKSIGHT_TYPE |= {"TIMESTAMP": "DATETIME", "DATE": "DATETIME"}


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_data_set_columns_are_columns_of_the_table_dbt_builds_with_matching_types(table, demo_sql):
    schema = "gold" if table.layer == "gold" else "silver"
    built = dict(
        demo_sql(
            "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, table.name],
        )
    )
    assert {name: QUICKSIGHT_TYPE[built[name]] for name, _ in table.columns} == dict(table.columns)
    described = model_columns(table.layer, table.name)
    assert set(dict(table.columns)) <= set(described)
    if table.layer == "gold":
        assert {name for name, _ in table.columns} == set(described), "a gold data set offers every column"


def columns_used(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        if "DataSetIdentifier" in node and "ColumnName" in node:
            yield node["DataSetIdentifier"], node["ColumnName"]
        for value in node.values():
            yield from columns_used(value)
    elif isinstance(node, list):
        for value in node:
            yield from columns_used(value)


def test_every_column_the_definition_uses_exists_in_its_data_set():
    available = {t.key: {name for name, _ in t.columns} | {name for name, _ in t.calculated} for t in TABLES}
    used = set(columns_used(RESOURCES.definition))
    assert {(ds, column) for ds, column in used if column not in available.get(ds, set())} == set()
    assert {ds for ds, _ in used} == set(TABLE_BY_KEY), "every data set appears on a sheet"


def ids_of(node: Any, key: str) -> Iterator[str]:
    if isinstance(node, dict):
        if key in node:
            yield node[key]
        for value in node.values():
            yield from ids_of(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from ids_of(value, key)


def test_every_visual_is_laid_out_and_every_reference_points_at_something_that_exists():
    definition = RESOURCES.definition
    filter_ids = set(ids_of(definition["FilterGroups"], "FilterId"))
    parameters = {next(iter(p.values()))["Name"] for p in definition["ParameterDeclarations"]}
    sheet_ids = {sheet["SheetId"] for sheet in definition["Sheets"]}
    for sheet in definition["Sheets"]:
        visual_ids = [next(iter(v.values()))["VisualId"] for v in sheet["Visuals"]]
        text_ids = [t["SheetTextBoxId"] for t in sheet.get("TextBoxes", [])]
        laid_out = [e["ElementId"] for e in sheet["Layouts"][0]["Configuration"]["GridLayout"]["Elements"]]
        assert sorted(laid_out) == sorted(visual_ids + text_ids), sheet["SheetId"]
        controls = list(ids_of(sheet.get("FilterControls", []), "FilterControlId"))
        controls += list(ids_of(sheet.get("ParameterControls", []), "ParameterControlId"))
        bar = list(ids_of(sheet.get("SheetControlLayouts", []), "ElementId"))
        assert sorted(bar) == sorted(controls), sheet["SheetId"]
        assert set(ids_of(sheet.get("FilterControls", []), "SourceFilterId")) <= filter_ids
        assert set(ids_of(sheet.get("ParameterControls", []), "SourceParameterName")) <= parameters
        for visual in sheet["Visuals"]:
            body = next(iter(visual.values()))
            fields = set(ids_of(body["ChartConfiguration"]["FieldWells"], "FieldId"))
            sorted_fields = set(ids_of(body["ChartConfiguration"].get("SortConfiguration", {}), "FieldId"))
            assert sorted_fields <= fields, body["VisualId"]
            assert set(ids_of(body.get("Actions", []), "SourceField")) <= fields, body["VisualId"]
            assert set(ids_of(body.get("Actions", []), "TargetSheetId")) <= sheet_ids
    for group in definition["FilterGroups"]:
        for scoping in group["ScopeConfiguration"]["SelectedSheets"]["SheetVisualScopingConfigurations"]:
            sheet = next(s for s in definition["Sheets"] if s["SheetId"] == scoping["SheetId"])
            visual_ids = {next(iter(v.values()))["VisualId"] for v in sheet["Visuals"]}
            assert set(scoping.get("VisualIds", [])) <= visual_ids, group["FilterGroupId"]
    assert set(ids_of(definition["FilterGroups"], "ParameterName")) <= parameters


def test_the_sheets_are_the_pages_of_the_local_dashboard():
    assert [(s["SheetId"], s["Name"]) for s in RESOURCES.definition["Sheets"]] == list(PAGES.items())
    assert RESOURCES.analysis["Definition"] == RESOURCES.dashboard["Definition"]


def test_the_alert_limit_columns_give_each_device_type_and_metric_its_limit_of_a_new_lakes_catalogue():
    calculated = dict(TABLE_BY_KEY["hourly"].calculated)
    for (device_type, metric), limit in load_metric_limits().items():
        for name, value in (("alert_min", limit.alert_min), ("alert_max", limit.alert_max)):
            branch = f"{{device_type}} = '{device_type}' AND {{metric}} = '{metric}', "
            if value is None:
                assert branch not in calculated[name]
            else:
                assert f"{branch}{value:g}" in calculated[name]


def test_a_users_own_metric_gets_its_alert_limit_from_the_lakes_catalogue(tmp_path):
    from lakehouse.catalogue_store import import_files
    from lakehouse.config import Settings
    from lakehouse.fleet import load_fleet

    settings = Settings(lake=str(tmp_path / "lake"))
    catalogue = tmp_path / "pumps.csv"
    catalogue.write_text(
        "kind,device_type,reporting_interval_s,silence_after_s,metric,unit,valid_min,valid_max,alert_max\n"
        "device_type,pump,60,600,,,,,\n"
        "metric,pump,,,flow_l_min,litre per minute,0,500,400\n"
    )
    import_files(settings, [catalogue])

    resources = build_resources(TARGET, load_fleet(settings))

    hourly = next(d for d in resources.data_sets if d["DataSetId"].endswith("hourly"))
    expressions = {
        c["ColumnName"]: c["Expression"]
        for operation in next(iter(hourly["LogicalTableMap"].values()))["DataTransforms"]
        for c in operation.get("CreateColumnsOperation", {}).get("Columns", [])
    }
    assert "{device_type} = 'pump' AND {metric} = 'flow_l_min', 400" in expressions["alert_max"]
    assert "'flow_l_min'" not in expressions["alert_min"]  # no lower alert limit declared


# ---- deployment, against moto on 127.0.0.1 ---------------------------------------------------------------


@pytest.fixture
def moto_client(moto_endpoint):
    return quicksight_client(
        REGION, moto_endpoint, timeout_s=10, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def test_deploy_creates_the_athena_source_the_data_sets_and_the_dashboard(moto_client):
    target = QuickSightTarget("111122223333", REGION, principals=(ANALYSTS,), with_analysis=False, prefix="spec1")
    lines: list[str] = []

    report = deploy(moto_client, build_resources(target), echo=lines.append, poll_s=0)

    assert [s.operation for s in report.steps] == ["CreateDataSource"] + ["CreateDataSet"] * len(TABLES) + [
        "CreateDashboard"
    ]
    source = moto_client.describe_data_source(AwsAccountId="111122223333", DataSourceId="spec1-athena")["DataSource"]
    assert (source["Type"], source["DataSourceParameters"]["AthenaParameters"]) == ("ATHENA", {"WorkGroup": "primary"})
    dashboard = moto_client.describe_dashboard(AwsAccountId="111122223333", DashboardId="spec1-sensor-dashboard")
    assert dashboard["Dashboard"]["Name"] == "IoT sensor lakehouse"
    assert report.dashboard_version == 1
    assert lines[-1] == "CreateDashboard spec1-sensor-dashboard: ok (CREATION_SUCCESSFUL)"
    assert "version 1 published" in report.summary()


def test_deploying_twice_leaves_one_of_each_resource(moto_client):
    target = QuickSightTarget("111122223333", REGION, with_analysis=False, prefix="spec2")
    for _ in range(2):
        deploy(moto_client, build_resources(target), echo=lambda _line: None, poll_s=0)
    sources = moto_client.list_data_sources(AwsAccountId="111122223333")["DataSources"]
    dashboards = moto_client.list_dashboards(AwsAccountId="111122223333")["DashboardSummaryList"]
    assert [s["DataSourceId"] for s in sources].count("spec2-athena") == 1
    assert [d["DashboardId"] for d in dashboards].count("spec2-sensor-dashboard") == 1


def test_a_refused_call_names_the_operation_the_resource_and_a_fix(moto_client):
    target = QuickSightTarget("111122223333", REGION, prefix="spec3")  # moto has no analyses: it answers 404
    expected = r"(?s)QuickSight CreateAnalysis of 'spec3-sensor-analysis' failed: .*\(404\).*Fix: "
    with pytest.raises(DeployError, match=expected):
        deploy(moto_client, build_resources(target), echo=lambda _line: None, poll_s=0)


def test_an_account_id_that_is_not_twelve_digits_is_refused_before_any_call():
    with pytest.raises(LakehouseError, match=r"--account-id 'not-an-account' is not a 12-digit AWS account id"):
        QuickSightTarget("not-an-account", REGION)


def test_the_command_deploys_through_boto3(moto_endpoint, aws_env, capsys):
    from lakehouse.cli import main

    argv = ["quicksight", "deploy", "--endpoint-url", moto_endpoint, "--account-id", "444455556666"]
    exit_code = main([*argv, "--region", REGION, "--no-analysis", "--prefix", "cli"])

    out = capsys.readouterr().out
    assert exit_code == 0, out
    assert "CreateDashboard cli-sensor-dashboard: ok" in out
    assert "https://us-east-1.quicksight.aws.amazon.com/sn/dashboards/cli-sensor-dashboard" in out


def test_a_dry_run_prints_every_create_request_and_sends_nothing(capsys):
    from lakehouse.cli import main

    assert main(["quicksight", "deploy", "--dry-run", "--account-id", ACCOUNT, "--region", REGION]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["operation"] for r in printed] == [r.operation for r in RESOURCES.create_requests()]


def test_without_a_region_the_command_says_how_to_give_one(aws_env, monkeypatch, capsys):
    from lakehouse.cli import main

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)

    assert main(["quicksight", "deploy", "--account-id", ACCOUNT]) == 2
    assert "pass --region (e.g. --region eu-west-1) or set AWS_REGION" in capsys.readouterr().err
