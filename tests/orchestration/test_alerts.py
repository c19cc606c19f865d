"""Alerts: new anomalies and failed gates go to the alerts file, a webhook and SNS, each alert once.

The webhook is a small HTTP server on 127.0.0.1 started by the tests; SNS and S3 are a moto server on
127.0.0.1 reached through boto3, with an SQS queue subscribed to the topic to read back what was sent.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb
import pytest
import yaml

from expectations.result import ExpectationOutcome, GateResult
from lakehouse.config import DBT_PROJECT_DIR, Settings
from lakehouse.errors import LakehouseError
from orchestration.alerts import (
    ANOMALY_COLUMNS,
    alert_file_uri,
    gate_failures,
    new_anomalies_from_warehouse,
    send_alerts,
    state_uri,
)

AWS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
STARTED = datetime(2026, 3, 1, 10, 3, 20)  # naive UTC, as DuckDB returns gold's timestamps


def anomaly(n: int, severity: str = "critical", **values: Any) -> dict[str, Any]:
    """A row of gold.gold_anomalies: a threshold breach of machine n's vibration."""
    row = {
        "anomaly_id": f"{n:032x}",
        "device_id": f"mch-{n:05d}",
        "device_type": "machine",
        "site_id": "site-02",
        "metric": "vibration_mm_s",
        "anomaly_kind": "threshold_breach",
        "started_at": STARTED + timedelta(minutes=n),
        "ended_at": STARTED + timedelta(minutes=n, seconds=20),
        "peak_value": 80.0,
        "score": 0.79,
        "severity": severity,
        "reading_count": 3,
        "last_ingested_at": datetime(2026, 3, 1, 12, 0),
        "event_date": date(2026, 3, 1),
    }
    row.update(values)
    return row


def settings_for(tmp_path, **overrides: Any) -> Settings:
    """Settings on a fresh lake, ignoring any lakehouse.toml or LAKEHOUSE_* of the machine running tests."""
    overrides.setdefault("lake", str(tmp_path / "lake"))
    return Settings.load(env={}, cwd=tmp_path, **overrides)


def alert_lines(settings: Settings) -> list[dict[str, Any]]:
    with open(alert_file_uri(settings)) as handle:
        return [json.loads(line) for line in handle]


# ---- A webhook receiver on 127.0.0.1 ---------------------------------------------------------------------
class WebhookReceiver:
    """Answers the first ``fail_first`` POSTs with ``fail_status`` (after ``delay_s``), then accepts them.
    ``requests`` holds every POST (headers and JSON body), ``accepted`` the bodies it answered 200 to."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503, delay_s: float = 0.0) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay_s = delay_s
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.accepted: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append((dict(self.headers), body))
                time.sleep(receiver.delay_s)
                if len(receiver.requests) <= receiver.fail_first:
                    self.send_response(receiver.fail_status)
                else:
                    receiver.accepted.append(body)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/SECRET-TOKEN"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook():
    """``webhook(fail_first=..., fail_status=..., delay_s=...) -> WebhookReceiver``, closed after the test."""
    receivers: list[WebhookReceiver] = []

    def start(**kwargs: Any) -> WebhookReceiver:
        receivers.append(WebhookReceiver(**kwargs))
        return receivers[-1]

    yield start
    for receiver in receivers:
        receiver.close()


# ---- AWS: a moto server on 127.0.0.1 ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_endpoint() -> str:
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
    """Dummy credentials for the boto3 clients that alerts build from the usual chain."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS["aws_secret_access_key"])
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


def aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint, **AWS)


@pytest.fixture
def subscribed_queue(moto_endpoint, aws_env):
    """A fresh SNS topic with an SQS queue subscribed to it: ``(topic_arn, read_queue)``, where
    ``read_queue()`` returns the SNS envelopes that arrived, each once."""
    sns, sqs = aws_client("sns", moto_endpoint), aws_client("sqs", moto_endpoint)
    name = f"alerts-{uuid.uuid4().hex[:8]}"
    topic_arn = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def read_queue() -> list[dict[str, Any]]:
        envelopes = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return envelopes
            for message in messages:
                envelopes.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    return topic_arn, read_queue


