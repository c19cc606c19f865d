"""QuickSight definitions of the dashboard, generated from code: an Athena data source, one data set per gold
table (and one on silver's rejected readings for the data-quality sheet), and an analysis and dashboard
with the local dashboard's pages as sheets.

Everything here is pure: :func:`build_resources` returns the request parameters of the QuickSight API
(boto3's ``create_*`` / ``update_*`` keyword arguments), and :mod:`dashboards.quicksight.deploy` sends them.

Where QuickSight differs from the local dashboard:

- "last 24 hours" is relative to now (QuickSight's relative-date filter), not to the fleet's newest reading;
- the device sheet draws a metric's hourly average, min and max with the alert limits as reference lines,
  and lists the anomaly windows in a table beside it (QuickSight cannot shade time ranges);
- gate results and run history live in the lake's ops records, not in Glue tables, so the data-quality
  sheet shows rejections, freshness and completeness, and points to ``lakehouse status`` for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from dashboards import PAGES
from lakehouse import warehouse
from lakehouse.errors import LakehouseError
from lakehouse.fleet import Fleet, default_fleet

# ---- the tables ---------------------------------------------------------------------------------------

# Column types of the tables the data sets read, as QuickSight names them. A test keeps them equal to the
# model YAMLs and to the tables dbt builds.
STRING, INTEGER, DECIMAL, DATETIME = "STRING", "INTEGER", "DECIMAL", "DATETIME"
_STATS = [
    ("reading_count", INTEGER),
    ("min_value", DECIMAL),
    ("max_value", DECIMAL),
    ("avg_value", DECIMAL),
    ("stddev_value", DECIMAL),
    ("p50_value", DECIMAL),
    ("p95_value", DECIMAL),
    ("expected_count", DECIMAL),
    ("completeness", DECIMAL),
    ("last_ingested_at", DATETIME),
]
_DEVICE = [("device_id", STRING), ("device_type", STRING), ("site_id", STRING)]


@dataclass(frozen=True)
class Table:
    key: str  # the data set's identifier in the analysis, and the end of its id
    layer: str  # dbt folder: the Glue database is <schema prefix>_<layer>
    name: str  # dbt model = table name
    title: str
    columns: tuple[tuple[str, str], ...]
    calculated: tuple[tuple[str, str], ...] = ()  # (name, QuickSight expression) added by the data set


def _limit_expression(kind: str, fleet: Fleet) -> str:
    """A QuickSight expression giving the alert limit (``alert_min``/``alert_max``) of a row's device type
    and metric, generated from the lake's catalogue (its widest band: ``lakehouse.fleet``)."""
    branches = []
    for (device_type, metric), limit in fleet.limits.items():
        value = getattr(limit, kind)
        if value is not None:
            branches.append(f"{{device_type}} = '{device_type}' AND {{metric}} = '{metric}', {value:g}")
    return f"ifelse({', '.join(branches)}, NULL)"


def tables(fleet: Fleet) -> tuple[Table, ...]:
    """The data sets, with the alert limits of ``fleet`` (the lake's catalogue) in the hourly one."""
    return tuple(
        replace(
            table,
            calculated=(
                ("alert_min", _limit_expression("alert_min", fleet)),
                ("alert_max", _limit_expression("alert_max", fleet)),
            ),
        )
        if table.key == "hourly"
        else table
        for table in _TABLES
    )


_TABLES: tuple[Table, ...] = (
    Table(
        "hourly",
        warehouse.GOLD_HOURLY.schema,
        warehouse.GOLD_HOURLY.name,
        "Sensor metrics per hour",
        (*_DEVICE, ("metric", STRING), ("hour_at", DATETIME), *_STATS, ("event_date", DATETIME)),
    ),
    Table(
        "daily",
        warehouse.GOLD_DAILY.schema,
        warehouse.GOLD_DAILY.name,
        "Sensor metrics per day",
        (*_DEVICE, ("metric", STRING), *_STATS, ("event_date", DATETIME)),
    ),
    Table(
        "anomalies",
        warehouse.GOLD_ANOMALIES.schema,
        warehouse.GOLD_ANOMALIES.name,
        "Anomaly windows",
        (
            ("anomaly_id", STRING),
            *_DEVICE,
            ("metric", STRING),
            ("anomaly_kind", STRING),
            ("started_at", DATETIME),
            ("ended_at", DATETIME),
            ("peak_value", DECIMAL),
            ("score", DECIMAL),
            ("severity", STRING),
            ("reading_count", INTEGER),
            ("last_ingested_at", DATETIME),
            ("event_date", DATETIME),
        ),
    ),
    Table(
        "health",
        warehouse.GOLD_DEVICE_HEALTH.schema,
        warehouse.GOLD_DEVICE_HEALTH.name,
        "Device health",
        (
            *_DEVICE,
            ("last_seen_at", DATETIME),
            ("readings_24h", INTEGER),
            ("completeness_24h", DECIMAL),
            ("uptime_24h", DECIMAL),
            ("battery_pct", DECIMAL),
            ("open_anomalies", INTEGER),
            ("health_status", STRING),
            ("as_of_at", DATETIME),
        ),
        (("is_online", "ifelse({health_status} <> 'silent', 1, 0)"),),
    ),
    Table(
        "rejections",
        warehouse.SILVER_REJECTED.schema,
        warehouse.SILVER_REJECTED.name,
        "Rejected readings",
        (
            *_DEVICE,
            ("event_at", DATETIME),
            ("event_date", DATETIME),
            ("seq", INTEGER),
            ("ingested_at", DATETIME),
            ("rejection_reason", STRING),
            ("rejected_metric", STRING),
        ),
    ),
)
TABLES = tables(default_fleet())  # a new lake's catalogue; build_resources takes the lake's own
TABLE_BY_KEY = {t.key: t for t in TABLES}

