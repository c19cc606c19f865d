"""Bronze on the cluster: the packaged job (``lakehouse bronze package``) submitted to EMR Serverless.

``run_bronze_on_emr_serverless(settings)``:

1. builds the job package (``lakehouse_job.zip`` + ``bronze_job.py``) and uploads it under
   ``<lake>/_jobs/bronze/<digest>/`` (the digest of the zip: a code change is a new folder, a re-run reuses it);
2. notes the batch manifests already in ``<lake>/_manifests/bronze_readings/``;
3. ``StartJobRun`` on ``emr_serverless_application_id`` with ``emr_serverless_job_role_arn``
   (``spark-submit --py-files <zip> bronze_job.py --lake <lake>``);
4. waits for the run (``GetJobRun``) at most ``bronze_job_timeout_s``; past it, cancels the run and fails;
5. a run that ends FAILED or CANCELLED fails the step with the job's own ``stateDetails``;
6. reads the manifests the run added: the step's batches, lines, bronze and quarantine rows, as a local run
   reports them.

Every AWS call goes through lakehouse/aws.py (timeouts, bounded retries); a call that still fails raises
:class:`lakehouse.aws.AwsCallFailed` naming the service, operation and error, which the cycle records.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lakehouse.config import Settings
from lakehouse.errors import StepFailed

MANIFEST_JOB = "bronze_readings"
_DONE = ("SUCCESS", "FAILED", "CANCELLED")


def upload_job_package(settings: Settings) -> tuple[str, str]:
    """Build the job package and put it in the lake; returns the S3 URIs of the entry script and the zip."""
    from lakehouse.storage import storage_for
    from spark.package import build_job_package

    with tempfile.TemporaryDirectory(prefix="lakehouse-job-") as folder:
        archive, entry = build_job_package(Path(folder))
        zipped, script = archive.read_bytes(), entry.read_bytes()
    digest = hashlib.sha256(zipped + script).hexdigest()[:16]
    base = settings.lake_root.uri("_jobs", "bronze", digest)
    storage = storage_for(base, settings)
    entry_uri, zip_uri = f"{base}/{entry.name}", f"{base}/{archive.name}"
    storage.write_bytes(zip_uri, zipped)
    storage.write_bytes(entry_uri, script)
    return entry_uri, zip_uri


def job_driver(settings: Settings, entry_uri: str, zip_uri: str) -> dict[str, Any]:
    return {
        "sparkSubmit": {
            "entryPoint": entry_uri,
            "entryPointArguments": ["--lake", settings.lake],
            "sparkSubmitParameters": f"--py-files {zip_uri}",
        }
    }


def manifest_ids(settings: Settings) -> set[str]:
    from lakehouse.storage import storage_for

    folder = settings.lake_root.manifests(MANIFEST_JOB)
    return set(storage_for(folder, settings).list(folder, suffix=".json"))


def run_bronze_on_emr_serverless(
    settings: Settings,
    *,
    run_id: str,
    echo: Callable[[str], None] = print,
    client: Any = None,
    poll_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:  # -> spark.bronze_job.BronzeReport
    from botocore.exceptions import BotoCoreError, ClientError

    from lakehouse import aws
    from lakehouse.storage import storage_for
    from spark.bronze_job import BatchManifest, BronzeReport

    aws.require_emr_serverless(settings)
    started = time.monotonic()
    before = manifest_ids(settings)
    entry_uri, zip_uri = upload_job_package(settings)
    emr = client or aws.client(settings, "emr-serverless")
    application = settings.emr_serverless_application_id
    operation = "StartJobRun"
    try:
        job_run_id = emr.start_job_run(
            applicationId=application,
            executionRoleArn=settings.emr_serverless_job_role_arn,
            name=f"lakehouse-bronze-{run_id}",
            clientToken=f"lakehouse-bronze-{run_id}",
            jobDriver=job_driver(settings, entry_uri, zip_uri),
            executionTimeoutMinutes=max(5, int(settings.bronze_job_timeout_s // 60) + 1),
        )["jobRunId"]
        echo(f"bronze: EMR Serverless job run {job_run_id} started on application {application}")
        operation = "GetJobRun"
        deadline = time.monotonic() + settings.bronze_job_timeout_s
        while True:
            job = emr.get_job_run(applicationId=application, jobRunId=job_run_id)["jobRun"]
            state = job["state"]
            if state in _DONE:
                break
            if time.monotonic() > deadline:
                operation = "CancelJobRun"
                emr.cancel_job_run(applicationId=application, jobRunId=job_run_id)
                raise StepFailed(
                    f"EMR Serverless job run {job_run_id} still {state} after {settings.bronze_job_timeout_s:.0f} s; "
                    f"cancelled it. Raise bronze_job_timeout_s or give the application more capacity"
                )
            sleep(poll_s)
    except (ClientError, BotoCoreError) as exc:
        raise aws.aws_call_error(exc, "emr-serverless", operation) from exc
    if state != "SUCCESS":
        details = job.get("stateDetails") or "no details given"
        raise StepFailed(
            f"EMR Serverless job run {job_run_id} {state}: {details} (logs: the application's monitoring "
            f"configuration, or `aws emr-serverless get-dashboard-for-job-run --application-id {application} "
            f"--job-run-id {job_run_id}`)"
        )
    storage = storage_for(settings.lake_root.manifests(MANIFEST_JOB), settings)
    batches = []
    for uri in sorted(manifest_ids(settings) - before):
        data = json.loads(storage.read_bytes(uri))
        known = set(BatchManifest.__dataclass_fields__)
        batches.append(BatchManifest(**{k: v for k, v in data.items() if k in known}))
    batches.sort(key=lambda b: b.batch_id)
    echo(f"bronze: job run {job_run_id} SUCCESS, {len(batches)} new batch(es)")
    return BronzeReport(batches=batches, seconds=time.monotonic() - started)