# ---- The webhook -----------------------------------------------------------------------------------------
def test_a_webhook_that_fails_twice_then_succeeds_delivers_exactly_once(tmp_path, webhook):
    receiver = webhook(fail_first=2, fail_status=503)
    settings = settings_for(tmp_path, alert_webhook_url=receiver.url, alert_webhook_retries=3)

    report = send_alerts(settings, "run-1", anomalies=[anomaly(1), anomaly(2)])

    assert len(receiver.requests) == 3
    assert len(receiver.accepted) == 1
    delivered = receiver.accepted[0]
    assert [a["alert_id"] for a in delivered["alerts"]] == [f"anomaly:{1:032x}", f"anomaly:{2:032x}"]
    # The retries carried the same idempotency key, in the body and as a header, so a receiver can drop them.
    keys = {body["idempotency_key"] for _, body in receiver.requests}
    assert keys == {delivered["idempotency_key"]}
    assert {headers["Idempotency-Key"] for headers, _ in receiver.requests} == keys
    assert report.sinks["webhook"].delivered == [f"anomaly:{1:032x}", f"anomaly:{2:032x}"]
    assert report.sinks["webhook"].failed == []
    assert report.success

    send_alerts(settings, "run-2", anomalies=[anomaly(1), anomaly(2)])
    assert len(receiver.requests) == 3  # nothing more was sent


def test_a_webhook_payload_carries_the_alert_records(tmp_path, webhook):
    receiver = webhook()
    settings = settings_for(tmp_path, alert_webhook_url=receiver.url)

    send_alerts(settings, "run-1", anomalies=[anomaly(7)])

    (payload,) = receiver.accepted
    assert payload["run_id"] == "run-1"
    (alert,) = payload["alerts"]
    assert alert["alert_id"] == f"anomaly:{7:032x}"
    assert alert["kind"] == "anomaly"
    assert alert["severity"] == "critical"
    assert alert["subject"] == "[critical] threshold_breach of vibration_mm_s on mch-00007 (site-02)"
    assert alert["details"]["started_at"] == "2026-03-01T10:10:20Z"
    assert alert["details"]["event_date"] == "2026-03-01"
    assert alert["details"]["peak_value"] == 80.0


def test_a_webhook_that_keeps_failing_is_reported_without_raising_and_retried_next_cycle(tmp_path, webhook):
    receiver = webhook(fail_first=2, fail_status=500)
    settings = settings_for(tmp_path, alert_webhook_url=receiver.url, alert_webhook_retries=1)
    alert_id = f"anomaly:{1:032x}"

    first = send_alerts(settings, "run-1", anomalies=[anomaly(1)])

    assert len(receiver.requests) == 2  # the first attempt and one retry
    assert first.sinks["webhook"].failed == [alert_id]
    assert "HTTP 500" in first.sinks["webhook"].errors[0]
    assert first.sinks["file"].delivered == [alert_id]
    assert first.pending == [alert_id] and first.alerted == []
    assert not first.success

    second = send_alerts(settings, "run-2", anomalies=[anomaly(1)])

    assert second.alerted == [alert_id]
    assert len(receiver.accepted) == 1
    assert receiver.accepted[0]["idempotency_key"] == receiver.requests[0][1]["idempotency_key"]
    assert second.sinks["file"].delivered == []  # the file had it already...
    assert [line["alert_id"] for line in alert_lines(settings)] == [alert_id]  # ...and has it once


def test_a_pending_alert_is_retried_even_when_the_next_cycle_does_not_see_it(tmp_path, webhook):
    receiver = webhook(fail_first=1, fail_status=503)
    settings = settings_for(tmp_path, alert_webhook_url=receiver.url, alert_webhook_retries=0)
    failure = {"layer": "silver", "suite": "silver__readings", "expectation": "seq_not_null", "severity": "error"}

    first = send_alerts(settings, "run-1", gate_failures=[failure])
    second = send_alerts(settings, "run-2")  # e.g. the next cycle fails before gold: no anomalies, no failures

    assert first.pending == ["gate:run-1:silver:silver__readings:seq_not_null"]
    assert second.alerted == ["gate:run-1:silver:silver__readings:seq_not_null"]
    assert [a["alert_id"] for a in receiver.accepted[0]["alerts"]] == second.alerted


def test_a_webhook_that_rejects_the_alerts_is_not_retried_and_its_secret_is_not_reported(tmp_path, webhook):
    receiver = webhook(fail_first=10, fail_status=400)
    settings = settings_for(tmp_path, alert_webhook_url=receiver.url, alert_webhook_retries=3)

    report = send_alerts(settings, "run-1", anomalies=[anomaly(1)])

    assert len(receiver.requests) == 1
    (error,) = report.sinks["webhook"].errors
    assert "HTTP 400" in error
    assert "SECRET-TOKEN" not in error and "SECRET-TOKEN" not in report.summary()
    assert report.pending == [f"anomaly:{1:032x}"]


