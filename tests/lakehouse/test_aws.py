"""The one door to AWS (lakehouse/aws.py): clients and S3 storage from the settings, bounded retries and
timeouts over real HTTP (moto on 127.0.0.1, and a small local server that throttles or never answers), and
settings the Athena target cannot start without."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lakehouse import aws
from lakehouse.config import ConfigError, Settings
from lakehouse.storage import storage_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def credentials(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class TroubledAws:
    """An HTTP endpoint that answers every request with throttling (``mode="throttle"``) or too slowly
    (``mode="slow"``), counting the requests per operation (the X-Amz-Target header of JSON APIs, the path
    of REST ones)."""

    def __init__(
        self, mode: str, delay_s: float = 2.0, forward_to: str | None = None, troubled_paths: str = ""
    ) -> None:
        self.requests: list[str] = []
        troubled = self
        import http.client
        from urllib.parse import urlparse

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body_in = self.rfile.read(length)
                if forward_to and not self.path.startswith(troubled_paths):
                    # not the troubled service: pass the request on to moto unchanged
                    target = urlparse(forward_to)
                    upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                    upstream.request(self.command, self.path, body=body_in, headers=dict(self.headers))
                    answer = upstream.getresponse()
                    data = answer.read()
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                troubled.requests.append(self.headers.get("X-Amz-Target") or f"{self.command} {self.path}")
                if mode == "slow":
                    time.sleep(delay_s)
                body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                try:
                    self.send_response(400)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("x-amzn-ErrorType", "ThrottlingException")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (read timeout)
                    pass

            do_POST = do_GET = do_PUT = do_HEAD = do_DELETE = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def throttling():
    server = TroubledAws("throttle")
    yield server
    server.close()


@pytest.fixture
def unresponsive():
    server = TroubledAws("slow", delay_s=1.5)
    yield server
    server.close()


def test_clients_take_region_endpoint_timeouts_and_bounded_retries_from_the_settings(credentials, moto_endpoint):
    settings = Settings(
        aws_region="eu-west-1",
        aws_endpoint_url=moto_endpoint,
        aws_connect_timeout_s=3.0,
        aws_read_timeout_s=7.0,
        aws_max_attempts=4,
    )
    athena = aws.client(settings, "athena")
    config = athena.meta.config
    assert athena.meta.region_name == "eu-west-1"
    assert athena.meta.endpoint_url == moto_endpoint
    assert (config.connect_timeout, config.read_timeout) == (3.0, 7.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}


def test_s3_storage_of_an_s3_lake_reaches_the_settings_endpoint_without_aws_endpoint_url(credentials, moto_endpoint):
    settings = Settings(lake="s3://door-lake/lake", aws_endpoint_url=moto_endpoint)
    aws.client(settings, "s3").create_bucket(Bucket="door-lake")
    storage = storage_for("s3://door-lake/lake/ops/x.json", settings)
    storage.write_bytes("s3://door-lake/lake/ops/x.json", b"{}\n")
    assert storage.list("s3://door-lake/lake/ops") == ["s3://door-lake/lake/ops/x.json"]
    assert storage.read_bytes("s3://door-lake/lake/ops/x.json") == b"{}\n"


def test_a_throttled_call_is_retried_then_fails_naming_service_operation_and_error(credentials, throttling):
    from orchestration.athena import run_query

    settings = athena_settings(aws_endpoint_url=throttling.endpoint, aws_max_attempts=3)
    with pytest.raises(aws.AwsCallFailed) as failure:
        run_query(settings, "select 1")
    assert throttling.requests == ["AmazonAthena.StartQueryExecution"] * 3
    message = str(failure.value)
    assert "AWS athena StartQueryExecution failed: ThrottlingException: Rate exceeded" in message
    assert "after 3 attempts" in message


def test_a_call_that_times_out_is_retried_then_fails_naming_the_operation(credentials, unresponsive):
    from orchestration.athena import run_query

    settings = athena_settings(aws_endpoint_url=unresponsive.endpoint, aws_max_attempts=2, aws_read_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(aws.AwsCallFailed, match=r"AWS athena StartQueryExecution failed: ReadTimeoutError"):
        run_query(settings, "select 1")
    assert unresponsive.requests == ["AmazonAthena.StartQueryExecution"] * 2
    assert time.monotonic() - started < 10, "bounded: two attempts of 0.3 s plus backoff"


def test_the_cycle_records_a_throttled_bronze_submission_as_the_failed_step(credentials, moto_endpoint):
    from lakehouse import ops
    from orchestration.cycle import run_cycle

    # S3 (the lake) passes through to moto; EMR Serverless (/applications/...) is throttled
    proxy = TroubledAws("throttle", forward_to=moto_endpoint, troubled_paths="/applications")
    try:
        settings = athena_settings(
            aws_endpoint_url=proxy.endpoint,
            bronze_on="emr-serverless",
            emr_serverless_application_id="00fakeapp",
            emr_serverless_job_role_arn="arn:aws:iam::123456789012:role/bronze",
            aws_max_attempts=2,
        )
        aws.client(settings, "s3").create_bucket(Bucket="door-lake")
        report = run_cycle(settings, echo=lambda _line: None)
        assert not report.success
        assert report.step("bronze").status == "failed"
        assert "AWS emr-serverless StartJobRun failed: ThrottlingException: Rate exceeded" in report.failure
        assert [s.status for s in report.steps[1:]] == ["skipped"] * 5
        assert proxy.requests == ["POST /applications/00fakeapp/jobruns"] * 2
        recorded = [r for r in ops.read(settings.lake_root, "ops_runs", settings=settings) if r["step"] == "bronze"]
        assert recorded[-1]["status"] == "failed"
        assert "AWS emr-serverless StartJobRun failed: ThrottlingException" in recorded[-1]["detail"]
    finally:
        proxy.close()


def athena_settings(**overrides) -> Settings:
    values = {
        "lake": "s3://door-lake/lake",
        "dbt_target": "athena",
        "athena_work_group": "primary",
        "athena_results_uri": "s3://door-lake/athena-results/",
        "athena_data_uri": "s3://door-lake/warehouse/",
        **overrides,
    }
    return Settings(**values)


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("athena_work_group", "LAKEHOUSE_ATHENA_WORK_GROUP"),
        ("athena_results_uri", "LAKEHOUSE_ATHENA_RESULTS_URI"),
        ("athena_data_uri", "LAKEHOUSE_ATHENA_DATA_URI"),
    ],
)
def test_a_missing_athena_setting_fails_at_start_with_its_name_and_the_fix(
    missing, variable, capsys, tmp_path, monkeypatch
):
    from lakehouse.cli import main

    env = {
        "LAKEHOUSE_ATHENA_WORK_GROUP": "primary",
        "LAKEHOUSE_ATHENA_RESULTS_URI": "s3://b/athena-results/",
        "LAKEHOUSE_ATHENA_DATA_URI": "s3://b/warehouse/",
    }
    env.pop(variable)
    settings = Settings.load(env=env, cwd=tmp_path, lake="s3://b/lake", dbt_target="athena")
    with pytest.raises(ConfigError, match=rf"athena target needs {missing}: set {missing} \(env {variable}"):
        aws.require_athena(settings)

    # the same from the command line, before any step runs: exit 2 with the setting's name
    monkeypatch.chdir(tmp_path)
    for name in (*env, variable):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["--lake", "s3://b/lake", "--target", "athena", "run"])
    assert code == 2
    err = capsys.readouterr().err
    assert missing in err and variable in err


def test_tables_under_the_query_results_folder_are_refused():
    settings = athena_settings(athena_data_uri="s3://door-lake/athena-results/tables/")
    with pytest.raises(ConfigError, match="overlap; tables must not live under the query results"):
        aws.require_athena(settings)
