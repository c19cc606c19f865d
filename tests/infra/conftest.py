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

    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )  # never the machine's own credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAKEHOUSE_"))}
    env.update(CREDENTIALS)
    env.update({"AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/creds"})
    return SimpleNamespace(
        endpoint=moto_endpoint, env=env, client=lambda service: session.client(service, endpoint_url=moto_endpoint)
    )


@pytest.fixture(scope="session")
def lakehouse():
    """``lakehouse(args, cwd, env)``: the real command in its own process."""

    def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([LAKEHOUSE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)

    return run