def test_a_webhook_that_does_not_answer_within_the_timeout_fails(tmp_path, webhook):
    receiver = webhook(delay_s=2.0)
    settings = settings_for(
        tmp_path, alert_webhook_url=receiver.url, alert_webhook_timeout_s=0.3, alert_webhook_retries=0
    )

    started = time.monotonic()
    report = send_alerts(settings, "run-1", anomalies=[anomaly(1)])

    assert time.monotonic() - started < 1.5
    assert report.sinks["webhook"].failed == [f"anomaly:{1:032x}"]
    assert "timed out" in report.sinks["webhook"].errors[0]


# ---- De-duplication --------------------------------------------------------------------------------------
def test_an_anomaly_alerts_once_however_many_cycles_see_it(tmp_path, webhook):
    receiver = webhook()
    settings = settings_for(tmp_path, alert_webhook_url=receiver.url)

    first = send_alerts(settings, "run-1", anomalies=[anomaly(1), anomaly(2)])
    second = send_alerts(settings, "run-2", anomalies=[anomaly(1), anomaly(2)])
    # A window that grew in a later cycle keeps gold's anomaly_id: still the same alert.
    third = send_alerts(settings, "run-3", anomalies=[anomaly(1, ended_at=STARTED + timedelta(hours=1))])

    assert first.alerted == [f"anomaly:{1:032x}", f"anomaly:{2:032x}"]
    assert second.alerted == [] and second.attempted == []
    assert second.already_alerted == [f"anomaly:{1:032x}", f"anomaly:{2:032x}"]
    assert third.alerted == [] and third.already_alerted == [f"anomaly:{1:032x}"]
    assert len(receiver.requests) == 1
    assert len(alert_lines(settings)) == 2


def test_a_new_anomaly_in_a_later_cycle_is_sent_alone(tmp_path, webhook):
    receiver = webhook()
    settings = settings_for(tmp_path, alert_webhook_url=receiver.url)

    send_alerts(settings, "run-1", anomalies=[anomaly(1)])
    report = send_alerts(settings, "run-2", anomalies=[anomaly(1), anomaly(3)])

    assert report.alerted == [f"anomaly:{3:032x}"]
    assert [[a["alert_id"] for a in body["alerts"]] for body in receiver.accepted] == [
        [f"anomaly:{1:032x}"],
        [f"anomaly:{3:032x}"],
    ]


def first_history(devices: int, per_device: int) -> list[dict[str, Any]]:
    """A new fleet's first history seen in one cycle: many critical windows on each of a few machines."""
    rows = []
    for d in range(1, devices + 1):
        for k in range(per_device):
            n = d * 1000 + k
            rows.append(anomaly(n, device_id=f"mch-{d:05d}", started_at=STARTED + timedelta(minutes=k)))
    rows[1]["severity"] = "warning"  # below the default alert_min_severity: not sent, not held back either
    return rows


def test_a_new_fleets_first_history_is_rate_limited_per_device_and_summarised(tmp_path, webhook):
    receiver = webhook()
    settings = settings_for(tmp_path, alert_webhook_url=receiver.url)

    report = send_alerts(settings, "run-1", anomalies=first_history(devices=3, per_device=40), max_per_device=3)

    lines = alert_lines(settings)
    sent = [line for line in lines if line["kind"] == "anomaly"]
    (summary,) = [line for line in lines if line["kind"] == "anomaly_summary"]
    assert len(sent) == 9  # three per device: the earliest critical ones
    assert {line["details"]["device_id"] for line in sent} == {"mch-00001", "mch-00002", "mch-00003"}
    assert [line["details"]["started_at"] for line in sent if line["details"]["device_id"] == "mch-00001"] == [
        "2026-03-01T10:03:20Z",
        "2026-03-01T10:05:20Z",
        "2026-03-01T10:06:20Z",
    ]
    assert summary["details"]["held_back"] == 110  # 3 x 40, less 9 sent and 1 below severity
    assert summary["details"]["held_back_by_device"] == {"mch-00002": 37, "mch-00003": 37, "mch-00001": 36}
    assert "110 more held back by the rate limit of 3 per device" in summary["message"]
    assert sum(len(ids) for ids in report.held_back.values()) == 110
    assert "110 held back by the per-device rate limit (3 device(s), summarised)" in report.summary()
    assert [len(body["alerts"]) for body in receiver.accepted] == [10]  # one POST: nine alerts and the summary


