"""The one door to AWS: every boto3 client and every S3 storage is built here, from :class:`Settings`.

Region, endpoint (a VPC endpoint, or a moto server in tests), botocore's *standard* retry mode with a
bounded number of attempts (it retries throttling, 5xx answers and connection errors with backoff), and
connect and read timeouts all come from the settings, so that no call to AWS can hang or retry for ever
and every service is reached the same way:

    aws_region, aws_endpoint_url, aws_connect_timeout_s, aws_read_timeout_s, aws_max_attempts

:func:`aws_call_error` turns what botocore raises once its retries are spent into a
:class:`AwsCallFailed` naming the service, the operation and the error, which the cycle records as the
step's failure.
"""

from __future__ import annotations

from typing import Any

from lakehouse.config import ConfigError, Settings
from lakehouse.errors import StepFailed

# The Athena settings without which the `athena` target cannot start, and how to set each.
ATHENA_REQUIRED = ("athena_work_group", "athena_results_uri", "athena_data_uri")


class AwsCallFailed(StepFailed):
    """An AWS call failed after botocore's retries; the message names the service, operation and error."""

    def __init__(self, service: str, operation: str, error: str) -> None:
        self.service, self.operation, self.error = service, operation, error
        super().__init__(f"AWS {service} {operation} failed: {error}")


def botocore_config(*, region: str | None, connect_timeout_s: float, read_timeout_s: float, max_attempts: int) -> Any:
    """Timeouts and standard retries with ``max_attempts`` attempts in all (the first one included)."""
    from botocore.config import Config

    return Config(
        region_name=region,
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
    )


def settings_config(settings: Settings, *, read_timeout_s: float | None = None) -> Any:
    """:func:`botocore_config` from the settings (for libraries that take a botocore Config, e.g. PyAthena)."""
    return botocore_config(
        region=settings.aws_region,
        connect_timeout_s=settings.aws_connect_timeout_s,
        read_timeout_s=read_timeout_s if read_timeout_s is not None else settings.aws_read_timeout_s,
        max_attempts=settings.aws_max_attempts,
    )


def make_client(
    service: str,
    *,
    region: str | None,
    endpoint_url: str | None,
    connect_timeout_s: float,
    read_timeout_s: float,
    max_attempts: int,
    **credentials: Any,
) -> Any:
    """A boto3 client with explicit timeouts and bounded standard retries: the only place one is built.

    ``region`` None: botocore's own resolution (AWS_REGION, the profile). Credentials: the usual AWS chain
    (environment, profile, instance or task role) unless given."""
    import boto3

    return boto3.session.Session().client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=botocore_config(
            region=region, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s, max_attempts=max_attempts
        ),
        **credentials,
    )


def client(settings: Settings, service: str, *, read_timeout_s: float | None = None) -> Any:
    """A boto3 client of ``service`` on the settings' region and endpoint, with their timeouts and retries."""
    return make_client(
        service,
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        connect_timeout_s=settings.aws_connect_timeout_s,
        read_timeout_s=read_timeout_s if read_timeout_s is not None else settings.aws_read_timeout_s,
        max_attempts=settings.aws_max_attempts,
    )


def s3_storage(settings: Settings) -> Any:  # -> lakehouse.storage.S3Storage
    from lakehouse.storage import S3Storage

    return S3Storage(client(settings, "s3"))


def aws_call_error(exc: BaseException, service: str, operation: str | None = None) -> AwsCallFailed:
    """What botocore raised, as an :class:`AwsCallFailed` (service, operation, error code and message)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = operation or getattr(exc, "operation_name", None) or "call"
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts")
        tried = f" (after {attempts + 1} attempts)" if attempts else ""
        return AwsCallFailed(service, operation, f"{error.get('Code', 'Error')}: {error.get('Message', exc)}{tried}")
    if isinstance(exc, BotoCoreError):
        return AwsCallFailed(service, operation or "call", f"{type(exc).__name__}: {exc}")
    return AwsCallFailed(service, operation or "call", f"{type(exc).__name__}: {exc}")


def require_athena(settings: Settings) -> None:
    """Fail at start, naming each setting the `athena` target lacks and how to set it."""
    missing = [name for name in ATHENA_REQUIRED if not getattr(settings, name)]
    if missing:
        how = "; ".join(
            f'{name} (env LAKEHOUSE_{name.upper()}, or {name} = "..." in lakehouse.toml)' for name in missing
        )
        raise ConfigError(
            f"the athena target needs {', '.join(missing)}: set {how}. athena_work_group is the Athena work "
            f"group (e.g. primary), athena_results_uri an s3:// folder for query results, athena_data_uri "
            f"the s3:// folder dbt writes tables to (not under the results folder)"
        )
    for name in ("athena_results_uri", "athena_data_uri"):
        if not str(getattr(settings, name)).startswith("s3://"):
            raise ConfigError(f"{name} {getattr(settings, name)!r} must be an s3:// URI (s3://bucket/prefix/)")
    results = settings.athena_results_uri.rstrip("/") + "/"
    data = settings.athena_data_uri.rstrip("/") + "/"
    if data.startswith(results) or results.startswith(data):
        raise ConfigError(
            f"athena_data_uri {settings.athena_data_uri} and athena_results_uri {settings.athena_results_uri} "
            f"overlap; tables must not live under the query results (a results lifecycle rule would delete them): "
            f"use separate folders, e.g. s3://bucket/athena-results/ and s3://bucket/warehouse/"
        )


def require_emr_serverless(settings: Settings) -> None:
    """Fail at start when bronze is to run on EMR Serverless without an application, a role or an S3 lake."""
    missing = [
        name for name in ("emr_serverless_application_id", "emr_serverless_job_role_arn") if not getattr(settings, name)
    ]
    if missing:
        how = "; ".join(f"{name} (env LAKEHOUSE_{name.upper()} or {name} in lakehouse.toml)" for name in missing)
        raise ConfigError(f"bronze_on = emr-serverless needs {', '.join(missing)}: set {how}")
    if settings.lake_root.is_local:
        raise ConfigError(
            f"bronze_on = emr-serverless runs the job on AWS, which cannot read the local lake {settings.lake}; "
            f"pass --lake s3://bucket/prefix (or --bronze-on local)"
        )
