"""``lakehouse infra``: the AWS stack as code. ``synth`` writes its CloudFormation template; ``outputs``
turns a deployed stack into the ``lakehouse.toml`` that points the lakehouse at it."""

from __future__ import annotations

import argparse
import sys

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

DESCRIPTION = """\
The AWS side of the lakehouse as one CloudFormation stack, written with AWS CDK (infra/stack.py): the
lake bucket, Kinesis and Firehose into the landing layout, IoT Core, Glue databases, the Athena work
group, EMR Serverless for bronze, SNS alerts, the cycle schedule, and one IAM role per component.

  synth     write the stack's template (offline; needs Node.js and the infra extra)
  outputs   write lakehouse.toml from a deployed stack's outputs (needs only boto3)"""

EPILOG = """\
deploy (see README, 'Deploy on AWS'):
  lakehouse infra synth --out cdk.out --prefix lakehouse --env dev
  npx aws-cdk@2 deploy --app cdk.out lakehouse-dev      # or: aws cloudformation deploy --template-file ...
  lakehouse infra outputs --stack lakehouse-dev         # writes ./lakehouse.toml
  lakehouse produce --sink firehose --readings 1000     # the stream comes from lakehouse.toml
"""

SYNTH_EPILOG = """\
examples:
  lakehouse infra synth --out cdk.out                             # stack lakehouse-dev
  lakehouse infra synth --out cdk.out --prefix acme --env prod    # stack acme-prod
  lakehouse infra synth --out cdk.out --no-iot --buffer-seconds 300

the directory is a CDK cloud assembly: `cdk deploy --app DIR` deploys it as it is, and
DIR/<stack>.template.json is a plain template for `aws cloudformation deploy`.
"""

OUTPUTS_EPILOG = """\
examples:
  lakehouse infra outputs --stack lakehouse-dev                   # ./lakehouse.toml
  lakehouse infra outputs --stack acme-prod --out prod.toml --force
  LAKEHOUSE_CONFIG=prod.toml lakehouse run                        # use another file

the region (and endpoint) come from the settings: LAKEHOUSE_AWS_REGION / aws_region, and
LAKEHOUSE_AWS_ENDPOINT_URL / aws_endpoint_url (written into the file too when set).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    infra = subparsers.add_parser(
        "infra",
        help="the AWS stack as code: synthesize it, turn its outputs into settings",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = infra.add_subparsers(dest="infra_command", required=True, metavar="COMMAND")

    synth = commands.add_parser(
        "synth",
        help="write the stack's CloudFormation template (CDK, offline)",
        description="Synthesize the lakehouse stack into a CDK cloud assembly with its CloudFormation template.",
        epilog=SYNTH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synth.add_argument("--out", required=True, metavar="DIR", help="where to write the cloud assembly")
    synth.add_argument("--prefix", default="lakehouse", help="name prefix of every resource (default lakehouse)")
    synth.add_argument("--env", default="dev", metavar="NAME", help="environment, part of every name (default dev)")
    synth.add_argument(
        "--no-iot", action="store_true", help="leave out the IoT Core rule from MQTT topic sites/+/devices/+/readings"
    )
    synth.add_argument(
        "--buffer-seconds", type=int, default=60, metavar="S", help="Firehose: a file at least every S s (default 60)"
    )
    synth.add_argument(
        "--buffer-mib", type=int, default=16, metavar="MIB", help="Firehose: or when it holds MIB MiB (default 16)"
    )
    synth.add_argument(
        "--athena-cutoff-gib",
        type=float,
        default=10.0,
        metavar="GIB",
        help="Athena work group: cancel a query after it scans this much (default 10 GiB)",
    )
    synth.set_defaults(handler=synth_handler)

    outputs = commands.add_parser(
        "outputs",
        help="write lakehouse.toml from a deployed stack's outputs",
        description="Read a deployed lakehouse stack's outputs (CloudFormation DescribeStacks) and write the\n"
        "settings that point the lakehouse at it: lake, dbt_target, streams, Athena, alerts, bronze.\n"
        "A missing or malformed output stops it with the output's name and the fix (exit 2).",
        epilog=OUTPUTS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    outputs.add_argument("--stack", required=True, metavar="NAME", help="the stack's name, e.g. lakehouse-dev")
    outputs.add_argument(
        "--out", default="lakehouse.toml", metavar="FILE", help="where to write (default ./lakehouse.toml)"
    )
    outputs.add_argument("--force", action="store_true", help="replace FILE if it exists")
    outputs.set_defaults(handler=outputs_handler)


def synth_handler(settings: Settings, args: argparse.Namespace) -> int:
    from infra.stack import StackConfig
    from infra.synth import synth

    try:
        config = StackConfig(
            prefix=args.prefix,
            environment=args.env,
            with_iot=not args.no_iot,
            buffer_seconds=args.buffer_seconds,
            buffer_mib=args.buffer_mib,
            athena_bytes_scanned_cutoff=int(args.athena_cutoff_gib * 1024**3),
        )
    except ValueError as exc:
        raise LakehouseError(f"lakehouse infra synth: {exc}") from exc
    print(
        f"synthesizing stack {config.stack_name} (CDK starts Node.js; this takes a little while) ...", file=sys.stderr
    )
    template = synth(config, args.out)
    print(f"wrote {template} ({template.stat().st_size:,} bytes)")
    print(f"  deploy: npx aws-cdk@2 deploy --app {args.out} {config.stack_name}")
    return 0


def outputs_handler(settings: Settings, args: argparse.Namespace) -> int:
    from infra.outputs import write_stack_settings

    path, values = write_stack_settings(settings, args.stack, args.out, force=args.force)
    print(f"wrote {path} from stack {args.stack}:")
    for key, value in values.items():
        print(f"  {key} = {value}")
    return 0