def test_alerts_held_back_are_not_sent_by_a_later_cycle(tmp_path):
    settings = settings_for(tmp_path)
    history = first_history(devices=2, per_device=10)
    send_alerts(settings, "run-1", anomalies=history, max_per_device=2)

    later = send_alerts(settings, "run-2", anomalies=history + [anomaly(7)], max_per_device=2)

    assert later.alerted == [f"anomaly:{7:032x}"]
    assert later.held_back == {}
    assert len(alert_lines(settings)) == 4 + 1 + 1  # run 1: four alerts and the summary; run 2: one


def test_the_state_lives_under_the_lake_and_remembers_every_alerted_id(tmp_path):
    settings = settings_for(tmp_path)

    send_alerts(settings, "run-1", anomalies=[anomaly(1), anomaly(2)])

    assert state_uri(settings) == str(tmp_path / "lake" / "ops" / "alerts_state" / "state.json")
    with open(state_uri(settings)) as handle:
        state = json.load(handle)
    assert sorted(state["alerted"]) == [f"anomaly:{1:032x}", f"anomaly:{2:032x}"]
    assert state["pending"] == {}


def test_an_unreadable_state_file_stops_the_alerts_and_names_the_file(tmp_path):
    settings = settings_for(tmp_path)
    send_alerts(settings, "run-1", anomalies=[anomaly(1)])
    with open(state_uri(settings), "w") as handle:
        handle.write("{not json")

    with pytest.raises(LakehouseError, match="alerts_state/state.json.*delete it"):
        send_alerts(settings, "run-2", anomalies=[anomaly(2)])
    assert len(alert_lines(settings)) == 1


def test_gate_failures_alert_once_per_run_and_expectation(tmp_path):
    settings = settings_for(tmp_path)
    outcome = dict(
        suite="silver__readings", rule="valid_range", column="temperature_c", success=False,
        element_count=1000, unexpected_percent=0.4, note="temperature_c within the valid range",
    )  # fmt: skip
    gate = GateResult(
        layer="silver",
        run_id="run-1",
        suite_names=["silver__readings"],
        success=False,
        seconds=1.0,
        results=[
            ExpectationOutcome(
                expectation="temperature_c_in_valid_range",
                severity="error",
                unexpected_count=3,
                partition="2026-03-01",
                **outcome,
            ),
            ExpectationOutcome(
                expectation="temperature_c_in_valid_range",
                severity="error",
                unexpected_count=4,
                partition="2026-03-02",
                **outcome,
            ),
            ExpectationOutcome(
                expectation="humidity_pct_in_alert_band",
                severity="warning",
                unexpected_count=9,
                partition="2026-03-01",
                **outcome,
            ),
        ],  # fmt: skip
    )

    first = send_alerts(settings, "run-1", gate_failures=gate_failures(gate))
    again = send_alerts(settings, "run-1", gate_failures=gate_failures(gate))
    next_run = send_alerts(settings, "run-2", gate_failures=gate_failures(gate))

    assert first.alerted == ["gate:run-1:silver:silver__readings:temperature_c_in_valid_range"]
    assert first.below_severity == 1  # the warning, under the default alert_min_severity "critical"
    (alert,) = first.attempted
    assert alert["kind"] == "gate_failure" and alert["severity"] == "critical"
    assert alert["details"]["unexpected_count"] == 7
    assert alert["details"]["partitions"] == ["2026-03-01", "2026-03-02"]
    assert alert["subject"] == "[critical] gate silver failed: temperature_c_in_valid_range"
    assert again.alerted == [] and again.already_alerted == first.alerted
    assert next_run.alerted == ["gate:run-2:silver:silver__readings:temperature_c_in_valid_range"]


# ---- Severity and the alerts file ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("min_severity", "sent"),
    [("info", ["info", "warning", "critical"]), ("warning", ["warning", "critical"]), ("critical", ["critical"])],
)
def test_only_anomalies_at_or_above_the_configured_severity_are_sent(tmp_path, min_severity, sent):
    settings = settings_for(tmp_path, alert_min_severity=min_severity)
    rows = [anomaly(1, "info"), anomaly(2, "warning"), anomaly(3, "critical")]

    report = send_alerts(settings, "run-1", anomalies=rows)

    assert [line["severity"] for line in alert_lines(settings)] == sent
    assert report.below_severity == 3 - len(sent)


