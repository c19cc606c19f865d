"""Deploy the QuickSight resources through boto3: create each one, or update it when it already exists.

Order: the Athena data source (waited for), the data sets, the analysis (waited for), the dashboard (its
new version waited for and published). QuickSight checks a definition when it builds a version; a failed
version's errors are raised with the resource they belong to. Every call has connect and read timeouts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dashboards.quicksight.definitions import QuickSightResources, Request
from lakehouse.errors import LakehouseError

Echo = Callable[[str], None]

README = "dashboards/README.md"


class DeployError(LakehouseError):
    """A QuickSight call failed or a resource ended in a failed state; the message names it and the fix."""


def quicksight_client(region: str | None = None, endpoint_url: str | None = None, timeout_s: float = 30.0, **kwargs):
    """A boto3 QuickSight client with timeouts and botocore's standard retries for throttling (built by the
    one door to AWS, lakehouse/aws.py); ``kwargs``: credentials."""
    from botocore.exceptions import NoRegionError

    from lakehouse.aws import make_client

    try:
        return make_client(
            "quicksight",
            region=region,
            endpoint_url=endpoint_url,
            connect_timeout_s=min(timeout_s, 10.0),
            read_timeout_s=timeout_s,
            max_attempts=5,
            **kwargs,
        )
    except NoRegionError as exc:
        raise DeployError(
            "no AWS region for QuickSight: pass --region (e.g. --region eu-west-1) or set AWS_REGION"
        ) from exc


def caller_account_id(region: str | None = None, timeout_s: float = 30.0, endpoint_url: str | None = None) -> str:
    """The AWS account of the credentials in use (STS GetCallerIdentity)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lakehouse.aws import make_client

    try:
        sts = make_client(
            "sts",
            region=region,
            endpoint_url=endpoint_url,
            connect_timeout_s=min(timeout_s, 10.0),
            read_timeout_s=timeout_s,
            max_attempts=3,
        )
        return sts.get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        raise DeployError(
            f"cannot find the AWS account to deploy to ({exc}); pass --account-id, or configure AWS credentials "
            f"(AWS_PROFILE, AWS_ACCESS_KEY_ID, an instance role)"
        ) from exc


@dataclass
class DeployStep:
    operation: str  # the call that succeeded, e.g. CreateDataSet or UpdateDataSet
    resource_id: str
    status: str = ""  # the resource's final status, where QuickSight reports one


@dataclass
class DeployReport:
    steps: list[DeployStep] = field(default_factory=list)
    dashboard_id: str = ""
    dashboard_version: int | None = None
    region: str = ""

    def summary(self) -> str:
        created = sum(1 for s in self.steps if s.operation.startswith("Create"))
        updated = sum(1 for s in self.steps if s.operation.startswith("Update"))
        url = f"https://{self.region}.quicksight.aws.amazon.com/sn/dashboards/{self.dashboard_id}"
        return (
            f"QuickSight: {created} resource(s) created, {updated} updated; dashboard {self.dashboard_id} "
            f"version {self.dashboard_version} published: {url}"
        )


