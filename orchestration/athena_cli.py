"""``lakehouse athena ...``: set up the Athena target (orchestration/athena.py does the work)."""

from __future__ import annotations

import argparse

_FMT = argparse.RawDescriptionHelpFormatter


def register(subparsers: argparse._SubParsersAction) -> None:
    athena = subparsers.add_parser(
        "athena",
        help="set up the Athena target: Glue databases and tables (init)",
        formatter_class=_FMT,
        description="Commands for the dbt target `athena` (settings: athena_work_group, athena_results_uri,\n"
        "athena_data_uri, athena_schema, aws_region; see lakehouse/config.py).",
    )
    commands = athena.add_subparsers(dest="athena_command", required=True, metavar="COMMAND")
    init = commands.add_parser(
        "init",
        help="create the Glue databases and tables the athena target reads (idempotent)",
        formatter_class=_FMT,
        description=(
            "Create, through Athena, what dbt's athena target and the gates read, and say for each whether\n"
            "it was created now or already there (running it again changes nothing):\n"
            "  <schema>_bronze   readings, customer, accelerometer, step_trainer: external Parquet tables over\n"
            "                    <lake>/bronze/<table>/ with partition projection on event_date (no MSCK\n"
            "                    REPAIR, queries filtering on event_date read only those folders)\n"
            "  <schema>_ops      ops_runs, ops_gate_results: the run history and gate results (NDJSON under\n"
            "                    <lake>/ops/), for analysts and QuickSight\n"
            "  <schema>_secrets  pii_salt: the one-row table the curated STEDI key's salt is read from\n"
            "                    (written to <lake>/_secrets/pii_salt/ when LAKEHOUSE_PII_SALT is set)"
        ),
        epilog="examples:\n"
        "  LAKEHOUSE_ATHENA_WORK_GROUP=primary LAKEHOUSE_ATHENA_RESULTS_URI=s3://b/athena-results/ \\\n"
        "  LAKEHOUSE_ATHENA_DATA_URI=s3://b/warehouse/ lakehouse --lake s3://b/lake athena init",
    )
    init.set_defaults(handler=_init)


def _init(settings, args) -> int:
    from orchestration.athena import athena_init

    athena_init(settings, echo=print)
    return 0