def test_the_alerts_file_holds_one_line_per_alert(tmp_path):
    settings = settings_for(tmp_path)
    failure = {"layer": "bronze", "suite": "bronze__readings", "expectation": "quarantine_share", "severity": "error"}

    send_alerts(settings, "run-1", anomalies=[anomaly(1), anomaly(2)], gate_failures=[failure])
    send_alerts(settings, "run-2", anomalies=[anomaly(2), anomaly(3)])

    assert alert_file_uri(settings) == str(tmp_path / "lake" / "ops" / "alerts.ndjson")
    assert [(line["alert_id"], line["run_id"]) for line in alert_lines(settings)] == [
        (f"anomaly:{1:032x}", "run-1"),
        (f"anomaly:{2:032x}", "run-1"),
        ("gate:run-1:bronze:bronze__readings:quarantine_share", "run-1"),
        (f"anomaly:{3:032x}", "run-2"),
    ]


def test_the_alerts_file_can_be_placed_elsewhere_and_takes_non_finite_values(tmp_path):
    settings = settings_for(tmp_path, alert_file=str(tmp_path / "alerts" / "mine.ndjson"))

    send_alerts(settings, "run-1", anomalies=[anomaly(1, anomaly_kind="out_of_range", peak_value=float("inf"))])

    (line,) = alert_lines(settings)
    assert line["details"]["peak_value"] == "inf"
    assert line["subject"] == "[critical] out_of_range of vibration_mm_s on mch-00001 (site-02)"


def test_an_anomaly_with_an_unknown_severity_is_refused(tmp_path):
    with pytest.raises(ValueError, match=f"anomaly {1:032x}: severity 'urgent'"):
        send_alerts(settings_for(tmp_path), "run-1", anomalies=[anomaly(1, "urgent")])


# ---- SNS and an S3 lake on moto --------------------------------------------------------------------------
def test_sns_alerts_arrive_on_a_subscribed_queue(tmp_path, moto_endpoint, subscribed_queue):
    topic_arn, read_queue = subscribed_queue
    settings = settings_for(tmp_path, alert_sns_topic_arn=topic_arn, aws_endpoint_url=moto_endpoint)
    failure = {"layer": "gold", "suite": "gold__anomalies", "expectation": "anomaly_id_unique", "severity": "error"}
    rows = [anomaly(n) for n in range(1, 13)]  # more than one PublishBatch of ten

    report = send_alerts(settings, "run-1", anomalies=rows, gate_failures=[failure])

    envelopes = read_queue()
    assert report.sinks["sns"].failed == []
    assert sorted(json.loads(e["Message"])["alert_id"] for e in envelopes) == sorted(report.alerted)
    assert len(envelopes) == 13
    sent = {record["alert_id"]: record for record in report.attempted}
    for envelope in envelopes:
        record = json.loads(envelope["Message"])
        assert record == sent[record["alert_id"]]
        assert envelope["Subject"] == record["subject"]
        assert envelope["MessageAttributes"]["severity"] == {"Type": "String", "Value": "critical"}
        assert envelope["MessageAttributes"]["kind"]["Value"] == record["kind"]

    send_alerts(settings, "run-2", anomalies=rows)
    assert read_queue() == []


