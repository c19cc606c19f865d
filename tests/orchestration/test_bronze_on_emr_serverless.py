"""Bronze on EMR Serverless: the cycle's bronze step packages the job, submits it with StartJobRun to moto's
EMR Serverless (over HTTP), waits for the run and reads the batch manifests it published; a failed run fails
the step with the job's own error. moto does not run jobs: tests/support/emr_standin.py runs the submitted
package with spark-submit on a local copy of the S3 lake and publishes what it wrote back to S3."""

from __future__ import annotations

import json
import socket

import boto3
import pytest

from lakehouse.config import Settings
from lakehouse.errors import StepFailed
from orchestration.emr import run_bronze_on_emr_serverless

BUCKET = "emr-lake"
ROLE = "arn:aws:iam::123456789012:role/lakehouse-bronze"
LINE = (
    '{{"device_id":"mch-{d:05d}","device_type":"machine","site_id":"site-02",'
    '"event_time":"2026-11-23T{h:02d}:00:{s:02d}.000Z","seq":{i},"vibration_mm_s":{v}}}'
)


@pytest.fixture(scope="module")
def emr(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    from tests.support.emr_standin import EmrServerlessStandIn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    patch = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }.items():
        patch.setenv(name, value)
    standin = EmrServerlessStandIn(endpoint)
    standin.install()
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    application = boto3.client("emr-serverless", endpoint_url=endpoint, region_name="us-east-1").create_application(
        name="lakehouse", releaseLabel="emr-7.5.0", type="SPARK"
    )["applicationId"]
    try:
        yield endpoint, application, s3, standin
    finally:
        standin.uninstall()
        patch.undo()
        server.stop()


def settings_for(endpoint: str, application: str, lake: str) -> Settings:
    return Settings(
        lake=lake,
        aws_endpoint_url=endpoint,
        bronze_on="emr-serverless",
        emr_serverless_application_id=application,
        emr_serverless_job_role_arn=ROLE,
        bronze_job_timeout_s=600,
    )


def test_the_bronze_step_submits_the_package_waits_and_reads_the_new_batch_manifests(emr):
    endpoint, application, s3, standin = emr
    lines = [LINE.format(d=i % 7 + 2, h=i % 24, s=i % 60, i=i, v=i / 10) for i in range(40)]
    lines.append("{not json")
    s3.put_object(Bucket=BUCKET, Key="ok/landing/readings/2026/11/23/10/a.json", Body="\n".join(lines) + "\n")
    settings = settings_for(endpoint, application, f"s3://{BUCKET}/ok")
    said: list[str] = []

    report = run_bronze_on_emr_serverless(settings, run_id="run-1", echo=said.append, poll_s=0.1)

    assert report.batch_ids == [0]
    assert (report.lines, report.bronze_rows, report.quarantine_rows) == (41, 40, 1)
    assert report.batches[0].event_dates == ["2026-11-23"]
    summary = json.loads(standin.runs[-1].stdout.strip().splitlines()[-1])
    assert "lakehouse_job.zip" in summary["code_from"], "the job ran from the uploaded package"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="ok/bronze/readings/")["Contents"]]
    assert keys and all(k.startswith("ok/bronze/readings/event_date=2026-11-23/part-b") for k in keys)
    job = boto3.client("emr-serverless", endpoint_url=endpoint, region_name="us-east-1")
    run = job.list_job_runs(applicationId=application)["jobRuns"][-1]
    driver = job.get_job_run(applicationId=application, jobRunId=run["id"])["jobRun"]["jobDriver"]["sparkSubmit"]
    assert driver["entryPointArguments"] == ["--lake", f"s3://{BUCKET}/ok"]
    assert driver["entryPoint"].startswith(f"s3://{BUCKET}/ok/_jobs/bronze/")
    assert any("SUCCESS, 1 new batch(es)" in line for line in said)


def test_a_failed_job_run_fails_the_step_with_the_jobs_error(emr):
    endpoint, application, s3, _standin = emr
    s3.put_object(Bucket=BUCKET, Key="broken/landing/readings/2026/11/23/10/a.json", Body=LINE.format(
        d=2, h=1, s=1, i=1, v=1.0) + "\n")  # fmt: skip
    # a file where the job keeps its checkpoint folder: Spark cannot start the query
    s3.put_object(Bucket=BUCKET, Key="broken/_checkpoints/bronze_readings", Body=b"not a folder")
    settings = settings_for(endpoint, application, f"s3://{BUCKET}/broken")

    with pytest.raises(StepFailed, match=r"EMR Serverless job run \w+ FAILED: Job failed, exit code \d+: .+"):
        run_bronze_on_emr_serverless(settings, run_id="run-2", echo=lambda _line: None, poll_s=0.1)