# ---- where the resources go ---------------------------------------------------------------------------

DATA_SOURCE_ACTIONS = [
    "quicksight:DescribeDataSource",
    "quicksight:DescribeDataSourcePermissions",
    "quicksight:PassDataSource",
    "quicksight:UpdateDataSource",
    "quicksight:DeleteDataSource",
    "quicksight:UpdateDataSourcePermissions",
]
DATA_SET_ACTIONS = [
    "quicksight:DescribeDataSet",
    "quicksight:DescribeDataSetPermissions",
    "quicksight:PassDataSet",
    "quicksight:DescribeIngestion",
    "quicksight:ListIngestions",
    "quicksight:UpdateDataSet",
    "quicksight:DeleteDataSet",
    "quicksight:CreateIngestion",
    "quicksight:CancelIngestion",
    "quicksight:UpdateDataSetPermissions",
]
ANALYSIS_ACTIONS = [
    "quicksight:RestoreAnalysis",
    "quicksight:UpdateAnalysisPermissions",
    "quicksight:DeleteAnalysis",
    "quicksight:DescribeAnalysisPermissions",
    "quicksight:QueryAnalysis",
    "quicksight:DescribeAnalysis",
    "quicksight:UpdateAnalysis",
]
DASHBOARD_ACTIONS = [
    "quicksight:DescribeDashboard",
    "quicksight:ListDashboardVersions",
    "quicksight:UpdateDashboardPermissions",
    "quicksight:QueryDashboard",
    "quicksight:UpdateDashboard",
    "quicksight:DeleteDashboard",
    "quicksight:DescribeDashboardPermissions",
    "quicksight:UpdateDashboardPublishedVersion",
]


@dataclass(frozen=True)
class QuickSightTarget:
    account_id: str
    region: str
    principals: tuple[str, ...] = ()  # QuickSight user or group ARNs granted every action on the resources
    athena_workgroup: str = "primary"
    glue_schema: str = "lakehouse"  # dbt-athena's schema: gold lives in the Glue database <schema>_gold
    catalog: str = "AwsDataCatalog"
    prefix: str = "lakehouse"  # of every resource id
    role_arn: str | None = None  # the role QuickSight assumes for Athena (None: its service role)
    with_analysis: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{12}", self.account_id):
            raise LakehouseError(f"--account-id '{self.account_id}' is not a 12-digit AWS account id")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", self.region):
            raise LakehouseError(f"--region '{self.region}' is not an AWS region name such as eu-west-1")
        if not re.fullmatch(r"[A-Za-z0-9][\w-]{0,40}", self.prefix):
            raise LakehouseError(f"--prefix '{self.prefix}': use up to 41 letters, digits, '-' or '_'")

    def arn(self, kind: str, resource_id: str) -> str:
        return f"arn:aws:quicksight:{self.region}:{self.account_id}:{kind}/{resource_id}"

    @property
    def data_source_id(self) -> str:
        return f"{self.prefix}-athena"

    def data_set_id(self, table: Table) -> str:
        return f"{self.prefix}-{table.name.replace('_', '-')}"

    @property
    def analysis_id(self) -> str:
        return f"{self.prefix}-sensor-analysis"

    @property
    def dashboard_id(self) -> str:
        return f"{self.prefix}-sensor-dashboard"

    def permissions(self, actions: list[str]) -> list[dict[str, Any]]:
        return [{"Principal": principal, "Actions": list(actions)} for principal in self.principals]


@dataclass(frozen=True)
class Request:
    """One QuickSight API call: the boto3 method's operation name and its keyword arguments."""

    operation: str  # e.g. CreateDataSet
    params: dict[str, Any]

    @property
    def method(self) -> str:
        """The boto3 client method, e.g. create_data_set."""
        return "".join("_" + c.lower() if c.isupper() else c for c in self.operation).lstrip("_")


