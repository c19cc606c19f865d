"""One typed settings object, built once from defaults, a config file and the environment.

Precedence, lowest to highest: the defaults below, ``lakehouse.toml`` (in the working directory, or the
file named by ``LAKEHOUSE_CONFIG``), environment variables ``LAKEHOUSE_<FIELD>``, then command-line flags.
Only this module reads the environment; everything else receives a :class:`Settings`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.lake import Lake

REPO_ROOT = Path(__file__).resolve().parent.parent


def _dbt_project_dir() -> Path:
    """The dbt project: the checkout's ``dbt_project/`` (where analysts work), or the copy an installed wheel
    carries as package data (``lakehouse/dbt_project`` in site-packages)."""
    checkout = REPO_ROOT / "dbt_project"
    if (checkout / "dbt_project.yml").exists():
        return checkout
    return Path(__file__).resolve().parent / "dbt_project"


DBT_PROJECT_DIR = _dbt_project_dir()
# The user's own cache folder for what the lakehouse writes outside a lake and a checkout.
USER_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lakehouse"


def _dbt_artifacts_dir() -> Path:
    """Where dbt writes target/ and logs/: LAKEHOUSE_DBT_ARTIFACTS_DIR if set (two processes that run dbt
    at once, such as the test run's workers, each need their own); else beside the project in a checkout
    (as `dbt run` there does), and in the user's cache for an installed wheel, whose site-packages may be
    read-only and is shared by every user."""
    if os.environ.get("LAKEHOUSE_DBT_ARTIFACTS_DIR"):
        return Path(os.environ["LAKEHOUSE_DBT_ARTIFACTS_DIR"]).resolve()
    return DBT_PROJECT_DIR if DBT_PROJECT_DIR.parent == REPO_ROOT else USER_CACHE_DIR / "dbt"


DBT_ARTIFACTS_DIR = _dbt_artifacts_dir()
# Which readings of a consenting customer the STEDI curation keeps (dbt var `consent_policy`).
CONSENT_POLICIES = ("since_consent", "any_time")
# Where the bronze step runs (Settings.bronze_on).
BRONZE_ON = ("local", "emr-serverless")


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the setting and the fix."""


@dataclass(frozen=True)
class Settings:
    # Where the lake lives: a local folder or s3://bucket/prefix. Everything else is derived from it.
    lake: str = "./lake"
    # dbt target: "local" (DuckDB file in the lake) or "athena".
    dbt_target: str = "local"
    # Spark master for the bronze job; "local[2]" uses both cores of a laptop.
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"
    # Bronze: how much landing data one micro-batch takes (None = all that is there).
    max_files_per_trigger: int | None = None
    # Bronze: Parquet files written per event date and batch. 0: one per read task holding rows of that
    # date, no shuffle (fastest; `lakehouse bronze compact` merges small files later); N > 0: at most about
    # N, at the price of a shuffle of every row.
    bronze_files_per_partition: int = 0
    # Gates: a share of quarantined lines above this fails the bronze gate.
    max_quarantine_share: float = 0.05
    # Gates and silver: readings further than this in the future are clock skew.
    future_tolerance_s: int = 300
    # Where the gates' severities and thresholds live.
    gates_config: str = str(REPO_ROOT / "expectations" / "gates.toml")
    # Alerts: new anomalies at or above this severity (info < warning < critical) and failed gates go to
    # every configured sink; the alerts file is always written (default <lake>/ops/alerts.ndjson).
    alert_min_severity: str = "critical"
    alert_webhook_url: str | None = None
    alert_webhook_timeout_s: float = 10.0
    alert_webhook_retries: int = 3
    alert_sns_topic_arn: str | None = None
    alert_file: str | None = None
    # AWS endpoint override (a local moto server, a VPC endpoint); None uses the AWS default.
    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    # Every AWS call (lakehouse/aws.py): connect and read timeouts, and botocore's standard retries with
    # at most this many attempts in all (throttling, 5xx and connection errors are retried with backoff).
    aws_connect_timeout_s: float = 10.0
    aws_read_timeout_s: float = 60.0
    aws_max_attempts: int = 5
    # Athena (dbt target `athena`, its gates, `lakehouse athena init`). dbt reads them through the
    # environment that orchestration sets from these fields (dbt_project/profiles.yml).
    athena_work_group: str | None = None
    athena_results_uri: str | None = None  # s3:// folder for query results (the profile's s3_staging_dir)
    athena_data_uri: str | None = None  # s3:// folder dbt writes tables to (s3_data_dir); not under the results
    athena_schema: str = "lakehouse"  # base Glue database name: <schema>_bronze, <schema>_silver, ...
    athena_query_timeout_s: float = 600.0  # how long one Athena query may run before the step fails
    # Where the bronze step runs: "local" (Spark in this process) or "emr-serverless" (the packaged job
    # submitted to an EMR Serverless application with StartJobRun, waited for up to bronze_job_timeout_s).
    bronze_on: str = "local"
    emr_serverless_application_id: str | None = None
    emr_serverless_job_role_arn: str | None = None
    bronze_job_timeout_s: float = 3600.0
    # The streams `lakehouse produce --sink kinesis|firehose` send to when no --stream is given.
    kinesis_stream: str | None = None
    firehose_stream: str | None = None
    # STEDI curation (dbt models/trusted and models/curated): which readings of a customer who agreed to
    # share data for research may be used: "since_consent" (default; readings at or after the consent
    # time) or "any_time" (all readings of a consenting customer).
    consent_policy: str = "since_consent"
    # Salt of the customer key hashed into curated tables (sha256 of salt + lower(email)). Keep it out of
    # the repository: set LAKEHOUSE_PII_SALT (e.g. from a secrets manager). dbt reads it from a private
    # temporary file at query time, so it never appears in SQL, dbt's artifacts or logs
    # (orchestration.transform.pii_salt_file). Unset on a local lake: the first transform writes a random
    # one to <lake>/_secrets/pii_salt. Target athena: the models read the Glue table
    # <schema>_secrets.pii_salt instead. Never printed (repr=False).
    pii_salt: str | None = field(default=None, repr=False)
    # MQTT (`lakehouse ingest mqtt`, `produce --sink mqtt`): the broker as HOST:PORT, the topic filter
    # readings arrive on (a `+` after `devices` is the device id, after `sites` the site id), the bridge's
    # client id (its persistent session on the broker: keep it stable across restarts), MQTT version
    # "5" or "3.1.1", and how to authenticate: username/password and/or TLS (CA file, client certificate).
    mqtt_broker: str | None = None
    mqtt_topic: str = "sites/+/devices/+/readings"
    mqtt_client_id: str = "lakehouse-bridge"
    mqtt_protocol: str = "5"
    mqtt_username: str | None = None
    mqtt_password: str | None = field(default=None, repr=False)
    mqtt_tls: str | None = None  # "on" to use TLS with the system's CAs; implied by mqtt_ca_certs
    mqtt_ca_certs: str | None = None
    mqtt_certfile: str | None = None
    mqtt_keyfile: str | None = None
    config_file: str | None = field(default=None, compare=False)

    @property
    def lake_root(self) -> Lake:
        return Lake(self.lake)

    def with_overrides(self, **overrides: Any) -> Settings:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown setting(s) {sorted(unknown)}; known settings: {sorted(known)}")
        values = {k: v for k, v in overrides.items() if v is not None}
        return _validated(dataclasses.replace(self, **values))

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        **overrides: Any,
    ) -> Settings:
        env = os.environ if env is None else env
        cwd = Path.cwd() if cwd is None else cwd
        values: dict[str, Any] = {}
        config_path = Path(env["LAKEHOUSE_CONFIG"]) if "LAKEHOUSE_CONFIG" in env else cwd / "lakehouse.toml"
        if config_path.exists():
            values.update(_read_config_file(config_path))
            values["config_file"] = str(config_path)
        elif "LAKEHOUSE_CONFIG" in env:
            raise ConfigError(f"LAKEHOUSE_CONFIG={config_path} does not exist; create it or unset the variable")
        for f in dataclasses.fields(cls):
            name = f"LAKEHOUSE_{f.name.upper()}"
            if name in env and f.name != "config_file":
                values[f.name] = _coerce(f, env[name], source=f"environment variable {name}")
        settings = cls(**values)
        return settings.with_overrides(**overrides)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    section = data.get("lakehouse", data)
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values = {}
    for key, value in section.items():
        if key not in fields:
            raise ConfigError(f"{path}: unknown setting '{key}'; known settings: {sorted(fields)}")
        values[key] = _coerce(fields[key], value, source=f"{path} setting '{key}'")
    return values


