"""Fixtures of the stack's specifications: the template, synthesized once per test session through the
real command (`lakehouse infra synth`, CDK on Node), a moto server, and the stack deployed into it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

STACK = "lakehouse-dev"
REGION = "us-east-1"
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Path:
    """The cloud assembly `lakehouse infra synth` writes (one synth per session: CDK starts Node)."""
    out = tmp_path_factory.mktemp("cdk.out")
    completed = subprocess.run(
        [LAKEHOUSE, "infra", "synth", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-4000:]
    return out / f"{STACK}.template.json"


@pytest.fixture(scope="session")
def template(synthesized) -> dict[str, Any]:
    return json.loads(synthesized.read_text())


@pytest.fixture(scope="session")
def resources(template) -> dict[str, dict[str, Any]]:
    return template["Resources"]


@pytest.fixture(scope="session")
def of_type(resources):
    """``of_type("AWS::IAM::Role")``: the template's resources of that type, by logical id."""

    def select(kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in resources.items() if r["Type"] == kind}

    return select


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws(moto_endpoint):
    """``aws.client("s3")``: boto3 clients on the moto server; ``aws.env``: what a CLI process needs (dummy
    credentials only: the endpoint comes from lakehouse.toml)."""
    import boto3
    from botocore.config import Config

    # moto answers create_stack only when every resource exists, which takes a while on a busy machine; a
    # retried create_stack would find its own Kinesis stream and fail, so: a long read timeout, no retries.
    config = Config(connect_timeout=10, read_timeout=600, retries={"max_attempts": 1})
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )  # never the machine's own credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAKEHOUSE_"))}
    env.update(CREDENTIALS)
    env.update({"AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/creds"})
    return SimpleNamespace(
        endpoint=moto_endpoint,
        env=env,
        client=lambda service: session.client(service, endpoint_url=moto_endpoint, config=config),
    )


@pytest.fixture(scope="session")
def lakehouse():
    """``lakehouse(args, cwd, env)``: the real command in its own process."""

    def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([LAKEHOUSE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)

    return run


# ---- the stack deployed into moto --------------------------------------------------------------------
# moto's CloudFormation creates most resource types and skips the others with a warning. The flow under
# test needs three of the skipped ones, so the fixture creates them through their own APIs from the
# template's properties (the template stays the only source); the rest of the skipped types are checked
# in the template itself (test_template.py, test_iam_policies.py).
CREATED_FROM_TEMPLATE = ("AWS::KinesisFirehose::DeliveryStream", "AWS::Glue::Database", "AWS::Athena::WorkGroup")
CHECKED_IN_TEMPLATE = ("AWS::S3::BucketPolicy", "AWS::IoT::TopicRule", "AWS::Scheduler::Schedule")


@pytest.fixture(scope="session")
def deployed(synthesized, template, aws):
    """The template deployed as stack lakehouse-dev into moto (BronzeOn=local: moto has no EMR Serverless in
    CloudFormation); returns the stack's outputs and the physical id of each created resource."""
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=synthesized.read_text(),
        Parameters=[{"ParameterKey": "BronzeOn", "ParameterValue": "local"}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }
    skipped = {
        template["Resources"][name]["Type"]
        for name, resource in template["Resources"].items()
        if name not in physical and "Condition" not in resource
    }
    assert skipped == set(CREATED_FROM_TEMPLATE) | set(CHECKED_IN_TEMPLATE), "moto's CloudFormation changed"

    def arn(name: str) -> str:
        kind = template["Resources"][name]["Type"]
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{physical[name]}"
        if kind == "AWS::IAM::Role":
            return aws.client("iam").get_role(RoleName=physical[name])["Role"]["Arn"]
        if kind == "AWS::Kinesis::Stream":
            return aws.client("kinesis").describe_stream_summary(StreamName=physical[name])["StreamDescriptionSummary"][
                "StreamARN"
            ]
        raise AssertionError(f"no ARN for {kind}")

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            if "Fn::GetAtt" in value:
                assert value["Fn::GetAtt"][1] == "Arn", value
                return arn(value["Fn::GetAtt"][0])
            if "Fn::Join" in value:
                separator, parts = value["Fn::Join"]
                return separator.join(str(resolve(p)) for p in parts)
            if "Ref" in value:
                return {"AWS::AccountId": "123456789012", "AWS::Region": REGION}.get(
                    value["Ref"], physical.get(value["Ref"])
                )
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    for resource in template["Resources"].values():
        if resource["Type"] not in CREATED_FROM_TEMPLATE:
            continue
        props = resolve(resource["Properties"])
        if resource["Type"] == "AWS::KinesisFirehose::DeliveryStream":
            request = {
                k: props[k] for k in ("DeliveryStreamName", "DeliveryStreamType", "ExtendedS3DestinationConfiguration")
            }
            if "KinesisStreamSourceConfiguration" in props:
                request["KinesisStreamSourceConfiguration"] = props["KinesisStreamSourceConfiguration"]
            aws.client("firehose").create_delivery_stream(**request)
        elif resource["Type"] == "AWS::Glue::Database":
            aws.client("glue").create_database(DatabaseInput=props["DatabaseInput"])
        elif resource["Type"] == "AWS::Athena::WorkGroup":
            aws.client("athena").create_work_group(
                Name=props["Name"], Description=props["Description"], Configuration=props["WorkGroupConfiguration"]
            )
    outputs = {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs", [])}
    return SimpleNamespace(outputs=outputs, physical=physical)
