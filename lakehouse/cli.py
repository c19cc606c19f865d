"""The ``lakehouse`` command: the front door. Each subcommand is a thin shell over a function that can be
called and tested without the CLI; the areas register their own subcommands (``<area>/cli.py``)."""

from __future__ import annotations

import argparse
import importlib
import sys

from lakehouse.config import ConfigError, Settings
from lakehouse.errors import LakehouseError

# Each module has ``register(subparsers)``; imports of heavy engines (Spark, dbt, GX) stay inside handlers
# so that ``lakehouse --help`` is instant.
AREAS = (
    "lakehouse.catalogue_cli",
    "ingestion.cli",
    "spark.cli",
    "orchestration.cli",
    "orchestration.athena_cli",
    "expectations.cli",
    "dashboards.cli",
    "infra.cli",
)

DESCRIPTION = """\
IoT sensor lakehouse: sensor readings from devices to trusted, analysis-ready tables.

  catalog   your device types, metrics and devices (in the lake) (lakehouse/catalogue.py)
  produce   simulate a sensor fleet into the landing zone      (ingestion/)
  bronze    land bronze Parquet with Spark Structured Streaming (spark/)
  gate      validate a layer with Great Expectations           (expectations/)
  transform build silver and gold with dbt                      (dbt_project/)
  run       one full cycle: bronze, gate, silver, gate, gold, gate
  demo      simulate a fleet and run a cycle on it, with a table of figures
  status    what each layer holds: rows, partitions, last run, freshness
  infra     the AWS stack as code: synthesize it, turn its outputs into settings (infra/)
"""

EPILOG = """\
examples:
  lakehouse demo                         # 100,000 readings through every layer, on ./lake
  lakehouse --lake /data/lake run        # one cycle on another lake
  LAKEHOUSE_LAKE=s3://bucket/lake lakehouse bronze --once
  lakehouse <command> --help             # what a command does, its options and examples

settings come from defaults, ./lakehouse.toml, LAKEHOUSE_* environment variables and flags, in that order.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakehouse",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--lake",
        metavar="URI",
        help="lake root: a local folder or s3://bucket/prefix (env LAKEHOUSE_LAKE; default ./lake)",
    )
    parser.add_argument(
        "--target",
        choices=("local", "athena"),
        help="dbt target: local (DuckDB in the lake) or athena (env LAKEHOUSE_DBT_TARGET; default local)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in AREAS:
        importlib.import_module(area).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(lake=args.lake, dbt_target=args.target)
        return int(args.handler(settings, args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