def _coerce(f: dataclasses.Field, raw: Any, source: str) -> Any:
    kind = str(f.type)
    try:
        if raw is None or raw == "":
            return None if "None" in kind else f.default
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        return str(raw)
    except ValueError as exc:
        raise ConfigError(f"{source}: {raw!r} is not a valid {kind}") from exc


def _validated(settings: Settings) -> Settings:
    if settings.dbt_target not in ("local", "athena"):
        raise ConfigError(f"dbt_target '{settings.dbt_target}' is not one of: local, athena")
    if settings.alert_min_severity not in ("info", "warning", "critical"):
        raise ConfigError(f"alert_min_severity '{settings.alert_min_severity}' is not one of: info, warning, critical")
    if settings.consent_policy not in CONSENT_POLICIES:
        raise ConfigError(
            f"consent_policy '{settings.consent_policy}' is not one of: {', '.join(CONSENT_POLICIES)} "
            f"(set LAKEHOUSE_CONSENT_POLICY or consent_policy in lakehouse.toml)"
        )
    if settings.mqtt_protocol not in ("5", "3.1.1"):
        raise ConfigError(
            f"mqtt_protocol '{settings.mqtt_protocol}' is not one of: 5, 3.1.1 (set LAKEHOUSE_MQTT_PROTOCOL, "
            f"mqtt_protocol in lakehouse.toml, or --protocol)"
        )
    if settings.bronze_on not in BRONZE_ON:
        raise ConfigError(
            f"bronze_on '{settings.bronze_on}' is not one of: {', '.join(BRONZE_ON)} "
            f"(set LAKEHOUSE_BRONZE_ON, bronze_on in lakehouse.toml or --bronze-on)"
        )
    if settings.aws_max_attempts < 1:
        raise ConfigError(f"aws_max_attempts {settings.aws_max_attempts} must be at least 1 (the first attempt)")
    if not 0 <= settings.max_quarantine_share <= 1:
        raise ConfigError(f"max_quarantine_share {settings.max_quarantine_share} must be between 0 and 1")
    Lake(settings.lake)  # raises on a lake URI we cannot use
    return settings