@dataclass
class QuickSightResources:
    target: QuickSightTarget
    data_source: dict[str, Any]
    data_sets: list[dict[str, Any]]
    definition: dict[str, Any]
    analysis: dict[str, Any] | None
    dashboard: dict[str, Any]
    tags: list[dict[str, str]] = field(default_factory=list)

    def pairs(self) -> list[tuple[Request, Request]]:
        """Every resource as (create call, update call), in dependency order."""
        pairs = [
            (
                Request("CreateDataSource", self.data_source),
                Request("UpdateDataSource", _without(self.data_source, "Type", "Permissions", "Tags")),
            )
        ]
        pairs += [
            (Request("CreateDataSet", params), Request("UpdateDataSet", _without(params, "Permissions", "Tags")))
            for params in self.data_sets
        ]
        if self.analysis is not None:
            pairs.append(
                (
                    Request("CreateAnalysis", self.analysis),
                    Request("UpdateAnalysis", _without(self.analysis, "Permissions", "Tags")),
                )
            )
        pairs.append(
            (
                Request("CreateDashboard", self.dashboard),
                Request("UpdateDashboard", _without(self.dashboard, "Permissions", "Tags")),
            )
        )
        return pairs

    def create_requests(self) -> list[Request]:
        return [create for create, _ in self.pairs()]

    def publish_request(self, version: int) -> Request:
        """Make a dashboard version the one people see (an update builds a new, unpublished version)."""
        t = self.target
        return Request(
            "UpdateDashboardPublishedVersion",
            {"AwsAccountId": t.account_id, "DashboardId": t.dashboard_id, "VersionNumber": version},
        )

    def update_requests(self, dashboard_version: int = 2) -> list[Request]:
        """Every call a deploy over existing resources makes, besides the describe calls."""
        requests = [update for _, update in self.pairs()] + [self.publish_request(dashboard_version)]
        return requests + (self.permission_requests() if self.target.principals else [])

    def permission_requests(self) -> list[Request]:
        t = self.target
        account = {"AwsAccountId": t.account_id}
        requests = [
            Request(
                "UpdateDataSourcePermissions",
                {
                    **account,
                    "DataSourceId": t.data_source_id,
                    "GrantPermissions": t.permissions(DATA_SOURCE_ACTIONS),
                },
            )
        ]
        requests += [
            Request(
                "UpdateDataSetPermissions",
                {**account, "DataSetId": p["DataSetId"], "GrantPermissions": t.permissions(DATA_SET_ACTIONS)},
            )
            for p in self.data_sets
        ]
        if self.analysis is not None:
            requests.append(
                Request(
                    "UpdateAnalysisPermissions",
                    {**account, "AnalysisId": t.analysis_id, "GrantPermissions": t.permissions(ANALYSIS_ACTIONS)},
                )
            )
        requests.append(
            Request(
                "UpdateDashboardPermissions",
                {**account, "DashboardId": t.dashboard_id, "GrantPermissions": t.permissions(DASHBOARD_ACTIONS)},
            )
        )
        return requests


def _without(params: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in keys}


def build_resources(target: QuickSightTarget, fleet: Fleet | None = None) -> QuickSightResources:
    """Every QuickSight resource of the dashboard; ``fleet``: the lake's catalogue, whose alert limits the
    hourly data set draws (default: a new lake's)."""
    tags = [{"Key": "project", "Value": "iot-sensor-lakehouse"}]
    account = {"AwsAccountId": target.account_id}
    athena: dict[str, Any] = {"WorkGroup": target.athena_workgroup}
    if target.role_arn:
        athena["RoleArn"] = target.role_arn
    data_source = {
        **account,
        "DataSourceId": target.data_source_id,
        "Name": "IoT sensor lakehouse (Athena)",
        "Type": "ATHENA",
        "DataSourceParameters": {"AthenaParameters": athena},
        "Tags": tags,
    }
    if target.principals:
        data_source["Permissions"] = target.permissions(DATA_SOURCE_ACTIONS)
    data_sets = [_data_set(target, table, tags) for table in (tables(fleet) if fleet else TABLES)]
    definition = dashboard_definition(target)
    name = "IoT sensor lakehouse"
    analysis = None
    if target.with_analysis:
        analysis = {**account, "AnalysisId": target.analysis_id, "Name": name, "Definition": definition, "Tags": tags}
        if target.principals:
            analysis["Permissions"] = target.permissions(ANALYSIS_ACTIONS)
    dashboard = {
        **account,
        "DashboardId": target.dashboard_id,
        "Name": name,
        "Definition": definition,
        "VersionDescription": "generated by lakehouse quicksight deploy",
        "DashboardPublishOptions": {
            "AdHocFilteringOption": {"AvailabilityStatus": "ENABLED"},
            "ExportToCSVOption": {"AvailabilityStatus": "ENABLED"},
            "SheetControlsOption": {"VisibilityState": "EXPANDED"},
        },
        "Tags": tags,
    }
    if target.principals:
        dashboard["Permissions"] = target.permissions(DASHBOARD_ACTIONS)
    return QuickSightResources(target, data_source, data_sets, definition, analysis, dashboard, tags)