def test_a_missing_sns_topic_is_reported_and_the_alert_goes_out_once_it_exists(tmp_path, moto_endpoint, aws_env):
    name = f"later-{uuid.uuid4().hex[:8]}"
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:{name}"
    settings = settings_for(
        tmp_path, alert_sns_topic_arn=topic_arn, aws_endpoint_url=moto_endpoint, alert_webhook_retries=0
    )

    first = send_alerts(settings, "run-1", anomalies=[anomaly(1)])

    assert first.sinks["sns"].failed == [f"anomaly:{1:032x}"]
    assert topic_arn in first.sinks["sns"].errors[0]
    assert first.sinks["file"].delivered == [f"anomaly:{1:032x}"]
    assert first.pending == [f"anomaly:{1:032x}"]

    sns, sqs = aws_client("sns", moto_endpoint), aws_client("sqs", moto_endpoint)
    assert sns.create_topic(Name=name)["TopicArn"] == topic_arn
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    second = send_alerts(settings, "run-2", anomalies=[anomaly(1)])

    assert second.alerted == [f"anomaly:{1:032x}"]
    (message,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(json.loads(message["Body"])["Message"])["alert_id"] == f"anomaly:{1:032x}"
    assert len(alert_lines(settings)) == 1


def test_on_an_s3_lake_the_alerts_file_and_state_are_written_to_the_bucket(tmp_path, moto_endpoint, aws_env):
    s3 = aws_client("s3", moto_endpoint)
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    settings = settings_for(tmp_path, lake=f"s3://{bucket}/lake", aws_endpoint_url=moto_endpoint)

    first = send_alerts(settings, "run-1", anomalies=[anomaly(1), anomaly(2)])
    second = send_alerts(settings, "run-2", anomalies=[anomaly(2), anomaly(3)])

    assert first.alerted == [f"anomaly:{1:032x}", f"anomaly:{2:032x}"]
    assert second.alerted == [f"anomaly:{3:032x}"]
    body = s3.get_object(Bucket=bucket, Key="lake/ops/alerts.ndjson")["Body"].read().decode()
    assert [json.loads(line)["alert_id"] for line in body.splitlines()] == [
        f"anomaly:{1:032x}",
        f"anomaly:{2:032x}",
        f"anomaly:{3:032x}",
    ]
    state = json.loads(s3.get_object(Bucket=bucket, Key="lake/ops/alerts_state/state.json")["Body"].read())
    assert sorted(state["alerted"]) == [f"anomaly:{n:032x}" for n in (1, 2, 3)]


# ---- Reading gold ----------------------------------------------------------------------------------------
def gold_anomaly_columns() -> list[str]:
    """The columns dbt documents for gold_anomalies, in order."""
    models = yaml.safe_load((DBT_PROJECT_DIR / "models" / "gold" / "_gold__models.yml").read_text())["models"]
    (model,) = [m for m in models if m["name"] == "gold_anomalies"]
    return [column["name"] for column in model["columns"]]


# Types as dbt-duckdb materializes gold_anomalies.
GOLD_TYPES = {
    "started_at": "timestamp",
    "ended_at": "timestamp",
    "last_ingested_at": "timestamp",
    "event_date": "date",
    "peak_value": "double",
    "score": "double",
    "reading_count": "bigint",
}


def test_alerts_read_the_columns_gold_documents_for_anomalies():
    assert list(ANOMALY_COLUMNS) == gold_anomaly_columns()


def test_new_anomalies_come_from_gold_at_or_above_the_severity_and_not_yet_alerted(tmp_path):
    settings = settings_for(tmp_path, alert_min_severity="warning")
    columns = gold_anomaly_columns()
    rows = [anomaly(1, "info"), anomaly(2, "warning"), anomaly(3, "critical")]
    settings.lake_root.warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.lake_root.warehouse)) as con:
        con.execute("create schema gold")
        con.execute(
            "create table gold.gold_anomalies ("
            + ", ".join(f"{c} {GOLD_TYPES.get(c, 'varchar')}" for c in columns)
            + ")"
        )
        con.executemany(
            f"insert into gold.gold_anomalies values ({', '.join('?' for _ in columns)})",
            [[row[c] for c in columns] for row in rows],
        )

    found = new_anomalies_from_warehouse(settings)

    assert [a["anomaly_id"] for a in found] == [f"{2:032x}", f"{3:032x}"]
    assert found[0]["started_at"] == datetime(2026, 3, 1, 10, 5, 20, tzinfo=UTC)
    assert found[0]["event_date"] == date(2026, 3, 1)
    # The read-only connection is closed: this process can open the warehouse for writing, as dbt will.
    with duckdb.connect(str(settings.lake_root.warehouse)) as con:
        con.execute("update gold.gold_anomalies set score = 1.0")

    send_alerts(settings, "run-1", anomalies=found[:1])
    assert [a["anomaly_id"] for a in new_anomalies_from_warehouse(settings)] == [f"{3:032x}"]


def test_new_anomalies_without_a_built_gold_name_the_warehouse(tmp_path):
    settings = settings_for(tmp_path)

    with pytest.raises(LakehouseError, match="warehouse.duckdb does not exist"):
        new_anomalies_from_warehouse(settings)


def test_new_anomalies_while_a_writer_holds_the_warehouse_say_so(tmp_path):
    settings = settings_for(tmp_path)
    settings.lake_root.warehouse.parent.mkdir(parents=True)

    with duckdb.connect(str(settings.lake_root.warehouse)), pytest.raises(LakehouseError, match="a writer"):
        new_anomalies_from_warehouse(settings)
