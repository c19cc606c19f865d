"""A deployed stack's outputs become the settings that point the lakehouse at it: one ``lakehouse.toml``.

``settings_from_outputs`` (pure) checks each output and maps it to its Settings field;
``render_settings`` writes them as TOML; ``read_stack_outputs`` is the one door to CloudFormation
(boto3, with timeouts and bounded standard retries). ``write_stack_settings`` ties them together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.config import BRONZE_ON, Settings
from lakehouse.errors import LakehouseError

REDEPLOY = "deploy the stack again from this repository (README, 'Deploy on AWS')"


class StackOutputError(LakehouseError):
    """A stack output is missing or not what the lakehouse can use; the message names it and the fix."""


@dataclass(frozen=True)
class Output:
    key: str  # the stack's output key
    setting: str  # the Settings field it becomes
    check: Callable[[str], bool]
    shape: str  # what a good value looks like, for the error message


def _matches(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda value: compiled.fullmatch(value) is not None


_S3_PREFIX = r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^/\s]+)*"
_ARN = r"arn:aws[a-z\-]*:"
OUTPUTS = (
    Output("LakeUri", "lake", _matches(_S3_PREFIX), "s3://bucket/prefix"),
    Output("AwsRegion", "aws_region", _matches(r"[a-z]{2}(-[a-z]+)+-\d"), "a region such as eu-west-1"),
    Output("KinesisStream", "kinesis_stream", _matches(r"[a-zA-Z0-9_.\-]{1,128}"), "a Kinesis stream name"),
    Output("FirehoseStream", "firehose_stream", _matches(r"[a-zA-Z0-9_.\-]{1,64}"), "a Firehose stream name"),
    Output("AthenaWorkGroup", "athena_work_group", _matches(r"[a-zA-Z0-9._\-]{1,128}"), "an Athena work group name"),
    Output("AthenaResultsUri", "athena_results_uri", _matches(_S3_PREFIX + "/"), "s3://bucket/path/ (ending in /)"),
    Output("AthenaDataUri", "athena_data_uri", _matches(_S3_PREFIX + "/"), "s3://bucket/path/ (ending in /)"),
    Output("AthenaSchema", "athena_schema", _matches(r"[a-z0-9_]{1,200}"), "a Glue database name (a-z, 0-9, _)"),
    Output(
        "AlertTopicArn", "alert_sns_topic_arn", _matches(_ARN + r"sns:[a-z0-9\-]+:\d{12}:[\w\-]+"), "an SNS topic ARN"
    ),
    Output("BronzeOn", "bronze_on", lambda value: value in BRONZE_ON, " or ".join(BRONZE_ON)),
)
# Present only when the stack was deployed with BronzeOn=emr-serverless; then both are required.
EMR_OUTPUTS = (
    Output(
        "EmrServerlessApplicationId",
        "emr_serverless_application_id",
        _matches(r"[0-9a-z]{1,64}"),
        "an EMR Serverless application id",
    ),
    Output(
        "EmrServerlessJobRoleArn",
        "emr_serverless_job_role_arn",
        _matches(_ARN + r"iam::\d{12}:role/[\w+=,.@\-/]+"),
        "an IAM role ARN",
    ),
)


def settings_from_outputs(stack: str, outputs: Mapping[str, str | None]) -> dict[str, str]:
    """Settings values from a stack's outputs (key -> value). Raises :class:`StackOutputError` naming the
    first missing or malformed output and what to do."""
    values: dict[str, str] = {"dbt_target": "athena"}  # a lake on S3 is built by dbt on Athena
    wanted = list(OUTPUTS)
    if outputs.get("BronzeOn") == "emr-serverless":
        wanted += EMR_OUTPUTS
    for output in wanted:
        value = outputs.get(output.key)
        if value is None or not str(value).strip():
            raise StackOutputError(
                f"stack '{stack}' has no output '{output.key}' (setting {output.setting}); it holds "
                f"{sorted(k for k, v in outputs.items() if v) or 'no outputs'}. Is '{stack}' the lakehouse stack? "
                f"If it is, it was deployed from an older template: {REDEPLOY}."
            )
        value = str(value).strip()
        if not output.check(value):
            raise StackOutputError(
                f"stack '{stack}' output '{output.key}' (setting {output.setting}) is {value!r}, not {output.shape}. "
                f"The stack's template was changed by hand or is not the lakehouse's: {REDEPLOY}."
            )
        values[output.setting] = value
    return values


def render_settings(stack: str, values: Mapping[str, str]) -> str:
    """``lakehouse.toml`` text: a header saying where it came from, then one ``key = "value"`` a line."""
    lines = [
        f"# Written by `lakehouse infra outputs --stack {stack}` from the stack's outputs.",
        "# Environment variables (LAKEHOUSE_<NAME>) and flags still override these values.",
        "[lakehouse]",
    ]
    # JSON string escapes are valid TOML basic-string escapes.
    lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def cloudformation_client(settings: Settings, timeout_s: float = 30.0) -> Any:
    """A CloudFormation client on the settings' region and endpoint, with timeouts and standard retries."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=min(timeout_s, 10.0),
        read_timeout=timeout_s,
        retries={"max_attempts": 5, "mode": "standard"},
    )
    return boto3.client(
        "cloudformation", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url, config=config
    )