def _data_set(target: QuickSightTarget, table: Table, tags: list[dict[str, str]]) -> dict[str, Any]:
    physical_id = f"{table.key}-table"
    logical: dict[str, Any] = {"Alias": table.name, "Source": {"PhysicalTableId": physical_id}}
    if table.calculated:
        logical["DataTransforms"] = [
            {
                "CreateColumnsOperation": {
                    "Columns": [
                        {"ColumnName": name, "ColumnId": f"{table.key}-{name}", "Expression": expression}
                        for name, expression in table.calculated
                    ]
                }
            }
        ]
    params: dict[str, Any] = {
        "AwsAccountId": target.account_id,
        "DataSetId": target.data_set_id(table),
        "Name": f"Lakehouse: {table.title} ({table.name})",
        "PhysicalTableMap": {
            physical_id: {
                "RelationalTable": {
                    "DataSourceArn": target.arn("datasource", target.data_source_id),
                    "Catalog": target.catalog,
                    "Schema": f"{target.glue_schema}_{table.layer}",
                    "Name": table.name,
                    "InputColumns": [_input_column(name, kind) for name, kind in table.columns],
                }
            }
        },
        "LogicalTableMap": {f"{table.key}-logical": logical},
        "ImportMode": "DIRECT_QUERY",
        "Tags": tags,
    }
    if target.principals:
        params["Permissions"] = target.permissions(DATA_SET_ACTIONS)
    return params


def _input_column(name: str, kind: str) -> dict[str, Any]:
    column = {"Name": name, "Type": kind}
    if kind == DECIMAL:
        column["SubType"] = "FLOAT"
    return column


# ---- the analysis / dashboard definition --------------------------------------------------------------


def _col(ds: str, name: str) -> dict[str, str]:
    return {"DataSetIdentifier": ds, "ColumnName": name}


def _title(text: str) -> dict[str, Any]:
    return {"Visibility": "VISIBLE", "FormatText": {"PlainText": text}}


def _category(field_id: str, ds: str, column: str) -> dict[str, Any]:
    return {"CategoricalDimensionField": {"FieldId": field_id, "Column": _col(ds, column)}}


def _date(field_id: str, ds: str, column: str, granularity: str = "HOUR") -> dict[str, Any]:
    return {"DateDimensionField": {"FieldId": field_id, "Column": _col(ds, column), "DateGranularity": granularity}}


def _number(field_id: str, ds: str, column: str, aggregation: str) -> dict[str, Any]:
    return {
        "NumericalMeasureField": {
            "FieldId": field_id,
            "Column": _col(ds, column),
            "AggregationFunction": {"SimpleNumericalAggregation": aggregation},
        }
    }


def _count(field_id: str, ds: str, column: str, distinct: bool = False) -> dict[str, Any]:
    return {
        "CategoricalMeasureField": {
            "FieldId": field_id,
            "Column": _col(ds, column),
            "AggregationFunction": "DISTINCT_COUNT" if distinct else "COUNT",
        }
    }


def _latest(field_id: str, ds: str, column: str) -> dict[str, Any]:
    return {"DateMeasureField": {"FieldId": field_id, "Column": _col(ds, column), "AggregationFunction": "MAX"}}


def _kpi(visual_id: str, title: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "KPIVisual": {
            "VisualId": visual_id,
            "Title": _title(title),
            "ChartConfiguration": {"FieldWells": {"Values": [value]}},
        }
    }


def _bar(
    visual_id: str,
    title: str,
    category: dict[str, Any],
    value: dict[str, Any],
    color: dict[str, Any] | None = None,
    horizontal: bool = False,
) -> dict[str, Any]:
    wells: dict[str, Any] = {"Category": [category], "Values": [value]}
    if color:
        wells["Colors"] = [color]
    return {
        "BarChartVisual": {
            "VisualId": visual_id,
            "Title": _title(title),
            "ChartConfiguration": {
                "FieldWells": {"BarChartAggregatedFieldWells": wells},
                "Orientation": "HORIZONTAL" if horizontal else "VERTICAL",
                "BarsArrangement": "STACKED" if color else "CLUSTERED",
                "Legend": {"Visibility": "VISIBLE" if color else "HIDDEN"},
                "DataLabels": {"Visibility": "VISIBLE"},
            },
        }
    }