def deploy(
    client: Any,
    resources: QuickSightResources,
    *,
    echo: Echo = print,
    wait_timeout_s: float = 300.0,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DeployReport:
    """Create or update every resource of ``resources`` with ``client`` (a boto3 QuickSight client)."""
    target = resources.target
    report = DeployReport(dashboard_id=target.dashboard_id, region=target.region)
    waiter = _Waiter(client, target.account_id, wait_timeout_s, poll_s, sleep)
    updated: set[str] = set()

    for create, update in resources.pairs():
        kind = create.operation.removeprefix("Create")
        resource_id = create.params[f"{kind}Id"]
        call, response = _create_or_update(client, create, update)
        if call is update:
            updated.add(kind)
        step = DeployStep(call.operation, resource_id)
        if kind == "DataSource":
            step.status = waiter.data_source(resource_id)
        elif kind == "Analysis":
            step.status = waiter.analysis(resource_id)
        elif kind == "Dashboard":
            version = _version_number(response, call)
            step.status = waiter.dashboard(resource_id, version)
            if call is update:
                _call(client, resources.publish_request(version))
            report.dashboard_version = version
        report.steps.append(step)
        echo(f"{call.operation} {resource_id}: ok{f' ({step.status})' if step.status else ''}")

    if target.principals and updated:
        # A create call grants the principals access; an update call cannot, so grant it separately.
        for request in resources.permission_requests():
            if request.operation.removeprefix("Update").removesuffix("Permissions") in updated:
                _call(client, request)
                echo(f"{request.operation}: ok")
    return report


def _create_or_update(client: Any, create: Request, update: Request) -> tuple[Request, dict[str, Any]]:
    from botocore.exceptions import ClientError

    try:
        return create, getattr(client, create.method)(**create.params)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceExistsException":
            raise _error(create, exc) from exc
    return update, _call(client, update)


def _call(client: Any, request: Request) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(client, request.method)(**request.params)
    except (ClientError, BotoCoreError) as exc:
        raise _error(request, exc) from exc


def _resource_id(request: Request) -> str:
    return next((str(v) for k, v in request.params.items() if k.endswith("Id") and k != "AwsAccountId"), "?")


def _error(request: Request, exc: Exception) -> DeployError:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
    fix = {
        "AccessDeniedException": f"the caller needs the IAM permissions listed in {README}",
        "UnsupportedUserEditionException": "QuickSight Enterprise edition is needed for API-managed dashboards",
        "ResourceNotFoundException": "check --account-id and --region, and that QuickSight is set up there",
        "InvalidParameterValueException": "check --glue-schema, --catalog and --athena-workgroup",
    }.get(code, f"see the message, and the IAM permissions in {README}")
    return DeployError(f"QuickSight {request.operation} of '{_resource_id(request)}' failed: {exc}. Fix: {fix}")


def _version_number(response: dict[str, Any], request: Request) -> int:
    arn = response.get("VersionArn", "")
    try:
        return int(arn.rsplit("/", 1)[-1])
    except ValueError as exc:
        raise DeployError(
            f"QuickSight {request.operation} answered without a version ARN ({response!r}); cannot publish"
        ) from exc


class _Waiter:
    """Polls a resource until QuickSight has finished building it; raises with its errors if that failed."""

    def __init__(self, client: Any, account_id: str, timeout_s: float, poll_s: float, sleep) -> None:
        self.client, self.account_id = client, account_id
        self.timeout_s, self.poll_s, self.sleep = timeout_s, poll_s, sleep

    def _until_done(self, what: str, describe: Callable[[], tuple[str, Any]]) -> str:
        deadline = time.monotonic() + self.timeout_s
        while True:
            status, errors = describe()
            if status.endswith("_FAILED"):
                raise DeployError(
                    f"QuickSight could not build {what}: {status}: {errors}. Fix the definition in "
                    f"dashboards/quicksight/definitions.py (or the Athena tables it reads) and deploy again"
                )
            if not status.endswith("_IN_PROGRESS"):
                return status
            if time.monotonic() > deadline:
                raise DeployError(
                    f"{what} is still {status} after {self.timeout_s:.0f} s; look at it in the QuickSight console"
                )
            self.sleep(self.poll_s)

    def data_source(self, data_source_id: str) -> str:
        def describe() -> tuple[str, Any]:
            source = self.client.describe_data_source(AwsAccountId=self.account_id, DataSourceId=data_source_id)
            return source["DataSource"].get("Status", ""), source["DataSource"].get("ErrorInfo")

        return self._until_done(f"data source {data_source_id}", describe)

    def analysis(self, analysis_id: str) -> str:
        def describe() -> tuple[str, Any]:
            analysis = self.client.describe_analysis(AwsAccountId=self.account_id, AnalysisId=analysis_id)
            return analysis["Analysis"].get("Status", ""), analysis["Analysis"].get("Errors")

        return self._until_done(f"analysis {analysis_id}", describe)

    def dashboard(self, dashboard_id: str, version: int) -> str:
        def describe() -> tuple[str, Any]:
            dashboard = self.client.describe_dashboard(
                AwsAccountId=self.account_id, DashboardId=dashboard_id, VersionNumber=version
            )
            built = dashboard["Dashboard"].get("Version", {})
            return built.get("Status", ""), built.get("Errors")

        return self._until_done(f"dashboard {dashboard_id} version {version}", describe)