_USABLE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}


def read_stack_outputs(stack: str, settings: Settings, client: Any = None) -> dict[str, str | None]:
    """The stack's outputs, key -> value. Raises a :class:`LakehouseError` naming the stack, the region
    and the fix when the stack does not exist, cannot be read, or is not in a finished state."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or cloudformation_client(settings)
    where = f"region {settings.aws_region}" + (f" at {settings.aws_endpoint_url}" if settings.aws_endpoint_url else "")
    try:
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if "does not exist" in error.get("Message", ""):
            raise LakehouseError(
                f"no CloudFormation stack '{stack}' in {where}; check --stack and the region "
                f"(LAKEHOUSE_AWS_REGION or aws_region in lakehouse.toml), or deploy it (README, 'Deploy on AWS')"
            ) from exc
        raise LakehouseError(
            f"reading stack '{stack}' in {where} failed: {error.get('Code')}: {error.get('Message')}; "
            f"the credentials need cloudformation:DescribeStacks on it"
        ) from exc
    except BotoCoreError as exc:
        raise LakehouseError(
            f"reading stack '{stack}' in {where} failed: {exc}; check the network and endpoint"
        ) from exc
    status = stacks[0].get("StackStatus", "")
    if status not in _USABLE:
        raise LakehouseError(
            f"stack '{stack}' in {where} is {status}, so its outputs may not exist yet or any more; wait for the "
            f"deployment to finish (or fix it: `aws cloudformation describe-stack-events --stack-name {stack}`)"
        )
    return {o["OutputKey"]: o.get("OutputValue") for o in stacks[0].get("Outputs", [])}


def write_stack_settings(
    settings: Settings, stack: str, out: str | Path = "lakehouse.toml", force: bool = False, client: Any = None
) -> tuple[Path, dict[str, str]]:
    """Read the stack's outputs and write them as settings to ``out``; returns the path and the values.

    The settings' endpoint (a local moto or LocalStack) is written too, so the file points where the stack
    was read from. An existing file is replaced only with ``force``."""
    path = Path(out)
    if path.exists() and not force:
        raise LakehouseError(f"{path} exists; pass --force to replace it, or --out another file")
    values = settings_from_outputs(stack, read_stack_outputs(stack, settings, client))
    if settings.aws_endpoint_url:
        values["aws_endpoint_url"] = settings.aws_endpoint_url
    text = render_settings(stack, values)
    Settings().with_overrides(**values)  # every value is one the settings accept
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)
    return path, values
