"""Fixtures of the STEDI ingestion specs: settings on a fresh lake (ignoring the machine's lakehouse.toml
and LAKEHOUSE_* variables), and a moto server on 127.0.0.1 for the S3 lake."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from lakehouse.config import Settings

AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def settings_for(lake: Path | str, **overrides) -> Settings:
    cwd = Path(lake).parent if not str(lake).startswith("s3://") else Path("/")
    return Settings.load(env={}, cwd=cwd, lake=str(lake), **overrides)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return settings_for(tmp_path / "lake")


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    """A moto server in server mode on a free port of 127.0.0.1, for the whole session."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch) -> None:
    """Dummy credentials and a region for the boto3 clients the code builds itself."""
    for key, value in AWS_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