def _table(
    visual_id: str,
    title: str,
    ds: str,
    columns: list[str],
    sort: tuple[str, str] | None = None,
    actions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    fields = [{"FieldId": f"{visual_id}.{column}", "Column": _col(ds, column)} for column in columns]
    configuration: dict[str, Any] = {"FieldWells": {"TableUnaggregatedFieldWells": {"Values": fields}}}
    if sort:
        configuration["SortConfiguration"] = {
            "RowSort": [{"FieldSort": {"FieldId": f"{visual_id}.{sort[0]}", "Direction": sort[1]}}]
        }
    visual: dict[str, Any] = {"VisualId": visual_id, "Title": _title(title), "ChartConfiguration": configuration}
    if actions:
        visual["Actions"] = actions
    return {"TableVisual": visual}


def _reference_line(ds: str, column: str, calculation: str, label: str) -> dict[str, Any]:
    return {
        "Status": "ENABLED",
        "DataConfiguration": {
            "DynamicConfiguration": {
                "Column": _col(ds, column),
                "Calculation": {"SimpleNumericalAggregation": calculation},
            },
            "AxisBinding": "PRIMARY_YAXIS",
        },
        "StyleConfiguration": {"Pattern": "DASHED", "Color": "#D62728"},
        "LabelConfiguration": {
            "CustomLabelConfiguration": {"CustomLabel": label},
            "FontColor": "#D62728",
            "HorizontalPosition": "LEFT",
            "VerticalPosition": "ABOVE",
        },
    }


def _text_box(text_box_id: str, content: str) -> dict[str, Any]:
    return {"SheetTextBoxId": text_box_id, "Content": content}


def _layout(*rows: list[tuple[str, str, int, int]]) -> list[dict[str, Any]]:
    """A grid layout (36 columns wide) from rows of (element id, element type, column span, row span)."""
    elements = []
    row_index = 0
    for row in rows:
        column_index = 0
        for element_id, element_type, column_span, row_span in row:
            elements.append(
                {
                    "ElementId": element_id,
                    "ElementType": element_type,
                    "ColumnIndex": column_index,
                    "ColumnSpan": column_span,
                    "RowIndex": row_index,
                    "RowSpan": row_span,
                }
            )
            column_index += column_span
        row_index += max(span for *_, span in row)
    return [{"Configuration": {"GridLayout": {"Elements": elements}}}]


def _control_layout(*controls: tuple[str, str]) -> list[dict[str, Any]]:
    """The sheet's control bar: three controls per row."""
    elements = [
        {
            "ElementId": control_id,
            "ElementType": kind,
            "ColumnIndex": 12 * (i % 3),
            "ColumnSpan": 12,
            "RowIndex": i // 3,
            "RowSpan": 1,
        }
        for i, (control_id, kind) in enumerate(controls)
    ]
    return [{"Configuration": {"GridLayout": {"Elements": elements}}}]


def _scope(sheet_id: str, visual_ids: list[str] | None = None) -> dict[str, Any]:
    scoping: dict[str, Any] = {"SheetId": sheet_id, "Scope": "SELECTED_VISUALS" if visual_ids else "ALL_VISUALS"}
    if visual_ids:
        scoping["VisualIds"] = visual_ids
    return {"SelectedSheets": {"SheetVisualScopingConfigurations": [scoping]}}


def _filter_group(group_id: str, filter_: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    return {
        "FilterGroupId": group_id,
        "Filters": [filter_],
        "ScopeConfiguration": scope,
        "Status": "ENABLED",
        "CrossDataset": "SINGLE_DATASET",
    }


def _list_filter(filter_id: str, ds: str, column: str) -> dict[str, Any]:
    """A filter on a list of values, all values until a control narrows it."""
    return {
        "CategoryFilter": {
            "FilterId": filter_id,
            "Column": _col(ds, column),
            "Configuration": {
                "FilterListConfiguration": {
                    "MatchOperator": "CONTAINS",
                    "SelectAllOptions": "FILTER_ALL_VALUES",
                    "NullOption": "ALL_VALUES",
                }
            },
        }
    }


def _parameter_filter(filter_id: str, ds: str, column: str, parameter: str) -> dict[str, Any]:
    """Rows whose ``column`` equals the parameter's value (every row while the parameter is unset)."""
    return {
        "CategoryFilter": {
            "FilterId": filter_id,
            "Column": _col(ds, column),
            "Configuration": {
                "CustomFilterConfiguration": {
                    "MatchOperator": "EQUALS",
                    "ParameterName": parameter,
                    "SelectAllOptions": "FILTER_ALL_VALUES",
                    "NullOption": "NON_NULLS_ONLY",
                }
            },
        }
    }


def _last_hours(filter_id: str, ds: str, column: str, hours: int) -> dict[str, Any]:
    return {
        "RelativeDatesFilter": {
            "FilterId": filter_id,
            "Column": _col(ds, column),
            "AnchorDateConfiguration": {"AnchorOption": "NOW"},
            "TimeGranularity": "HOUR",
            "RelativeDateType": "LAST",
            "RelativeDateValue": hours,
            "NullOption": "NON_NULLS_ONLY",
        }
    }


DEVICE_PARAMETER = "DeviceId"
METRIC_PARAMETER = "Metric"


def dashboard_definition(target: QuickSightTarget) -> dict[str, Any]:
    """The sheets (pages) of the analysis and the dashboard: fleet, device, anomalies, data quality."""
    declarations = [{"Identifier": t.key, "DataSetArn": target.arn("dataset", target.data_set_id(t))} for t in TABLES]
    parameters = [
        {
            "StringParameterDeclaration": {
                "ParameterValueType": "SINGLE_VALUED",
                "Name": DEVICE_PARAMETER,
                "ValueWhenUnset": {"ValueWhenUnsetOption": "NULL"},
            }
        },
        {
            "StringParameterDeclaration": {
                "ParameterValueType": "SINGLE_VALUED",
                "Name": METRIC_PARAMETER,
                "DefaultValues": {"StaticValues": ["temperature_c"]},
            }
        },
    ]
    return {
        "DataSetIdentifierDeclarations": declarations,
        "Sheets": [_fleet_sheet(), _device_sheet(), _anomalies_sheet(), _quality_sheet()],
        "ParameterDeclarations": parameters,
        "FilterGroups": _filter_groups(),
    }


def _fleet_sheet() -> dict[str, Any]:
    visuals = [
        _kpi("fleet-devices", "Devices", _count("fleet-devices.n", "health", "device_id", distinct=True)),
        _kpi("fleet-online", "Online now", _number("fleet-online.n", "health", "is_online", "SUM")),
        _kpi("fleet-anomalies-24h", "Anomalies, last 24 h", _count("fleet-anomalies-24h.n", "anomalies", "anomaly_id")),
        _bar(
            "fleet-anomalies-by-kind-site",
            "Anomalies in the last 24 hours, by kind and site",
            _category("fleet-anomalies-by-kind-site.kind", "anomalies", "anomaly_kind"),
            _count("fleet-anomalies-by-kind-site.n", "anomalies", "anomaly_id"),
            _category("fleet-anomalies-by-kind-site.site", "anomalies", "site_id"),
        ),
        _bar(
            "fleet-devices-by-health",
            "Devices by health",
            _category("fleet-devices-by-health.status", "health", "health_status"),
            _count("fleet-devices-by-health.n", "health", "device_id", distinct=True),
            horizontal=True,
        ),
        _table(
            "fleet-devices-table",
            "Devices",
            "health",
            [
                "device_id",
                "device_type",
                "site_id",
                "health_status",
                "last_seen_at",
                "readings_24h",
                "completeness_24h",
                "battery_pct",
                "open_anomalies",
            ],
            sort=("health_status", "ASC"),
            actions=[_open_device_action("fleet-devices-table")],
        ),
    ]
    return {
        "SheetId": "fleet",
        "Name": PAGES["fleet"],
        "Title": PAGES["fleet"],
        "Visuals": visuals,
        "Layouts": _layout(
            [
                ("fleet-devices", "VISUAL", 12, 5),
                ("fleet-online", "VISUAL", 12, 5),
                ("fleet-anomalies-24h", "VISUAL", 12, 5),
            ],
            [("fleet-anomalies-by-kind-site", "VISUAL", 22, 10), ("fleet-devices-by-health", "VISUAL", 14, 10)],
            [("fleet-devices-table", "VISUAL", 36, 12)],
        ),
        "ContentType": "INTERACTIVE",
    }


def _open_device_action(visual_id: str) -> dict[str, Any]:
    """Clicking a row opens the device sheet for the row's device (the anomaly list's link to the device)."""
    return {
        "CustomActionId": f"{visual_id}-open-device",
        "Name": "Open the device",
        "Status": "ENABLED",
        "Trigger": "DATA_POINT_CLICK",
        "ActionOperations": [
            {
                "SetParametersOperation": {
                    "ParameterValueConfigurations": [
                        {
                            "DestinationParameterName": DEVICE_PARAMETER,
                            "Value": {"SourceField": f"{visual_id}.device_id"},
                        }
                    ]
                }
            },
            {"NavigationOperation": {"LocalNavigationConfiguration": {"TargetSheetId": "device"}}},
        ],
    }


def _device_sheet() -> dict[str, Any]:
    series = {
        "LineChartVisual": {
            "VisualId": "device-metric-series",
            "Title": _title("Hourly average, min and max of the chosen metric; dashed: alert limits"),
            "ChartConfiguration": {
                "FieldWells": {
                    "LineChartAggregatedFieldWells": {
                        "Category": [_date("device-metric-series.hour", "hourly", "hour_at", "HOUR")],
                        "Values": [
                            _number("device-metric-series.avg", "hourly", "avg_value", "AVERAGE"),
                            _number("device-metric-series.min", "hourly", "min_value", "MIN"),
                            _number("device-metric-series.max", "hourly", "max_value", "MAX"),
                        ],
                    }
                },
                "Type": "LINE",
                "ReferenceLines": [
                    _reference_line("hourly", "alert_min", "MIN", "alert min"),
                    _reference_line("hourly", "alert_max", "MAX", "alert max"),
                ],
                "Legend": {"Visibility": "VISIBLE"},
            },
        }
    }
    visuals = [
        _kpi("device-readings", "Readings in range", _number("device-readings.n", "hourly", "reading_count", "SUM")),
        _kpi("device-anomaly-count", "Anomaly windows", _count("device-anomaly-count.n", "anomalies", "anomaly_id")),
        series,
        _table(
            "device-anomalies",
            "Anomaly windows of the device",
            "anomalies",
            ["started_at", "ended_at", "anomaly_kind", "metric", "severity", "score", "peak_value"],
            sort=("started_at", "DESC"),
        ),
    ]
    controls = [
        {
            "Dropdown": {
                "ParameterControlId": "device-choose-device",
                "Title": "Device",
                "SourceParameterName": DEVICE_PARAMETER,
                "Type": "SINGLE_SELECT",
                "SelectableValues": {"LinkToDataSetColumn": _col("health", "device_id")},
            }
        },
        {
            "Dropdown": {
                "ParameterControlId": "device-choose-metric",
                "Title": "Metric",
                "SourceParameterName": METRIC_PARAMETER,
                "Type": "SINGLE_SELECT",
                "SelectableValues": {"LinkToDataSetColumn": _col("hourly", "metric")},
            }
        },
    ]
    return {
        "SheetId": "device",
        "Name": PAGES["device"],
        "Title": PAGES["device"],
        "Description": "Pick a device (or click one in another sheet) and a metric.",
        "ParameterControls": controls,
        "Visuals": visuals,
        "Layouts": _layout(
            [("device-readings", "VISUAL", 18, 5), ("device-anomaly-count", "VISUAL", 18, 5)],
            [("device-metric-series", "VISUAL", 36, 12)],
            [("device-anomalies", "VISUAL", 36, 10)],
        ),
        "SheetControlLayouts": _control_layout(
            ("device-choose-device", "PARAMETER_CONTROL"), ("device-choose-metric", "PARAMETER_CONTROL")
        ),
        "ContentType": "INTERACTIVE",
    }


_ANOMALY_FILTERS = (  # filter id, column, control title
    ("anomalies-kind", "anomaly_kind", "Kind"),
    ("anomalies-severity", "severity", "Severity"),
    ("anomalies-site", "site_id", "Site"),
)


def _anomalies_sheet() -> dict[str, Any]:
    visuals = [
        _kpi("anomalies-count", "Matching anomaly windows", _count("anomalies-count.n", "anomalies", "anomaly_id")),
        _kpi("anomalies-devices", "Devices", _count("anomalies-devices.n", "anomalies", "device_id", distinct=True)),
        _bar(
            "anomalies-by-kind-severity",
            "By kind and severity",
            _category("anomalies-by-kind-severity.kind", "anomalies", "anomaly_kind"),
            _count("anomalies-by-kind-severity.n", "anomalies", "anomaly_id"),
            _category("anomalies-by-kind-severity.severity", "anomalies", "severity"),
        ),
        _table(
            "anomalies-table",
            "Anomaly windows (click a row to open its device)",
            "anomalies",
            [
                "device_id",
                "device_type",
                "site_id",
                "anomaly_kind",
                "metric",
                "severity",
                "started_at",
                "ended_at",
                "score",
                "peak_value",
                "reading_count",
            ],
            sort=("started_at", "DESC"),
            actions=[_open_device_action("anomalies-table")],
        ),
    ]
    controls: list[dict[str, Any]] = [
        {
            "Dropdown": {
                "FilterControlId": f"{filter_id}-control",
                "Title": title,
                "SourceFilterId": filter_id,
                "Type": "MULTI_SELECT",
            }
        }
        for filter_id, _column, title in _ANOMALY_FILTERS
    ]
    controls.append(
        {
            "TextField": {
                "FilterControlId": "anomalies-device-text-control",
                "Title": "Device id contains",
                "SourceFilterId": "anomalies-device-text",
            }
        }
    )
    controls.append(
        {
            "RelativeDateTime": {
                "FilterControlId": "anomalies-recent-control",
                "Title": "Ended",
                "SourceFilterId": "anomalies-recent",
            }
        }
    )
    return {
        "SheetId": "anomalies",
        "Name": PAGES["anomalies"],
        "Title": PAGES["anomalies"],
        "FilterControls": controls,
        "Visuals": visuals,
        "Layouts": _layout(
            [("anomalies-count", "VISUAL", 18, 5), ("anomalies-devices", "VISUAL", 18, 5)],
            [("anomalies-by-kind-severity", "VISUAL", 36, 9)],
            [("anomalies-table", "VISUAL", 36, 14)],
        ),
        "SheetControlLayouts": _control_layout(
            *[(control["FilterControlId"], "FILTER_CONTROL") for kind in controls for control in kind.values()]
        ),
        "ContentType": "INTERACTIVE",
    }


OPS_NOTE = (
    "Gate results (ops_gate_results) and run history (ops_runs) are NDJSON records under <lake>/ops/, not "
    "Glue tables: see them with `lakehouse status`, `lakehouse gate`, or the local dashboard's Data quality "
    "page (`lakehouse dashboard`)."
)


def _quality_sheet() -> dict[str, Any]:
    visuals = [
        _kpi("quality-rejected", "Rejected readings", _count("quality-rejected.n", "rejections", "rejection_reason")),
        _kpi(
            "quality-newest-reading",
            "Newest accepted reading",
            _latest("quality-newest-reading.t", "health", "last_seen_at"),
        ),
        _kpi("quality-newest-hour", "Newest gold hour", _latest("quality-newest-hour.t", "hourly", "hour_at")),
        _kpi(
            "quality-last-ingest", "Last ingest in gold", _latest("quality-last-ingest.t", "hourly", "last_ingested_at")
        ),
        _bar(
            "quality-rejections-by-reason",
            "Readings silver rejected, by reason",
            _category("quality-rejections-by-reason.reason", "rejections", "rejection_reason"),
            _count("quality-rejections-by-reason.n", "rejections", "rejection_reason"),
            horizontal=True,
        ),
        _bar(
            "quality-completeness-by-site",
            "Completeness of the last 24 hours, by site",
            _category("quality-completeness-by-site.site", "health", "site_id"),
            _number("quality-completeness-by-site.c", "health", "completeness_24h", "AVERAGE"),
        ),
        {
            "PivotTableVisual": {
                "VisualId": "quality-daily-completeness",
                "Title": _title("Daily completeness per device (readings received / expected)"),
                "ChartConfiguration": {
                    "FieldWells": {
                        "PivotTableAggregatedFieldWells": {
                            "Rows": [_category("quality-daily-completeness.device", "daily", "device_id")],
                            "Columns": [_date("quality-daily-completeness.day", "daily", "event_date", "DAY")],
                            "Values": [_number("quality-daily-completeness.c", "daily", "completeness", "AVERAGE")],
                        }
                    }
                },
            }
        },
    ]
    return {
        "SheetId": "quality",
        "Name": PAGES["quality"],
        "Title": PAGES["quality"],
        "Visuals": visuals,
        "TextBoxes": [_text_box("quality-ops-note", OPS_NOTE)],
        "Layouts": _layout(
            [
                ("quality-rejected", "VISUAL", 9, 5),
                ("quality-newest-reading", "VISUAL", 9, 5),
                ("quality-newest-hour", "VISUAL", 9, 5),
                ("quality-last-ingest", "VISUAL", 9, 5),
            ],
            [("quality-rejections-by-reason", "VISUAL", 18, 10), ("quality-completeness-by-site", "VISUAL", 18, 10)],
            [("quality-daily-completeness", "VISUAL", 36, 12)],
            [("quality-ops-note", "TEXT_BOX", 36, 3)],
        ),
        "ContentType": "INTERACTIVE",
    }


def _filter_groups() -> list[dict[str, Any]]:
    groups = [
        _filter_group(
            "fleet-last-24h",
            _last_hours("fleet-last-24h-filter", "anomalies", "ended_at", 24),
            _scope("fleet", ["fleet-anomalies-24h", "fleet-anomalies-by-kind-site"]),
        ),
        _filter_group(
            "device-hourly-device",
            _parameter_filter("device-hourly-device-filter", "hourly", "device_id", DEVICE_PARAMETER),
            _scope("device", ["device-readings", "device-metric-series"]),
        ),
        _filter_group(
            "device-hourly-metric",
            _parameter_filter("device-hourly-metric-filter", "hourly", "metric", METRIC_PARAMETER),
            _scope("device", ["device-readings", "device-metric-series"]),
        ),
        _filter_group(
            "device-anomalies-device",
            _parameter_filter("device-anomalies-device-filter", "anomalies", "device_id", DEVICE_PARAMETER),
            _scope("device", ["device-anomaly-count", "device-anomalies"]),
        ),
    ]
    groups += [
        _filter_group(f"{filter_id}-group", _list_filter(filter_id, "anomalies", column), _scope("anomalies"))
        for filter_id, column, _title_text in _ANOMALY_FILTERS
    ]
    groups.append(
        _filter_group(
            "anomalies-device-text-group",
            {
                "CategoryFilter": {
                    "FilterId": "anomalies-device-text",
                    "Column": _col("anomalies", "device_id"),
                    "Configuration": {
                        "CustomFilterConfiguration": {
                            "MatchOperator": "CONTAINS",
                            "SelectAllOptions": "FILTER_ALL_VALUES",
                            "NullOption": "NON_NULLS_ONLY",
                        }
                    },
                }
            },
            _scope("anomalies"),
        )
    )
    recent = _last_hours("anomalies-recent", "anomalies", "ended_at", 24 * 30)
    groups.append(_filter_group("anomalies-recent-group", recent, _scope("anomalies")))
    return groups
