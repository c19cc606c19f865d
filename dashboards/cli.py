"""``lakehouse dashboard`` and ``lakehouse quicksight deploy``: look at gold, locally or on AWS."""

from __future__ import annotations

import argparse
import json

_FMT = argparse.RawDescriptionHelpFormatter


def register(subparsers: argparse._SubParsersAction) -> None:
    dashboard = subparsers.add_parser(
        "dashboard",
        help="a local web dashboard on gold: fleet, device, anomalies, data quality",
        formatter_class=_FMT,
        description=(
            "Serve a Streamlit dashboard on localhost for a local lake: the fleet at a glance, a device's\n"
            "history with its anomalies shaded and alert limits drawn, a filterable anomaly list, and data\n"
            "quality (gate results, quarantine and rejections, freshness, recent runs).\n\n"
            "It never blocks the pipeline: it reads a private copy of <lake>/warehouse.duckdb, taken only\n"
            "while no process holds DuckDB's write lock; while dbt builds it shows the previous copy."
        ),
        epilog="examples:\n  lakehouse dashboard                       # http://127.0.0.1:8501/\n"
        "  lakehouse --lake /data/lake dashboard --port 8600\n"
        "  lakehouse dashboard --host 0.0.0.0        # reachable from other machines (no login!)",
    )
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=8501, help="TCP port (default 8501)")
    dashboard.add_argument("--open", action="store_true", help="open the dashboard in a web browser")
    dashboard.set_defaults(handler=_dashboard)

    quicksight = subparsers.add_parser(
        "quicksight",
        help="QuickSight dashboards on the gold tables in Athena",
        formatter_class=_FMT,
        description="Generate QuickSight definitions (Athena data source, one data set per gold table, a\n"
        "dashboard with the local dashboard's pages) from code, and deploy them with boto3.",
    )
    actions = quicksight.add_subparsers(dest="quicksight_command", required=True, metavar="ACTION")
    deploy = actions.add_parser(
        "deploy",
        help="create or update the data source, data sets, analysis and dashboard",
        formatter_class=_FMT,
        description=(
            "Create or update, in this order: the Athena data source, one data set per gold table\n"
            "(direct query), an analysis and a published dashboard with the pages fleet overview, device\n"
            "detail, anomalies and data quality. Safe to run again: existing resources are updated.\n"
            "Permissions: see dashboards/README.md (IAM) and --principal (QuickSight users or groups)."
        ),
        epilog="examples:\n"
        "  lakehouse quicksight deploy --principal arn:aws:quicksight:eu-west-1:123456789012:group/default/analysts\n"
        "  lakehouse quicksight deploy --dry-run > requests.json     # the requests, nothing sent\n"
        "  lakehouse quicksight deploy --region eu-west-1 --athena-workgroup analytics --glue-schema lakehouse",
    )
    deploy.add_argument("--account-id", help="AWS account id (default: the caller's, from STS)")
    deploy.add_argument("--region", help="AWS region of QuickSight and Athena (default: the AWS configuration's)")
    deploy.add_argument(
        "--principal",
        action="append",
        default=[],
        metavar="ARN",
        help="QuickSight user or group ARN that may use and manage the resources (repeatable)",
    )
    deploy.add_argument("--athena-workgroup", default="primary", help="Athena work group (default primary)")
    deploy.add_argument(
        "--glue-schema",
        default="lakehouse",
        help="prefix of the Glue databases dbt-athena writes (default lakehouse: lakehouse_gold, ...)",
    )
    deploy.add_argument("--catalog", default="AwsDataCatalog", help="Athena data catalog (default AwsDataCatalog)")
    deploy.add_argument(
        "--prefix", default="lakehouse", help="prefix of the QuickSight resource ids (default lakehouse)"
    )
    deploy.add_argument("--role-arn", help="IAM role QuickSight assumes to query Athena (default: its service role)")
    deploy.add_argument("--endpoint-url", help="QuickSight endpoint (a test server; default: AWS)")
    deploy.add_argument("--no-analysis", action="store_true", help="deploy the dashboard only, no editable analysis")
    deploy.add_argument("--dry-run", action="store_true", help="print the requests as JSON and send nothing")
    deploy.set_defaults(handler=_quicksight_deploy)


def _dashboard(settings, args) -> int:
    from dashboards.server import ServeOptions, serve

    return serve(settings, ServeOptions(host=args.host, port=args.port, open_browser=args.open))


def _quicksight_deploy(settings, args) -> int:
    from dashboards.quicksight.definitions import QuickSightTarget, build_resources
    from dashboards.quicksight.deploy import caller_account_id, deploy, quicksight_client

    client = None if args.dry_run else quicksight_client(args.region, args.endpoint_url)
    account_id = args.account_id or ("123456789012" if args.dry_run else caller_account_id(args.region))
    region = args.region or (client.meta.region_name if client else "us-east-1")
    target = QuickSightTarget(
        account_id=account_id,
        region=region,
        principals=tuple(args.principal),
        athena_workgroup=args.athena_workgroup,
        glue_schema=args.glue_schema,
        catalog=args.catalog,
        prefix=args.prefix,
        role_arn=args.role_arn,
        with_analysis=not args.no_analysis,
    )
    from lakehouse.fleet import load_fleet

    resources = build_resources(target, load_fleet(settings))  # the alert limits of the lake's catalogue
    if args.dry_run:
        print(
            json.dumps([{"operation": r.operation, "params": r.params} for r in resources.create_requests()], indent=1)
        )
        return 0
    report = deploy(client, resources, echo=print)
    print(report.summary())
    return 0
