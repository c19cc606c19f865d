"""EMR Serverless for tests: moto's EMR Serverless (over HTTP) records a ``StartJobRun`` but runs nothing; this
extension runs the submitted job for real, the way the service would: the run is RUNNING while the job runs
on a thread, then SUCCESS or FAILED.

For a ``sparkSubmit`` job driver it downloads the entry point and the ``--py-files`` archive from (moto's) S3,
copies the lake prefix given as ``--lake s3://bucket/prefix`` into a local folder (Spark here has no s3a
jars), runs ``spark-submit --master local[1]`` of the downloaded files with ``--lake`` pointing at that
folder, then uploads every file the job wrote or changed back under the S3 prefix. A non-zero exit marks the
run FAILED with the end of the job's standard error as ``stateDetails``; otherwise SUCCESS.

What this proves: the package that the cycle uploads is what runs, with the arguments the cycle passes, and
the cycle reads what the job published (batch manifests, bronze). What it does not: EMR's runtime, IAM
roles, the S3 committer, networking, quotas.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


class EmrServerlessStandIn:
    def __init__(self, endpoint: str) -> None:
        import boto3

        self.s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.runs: list[subprocess.CompletedProcess] = []
        self.threads: list[threading.Thread] = []
        self._saved = None

    def install(self) -> None:
        from moto.emrserverless.models import EMRServerlessBackend

        standin, original = self, EMRServerlessBackend.start_job_run
        self._saved = original

        def start_job_run(backend, *args: Any, **kwargs: Any):
            job_run = original(backend, *args, **kwargs)
            job_run.state = "RUNNING"  # as the service: the call returns, the job runs, GetJobRun follows it

            def run() -> None:
                state, details = standin.run(job_run.job_driver or {})
                job_run.state, job_run.state_details = state, details

            thread = threading.Thread(target=run, name=f"emr-standin-{job_run.id}", daemon=True)
            standin.threads.append(thread)
            thread.start()
            return job_run

        EMRServerlessBackend.start_job_run = start_job_run

    def uninstall(self) -> None:
        from moto.emrserverless.models import EMRServerlessBackend

        if self._saved is not None:
            EMRServerlessBackend.start_job_run = self._saved
            self._saved = None

    def run(self, driver: dict[str, Any]) -> tuple[str, str | None]:
        try:
            return self._run(driver)
        except Exception as exc:  # noqa: BLE001 - the job run fails with what went wrong, as the service would
            return "FAILED", f"{type(exc).__name__}: {exc}"

    def _run(self, driver: dict[str, Any]) -> tuple[str, str | None]:
        submit = driver.get("sparkSubmit") or {}
        arguments = list(submit.get("entryPointArguments") or [])
        parameters = shlex.split(submit.get("sparkSubmitParameters") or "")
        with tempfile.TemporaryDirectory(prefix="emr-standin-") as folder:
            work = Path(folder)
            entry = self._download(submit["entryPoint"], work / "job")
            py_files = [str(self._download(parameters[i + 1], work / "job")) for i, p in enumerate(parameters)
                        if p == "--py-files"]  # fmt: skip
            lake_uri = arguments[arguments.index("--lake") + 1]
            local_lake = work / "lake"
            before = self._mirror(lake_uri, local_lake)
            arguments[arguments.index("--lake") + 1] = str(local_lake)
            env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
            env.pop("PYTHONPATH", None)  # the job finds its code in the package, as on the cluster
            spark_submit = str(Path(sys.executable).parent / "spark-submit")
            command = [spark_submit, "--master", "local[1]", "--conf", "spark.ui.enabled=false",
                       "--py-files", ",".join(py_files), str(entry), *arguments]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=work)
            self.runs.append(done)
            self._publish(local_lake, lake_uri, before)
        if done.returncode != 0:
            return "FAILED", f"Job failed, exit code {done.returncode}: {done.stderr.strip()[-1500:]}"
        return "SUCCESS", None

    def _download(self, uri: str, folder: Path) -> Path:
        bucket, key = _split(uri)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / key.rsplit("/", 1)[-1]
        target.write_bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return target

    def _mirror(self, lake_uri: str, local: Path) -> dict[str, str]:
        """Copy every object under the lake prefix into ``local``; returns relative path -> ETag."""
        bucket, prefix = _split(lake_uri.rstrip("/") + "/")
        seen = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(prefix) :]
                path = local / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                seen[relative] = _digest(path)
        local.mkdir(parents=True, exist_ok=True)
        return seen

    def _publish(self, local: Path, lake_uri: str, before: dict[str, str]) -> None:
        """Upload what the job wrote or changed (a file of the job's deleted is deleted too)."""
        bucket, prefix = _split(lake_uri.rstrip("/") + "/")
        now = {str(p.relative_to(local)): p for p in local.rglob("*") if p.is_file() and not p.name.endswith(".crc")}
        for relative, path in sorted(now.items()):
            if before.get(relative) != _digest(path):
                self.s3.put_object(Bucket=bucket, Key=prefix + relative, Body=path.read_bytes())
        for relative in sorted(set(before) - set(now)):
            self.s3.delete_object(Bucket=bucket, Key=prefix + relative)


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 - a change check, not security
