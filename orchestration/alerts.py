"""Alerts: new anomalies at or above a severity, and failed gates, sent to the configured sinks.

Sinks, chosen by settings: the alerts file (always; ``alert_file``, default ``<lake>/ops/alerts.ndjson``,
one JSON line per alert), an HTTP webhook (``alert_webhook_url``: one JSON POST per batch of alerts, with
a timeout, retries with backoff, and an idempotency key) and an AWS SNS topic (``alert_sns_topic_arn``:
one message per alert, published in batches of ten). Every sink receives the same alert record::

    {"alert_id": "anomaly:<anomaly_id>" | "gate:<run_id>:<layer>:<suite>:<expectation>",
     "kind": "anomaly" | "gate_failure", "severity": "info" | "warning" | "critical",
     "subject": "...", "message": "...", "run_id": "...", "created_at": "...Z", "details": {...}}

Each alert is sent once. The state file ``<lake>/ops/alerts_state/state.json`` (written atomically
through :mod:`lakehouse.storage`) remembers, per alert id, which sinks have it. An alert counts as alerted
only when every configured sink has it; until then it stays pending (with its record) and every later call
sends it again, to the sinks that do not have it yet. A sink that still fails after its retries is
reported in :class:`AlertReport`, never raised.

The de-duplication key of an anomaly is gold's ``anomaly_id``, a hash of device, metric, kind and
``started_at`` (``dbt_project/macros/gold/anomaly_windows.sql``): a window that grows forward in a later
cycle keeps its id and does not alert again; a late reading that moves a window's start earlier gives the
window a new id, and that alerts once more. A gate failure alerts once per run id and expectation.

Rate limit: a cycle over a new fleet's first history (or a device gone wrong) must not flood the sinks.
Of the new anomaly alerts of one call, each device sends at most ``max_per_device`` (default
:data:`ALERTS_PER_DEVICE`): its most severe, then earliest. The others are *held back*: remembered as
alerted (so no later cycle sends them either) and counted in one summary alert of the call
(``alert_id`` ``summary:<run_id>``), which says how many were held back, for which devices, and where
to see them all (gold.gold_anomalies). Gate failures are not rate-limited.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import urlparse

from lakehouse.config import ConfigError, Settings
from lakehouse.errors import LakehouseError
from lakehouse.storage import Storage, storage_for
from lakehouse.warehouse import GOLD_ANOMALIES

SEVERITIES = ("info", "warning", "critical")  # ascending
# Gates speak of "error" (the gate fails) and "warning"; alerts of info / warning / critical.
GATE_SEVERITY = {"error": "critical", "warning": "warning"}

# The anomaly columns as the model documents them (lakehouse/warehouse.py), in the model's order.
ANOMALY_COLUMNS = GOLD_ANOMALIES.columns()
ANOMALIES_TABLE = GOLD_ANOMALIES.relation

STATE_FILE = "state.json"
STATE_VERSION = 1

WEBHOOK_BATCH_SIZE = 100  # alerts per POST
WEBHOOK_BACKOFF_S = 0.25  # before the first retry; doubles per retry
WEBHOOK_MAX_BACKOFF_S = 5.0  # also the most a receiver's Retry-After can make us wait
SNS_BATCH_SIZE = 10  # the most PublishBatch takes
SNS_SUBJECT_MAX = 100  # SNS subjects: at most 100 printable ASCII characters, no line breaks
ALERTS_PER_DEVICE = 3  # new anomaly alerts a device sends per call; the rest are held back and summarised


# ---- What a call reports ---------------------------------------------------------------------------------
@dataclass
class SinkReport:
    sink: str  # "file", "webhook" or "sns"
    delivered: list[str] = field(default_factory=list)  # alert ids this sink accepted in this call
    failed: list[str] = field(default_factory=list)  # alert ids it still does not have after its retries
    errors: list[str] = field(default_factory=list)  # what went wrong, one line per failed attempt group


@dataclass
class AlertReport:
    run_id: str
    attempted: list[dict[str, Any]] = field(default_factory=list)  # records sent (new, and retried pending)
    already_alerted: list[str] = field(default_factory=list)  # alert ids skipped: alerted in an earlier call
    below_severity: int = 0  # anomalies and gate failures under alert_min_severity, not sent
    held_back: dict[str, list[str]] = field(default_factory=dict)  # device -> alert ids over its rate limit
    sinks: dict[str, SinkReport] = field(default_factory=dict)
    alerted: list[str] = field(default_factory=list)  # alert ids that every configured sink now has
    pending: list[str] = field(default_factory=list)  # alert ids some sink still lacks: sent again next call

    @property
    def success(self) -> bool:
        return not self.pending

    def summary(self) -> str:
        parts = [f"alerts: {len(self.alerted)} sent"]
        if self.already_alerted:
            parts.append(f"{len(self.already_alerted)} already sent earlier")
        if self.below_severity:
            parts.append(f"{self.below_severity} below severity")
        if self.held_back:
            held = sum(len(ids) for ids in self.held_back.values())
            parts.append(f"{held} held back by the per-device rate limit ({len(self.held_back)} device(s), summarised)")
        for sink in self.sinks.values():
            if sink.failed:
                parts.append(f"{sink.sink} failed for {len(sink.failed)} ({'; '.join(sink.errors)})")
        if self.pending:
            parts.append(f"{len(self.pending)} pending, retried next cycle")
        return ", ".join(parts)


# ---- The entry points ------------------------------------------------------------------------------------
def send_alerts(
    settings: Settings,
    run_id: str,
    *,
    anomalies: list[dict] | None = None,
    gate_failures: list[dict] | None = None,
    max_per_device: int = ALERTS_PER_DEVICE,
) -> AlertReport:
    """Send new anomalies (at or above ``alert_min_severity``) and gate failures to every configured sink.

    Alerts sent in an earlier call are skipped; alerts that some sink failed to take earlier are sent
    again (to that sink only). At most ``max_per_device`` new anomaly alerts per device are sent, the
    others held back and summarised in one alert (see the module docstring). Sink failures are reported,
    not raised; an unreadable state file raises :class:`LakehouseError` (sending without it could repeat
    every alert).
    """
    if max_per_device < 1:
        raise ValueError(f"max_per_device {max_per_device}: a device must be able to send at least one alert")
    report = AlertReport(run_id=run_id)
    now = datetime.now(UTC)
    candidates: list[dict[str, Any]] = []
    for records, below in (
        anomaly_alerts(anomalies or [], settings.alert_min_severity, run_id, now),
        gate_failure_alerts(gate_failures or [], settings.alert_min_severity, run_id, now),
    ):
        candidates += records
        report.below_severity += below

    uri = state_uri(settings)
    state_storage = _storage(settings, uri)
    state = _load_state(state_storage, uri)
    alerts: dict[str, dict[str, Any]] = {}
    for record in candidates:
        if record["alert_id"] in state["alerted"]:
            if record["alert_id"] not in report.already_alerted:
                report.already_alerted.append(record["alert_id"])
        else:
            alerts[record["alert_id"]] = record  # a fresh record supersedes a pending one
    fresh = [r for r in alerts.values() if r["alert_id"] not in state["pending"]]
    kept, report.held_back = rate_limited(fresh, max_per_device)
    stamp = _iso(now)
    for ids in report.held_back.values():
        for alert_id in ids:
            alerts.pop(alert_id)
            state["alerted"][alert_id] = stamp  # covered by the summary: never sent one by one
    if report.held_back:
        summary = held_back_summary(report.held_back, kept, run_id, now, max_per_device)
        alerts[summary["alert_id"]] = summary
    for alert_id, pending in state["pending"].items():
        record = pending["record"]
        if alert_id not in alerts and _rank(record["severity"]) >= _rank(settings.alert_min_severity):
            alerts[alert_id] = record
    report.attempted = list(alerts.values())
    if not alerts:
        if report.held_back:
            _save_state(state_storage, uri, state)
        return report

    sinks = _configured_sinks(settings)
    delivered_to = {alert_id: set(state["pending"].get(alert_id, {}).get("sinks", {})) for alert_id in alerts}
    for sink in sinks:
        todo = [record for alert_id, record in alerts.items() if sink.name not in delivered_to[alert_id]]
        sink_report = SinkReport(sink.name)
        report.sinks[sink.name] = sink_report
        if not todo:
            continue
        result = sink.deliver(todo, run_id)
        sink_report.delivered, sink_report.failed, sink_report.errors = result.delivered, result.failed, result.errors
        for alert_id in result.delivered:
            delivered_to[alert_id].add(sink.name)

    configured = {sink.name for sink in sinks}
    for alert_id, record in alerts.items():
        if configured <= delivered_to[alert_id]:
            state["alerted"][alert_id] = stamp
            state["pending"].pop(alert_id, None)
            report.alerted.append(alert_id)
        else:
            previous = state["pending"].get(alert_id, {}).get("sinks", {})
            state["pending"][alert_id] = {
                "record": record,
                "sinks": {name: previous.get(name, stamp) for name in sorted(delivered_to[alert_id])},
                "last_attempt_at": stamp,
            }
            report.pending.append(alert_id)
    _save_state(state_storage, uri, state)
    return report


def new_anomalies_from_warehouse(settings: Settings) -> list[dict]:
    """Anomalies of ``gold.gold_anomalies`` at or above ``alert_min_severity`` that were not alerted yet.

    Opens the local DuckDB warehouse read-only and closes it at once (dbt needs the writer lock next).
    Timestamps come back as timezone-aware UTC datetimes.
    """
    import duckdb

    if settings.dbt_target != "local":
        raise LakehouseError(
            f"dbt_target '{settings.dbt_target}': gold_anomalies lives in Athena, and this reads the local "
            f"DuckDB warehouse only; query Athena for the anomalies and pass them to send_alerts(anomalies=...)"
        )
    lake = settings.lake_root
    if not lake.is_local:
        raise LakehouseError(
            f"lake {lake.root} is not a local folder, so it has no DuckDB warehouse; with an s3:// lake use "
            f"dbt_target 'athena' and pass the anomalies to send_alerts(anomalies=...)"
        )
    path = lake.warehouse
    if not path.exists():
        raise LakehouseError(f"{path} does not exist: gold has not been built on this lake; run a cycle first")
    severities = [s for s in SEVERITIES if _rank(s) >= _rank(settings.alert_min_severity)]
    sql = (
        f"select {', '.join(ANOMALY_COLUMNS)} from {ANOMALIES_TABLE} "
        f"where anomaly_id is not null and severity in ({', '.join('?' for _ in severities)}) "
        f"order by started_at, anomaly_id"
    )
    try:
        con = duckdb.connect(str(path), read_only=True)
    except (duckdb.IOException, duckdb.ConnectionException) as exc:  # another process / connection writes
        raise LakehouseError(
            f"cannot open {path} read-only: {exc}; a writer (dbt?) holds the warehouse, read the anomalies "
            f"after it has finished"
        ) from exc
    try:
        rows = con.execute(sql, severities).fetchall()
    except duckdb.CatalogException as exc:
        raise LakehouseError(
            f"{path} has no table {ANOMALIES_TABLE} ({exc}); build gold first (`lakehouse transform`)"
        ) from exc
    finally:
        con.close()
    uri = state_uri(settings)
    alerted = _load_state(_storage(settings, uri), uri)["alerted"]
    anomalies = [{name: _utc(value) for name, value in zip(ANOMALY_COLUMNS, row, strict=True)} for row in rows]
    return [a for a in anomalies if _anomaly_alert_id(a) not in alerted]


def gate_failures(gate: Any) -> list[dict]:
    """The failed outcomes of an ``expectations`` GateResult, as ``send_alerts(gate_failures=...)`` takes them."""
    return [
        {
            "layer": gate.layer,
            "suite": outcome.suite,
            "expectation": outcome.expectation,
            "severity": outcome.severity,
            "unexpected_count": outcome.unexpected_count,
            "unexpected_percent": outcome.unexpected_percent,
            "partition": outcome.partition,
            "column": outcome.column,
            "note": outcome.note,
            "observed_value": outcome.observed_value,
        }
        for outcome in gate.results
        if not outcome.success
    ]


# ---- Records in, records out -----------------------------------------------------------------------------
def rate_limited(
    records: Iterable[dict[str, Any]], max_per_device: int
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The anomaly alert records to send (at most ``max_per_device`` per device: the most severe, then the
    earliest) and, per device, the ids of those held back. Other kinds of record are all kept."""
    by_device: dict[str, list[dict[str, Any]]] = {}
    kept: list[dict[str, Any]] = []
    for record in records:
        if record["kind"] != "anomaly":
            kept.append(record)
            continue
        by_device.setdefault(str(record["details"].get("device_id")), []).append(record)
    held: dict[str, list[str]] = {}
    for device_id, group in by_device.items():
        group.sort(key=lambda r: (-_rank(r["severity"]), str(r["details"].get("started_at")), r["alert_id"]))
        kept += group[:max_per_device]
        if len(group) > max_per_device:
            held[device_id] = [r["alert_id"] for r in group[max_per_device:]]
    return kept, held


def held_back_summary(
    held_back: dict[str, list[str]], sent: list[dict[str, Any]], run_id: str, now: datetime, max_per_device: int
) -> dict[str, Any]:
    """The one alert of a call that says how many anomaly alerts the rate limit held back, and whose."""
    total = sum(len(ids) for ids in held_back.values())
    sent_anomalies = sum(1 for r in sent if r["kind"] == "anomaly")
    worst = sorted(held_back.items(), key=lambda item: (-len(item[1]), item[0]))
    shown = ", ".join(f"{device_id} {len(ids)}" for device_id, ids in worst[:10])
    more = f" and {len(worst) - 10} more device(s)" if len(worst) > 10 else ""
    return {
        "alert_id": f"summary:{run_id}",
        "kind": "anomaly_summary",
        "severity": "warning",
        "subject": f"[warning] {total} anomaly alert(s) held back on {len(held_back)} device(s)",
        "message": (
            f"run {run_id}: {sent_anomalies} anomaly alert(s) sent, {total} more held back by the rate limit "
            f"of {max_per_device} per device: {shown}{more}. "
            f"Every anomaly is in {ANOMALIES_TABLE}."
        ),
        "run_id": run_id,
        "created_at": _iso(now),
        "details": {
            "held_back": total,
            "sent": sent_anomalies,
            "held_back_by_device": {device_id: len(ids) for device_id, ids in worst},
            "held_back_alert_ids": {device_id: ids for device_id, ids in worst},
        },
    }


def anomaly_alerts(
    anomalies: Iterable[dict], min_severity: str, run_id: str, now: datetime
) -> tuple[list[dict[str, Any]], int]:
    """Alert records of the anomalies at or above ``min_severity`` (each id once), and how many were below."""
    records: dict[str, dict[str, Any]] = {}
    below = 0
    for anomaly in anomalies:
        for column in ("anomaly_id", "device_id", "anomaly_kind", "severity"):
            if anomaly.get(column) is None:
                raise ValueError(f"anomaly {anomaly!r} has no '{column}'; pass rows of {ANOMALIES_TABLE}")
        severity = _checked_severity(anomaly["severity"], f"anomaly {anomaly['anomaly_id']}")
        if _rank(severity) < _rank(min_severity):
            below += 1
            continue
        metric = anomaly.get("metric")
        what = f"{anomaly['anomaly_kind']}" + (f" of {metric}" if metric else "")
        where = f"{anomaly['device_id']}" + (f" ({anomaly['site_id']})" if anomaly.get("site_id") else "")
        span = f"from {_show(anomaly.get('started_at'))} to {_show(anomaly.get('ended_at'))}"
        peak = f", peak {_show(anomaly['peak_value'])}" if anomaly.get("peak_value") is not None else ""
        score = f", score {anomaly['score']:.3g}" if isinstance(anomaly.get("score"), int | float) else ""
        alert_id = _anomaly_alert_id(anomaly)
        records[alert_id] = {
            "alert_id": alert_id,
            "kind": "anomaly",
            "severity": severity,
            "subject": f"[{severity}] {what} on {where}",
            "message": f"{severity} anomaly: {what} on {where} {span}{peak}{score}",
            "run_id": run_id,
            "created_at": _iso(now),
            "details": {key: _jsonable(value) for key, value in anomaly.items()},
        }
    return list(records.values()), below


def gate_failure_alerts(
    failures: Iterable[dict], min_severity: str, run_id: str, now: datetime
) -> tuple[list[dict[str, Any]], int]:
    """One alert record per failed expectation (its partitions together) at or above ``min_severity``."""
    grouped: dict[tuple[str, str, str], list[dict]] = {}
    for failure in failures:
        for column in ("layer", "suite", "expectation", "severity"):
            if failure.get(column) is None:
                raise ValueError(
                    f"gate failure {failure!r} has no '{column}'; see expectations.result.ExpectationOutcome"
                )
        grouped.setdefault((failure["layer"], failure["suite"], failure["expectation"]), []).append(failure)
    records: list[dict[str, Any]] = []
    below = 0
    for (layer, suite, expectation), group in grouped.items():
        where = f"gate {layer} failure {suite}.{expectation}"
        severity = max((_gate_severity(f["severity"], where) for f in group), key=_rank)
        if _rank(severity) < _rank(min_severity):
            below += 1
            continue
        counts = [f["unexpected_count"] for f in group if f.get("unexpected_count") is not None]
        unexpected = sum(counts) if counts else None
        partitions = sorted({str(f["partition"]) for f in group if f.get("partition")})
        note = next((f["note"] for f in group if f.get("note")), "")
        rows = f": {unexpected:,} unexpected row(s)" if unexpected is not None else ""
        spread = f" in {len(partitions)} partition(s)" if partitions else ""
        alert_id = f"gate:{run_id}:{layer}:{suite}:{expectation}"
        records.append(
            {
                "alert_id": alert_id,
                "kind": "gate_failure",
                "severity": severity,
                "subject": f"[{severity}] gate {layer} failed: {expectation}",
                "message": f"gate {layer}, run {run_id}: {suite} :: {expectation} failed{rows}{spread}"
                + (f". {note}" if note else ""),
                "run_id": run_id,
                "created_at": _iso(now),
                "details": {
                    "layer": layer,
                    "suite": suite,
                    "expectation": expectation,
                    "unexpected_count": unexpected,
                    "partitions": partitions,
                    "failures": [{k: _jsonable(v) for k, v in f.items()} for f in group],
                },
            }
        )
    return records, below


def webhook_payload(records: Sequence[dict[str, Any]], run_id: str, sent_at: datetime) -> dict[str, Any]:
    """The JSON body of one webhook POST; ``idempotency_key`` is the same whenever these alerts are sent."""
    return {
        "idempotency_key": idempotency_key(r["alert_id"] for r in records),
        "source": "iot-sensor-lakehouse",
        "run_id": run_id,
        "sent_at": _iso(sent_at),
        "alerts": list(records),
    }


def idempotency_key(alert_ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(alert_ids)).encode()).hexdigest()


# ---- Sinks -----------------------------------------------------------------------------------------------
@dataclass
class Delivery:
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class AlertSink(Protocol):
    name: str

    def deliver(self, records: list[dict[str, Any]], run_id: str) -> Delivery: ...


class FileSink:
    """Appends one JSON line per alert to a file (local or S3), rewriting it atomically."""

    name = "file"

    def __init__(self, storage: Storage, uri: str) -> None:
        self.storage = storage
        self.uri = uri

    def deliver(self, records: list[dict[str, Any]], run_id: str) -> Delivery:
        ids = [r["alert_id"] for r in records]
        lines = "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in records).encode()
        try:
            existing = self.storage.read_bytes(self.uri) if self.storage.exists(self.uri) else b""
            if existing and not existing.endswith(b"\n"):
                existing += b"\n"
            self.storage.write_bytes(self.uri, existing + lines)
        except Exception as exc:  # OSError locally, botocore errors on S3: reported, retried next cycle
            return Delivery(failed=ids, errors=[f"alerts file {self.uri}: {type(exc).__name__}: {exc}"])
        return Delivery(delivered=ids)


class _WebhookFailed(Exception):
    pass


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be resent as a GET without its body; treat a redirect as a failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebhookSink:
    """One JSON POST per batch of alerts; retries with backoff on connection errors, timeouts, 429 and 5xx."""

    name = "webhook"

    def __init__(self, url: str, timeout_s: float, retries: int) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"alert_webhook_url '{_redact(url)}' is not an http(s) URL; set it to http(s)://host/...")
        if timeout_s <= 0 or retries < 0:
            raise ConfigError(
                f"alert_webhook_timeout_s ({timeout_s}) must be positive and alert_webhook_retries ({retries}) "
                f"at least 0"
            )
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self._opener = urllib.request.build_opener(_NoRedirects)

    def deliver(self, records: list[dict[str, Any]], run_id: str) -> Delivery:
        result = Delivery()
        for start in range(0, len(records), WEBHOOK_BATCH_SIZE):
            batch = records[start : start + WEBHOOK_BATCH_SIZE]
            ids = [r["alert_id"] for r in batch]
            payload = webhook_payload(batch, run_id, datetime.now(UTC))
            try:
                self._post(json.dumps(payload, sort_keys=True, allow_nan=False).encode(), payload["idempotency_key"])
            except _WebhookFailed as exc:
                result.failed += ids
                result.errors.append(str(exc))
            else:
                result.delivered += ids
        return result

    def _post(self, body: bytes, key: str) -> None:
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": key,
                    "User-Agent": "iot-sensor-lakehouse-alerts",
                },
            )
            retry_after: float | None = None
            try:
                with self._opener.open(request, timeout=self.timeout_s) as response:
                    response.read()
                    if 200 <= response.status < 300:
                        return
                    problem, retryable = f"HTTP {response.status}", False
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code} {exc.reason}"
                retryable = exc.code >= 500 or exc.code in (408, 429)
                retry_after = _seconds(exc.headers.get("Retry-After") if exc.headers else None)
                exc.close()
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # refused, reset, timeout
                problem, retryable = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}", True
            if not retryable or attempt == attempts:
                fix = "check the receiver" if retryable else "the receiver rejected the alerts; check its logs"
                raise _WebhookFailed(
                    f"webhook {_redact(self.url)}: {problem} after {attempt} attempt(s) "
                    f"(alert_webhook_timeout_s={self.timeout_s:g}, alert_webhook_retries={self.retries}); {fix}"
                )
            backoff = min(WEBHOOK_BACKOFF_S * 2 ** (attempt - 1), WEBHOOK_MAX_BACKOFF_S)
            time.sleep(min(max(backoff, retry_after or 0.0), WEBHOOK_MAX_BACKOFF_S))


class SnsSink:
    """One SNS message per alert (PublishBatch, ten at a time), with a subject and severity/kind attributes."""

    name = "sns"

    def __init__(self, client: Any, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn
        self.fifo = topic_arn.endswith(".fifo")

    def deliver(self, records: list[dict[str, Any]], run_id: str) -> Delivery:
        from botocore.exceptions import BotoCoreError, ClientError

        result = Delivery()
        for start in range(0, len(records), SNS_BATCH_SIZE):
            batch = records[start : start + SNS_BATCH_SIZE]
            entries = [self._entry(f"a{i}", record) for i, record in enumerate(batch)]
            by_entry = {entry["Id"]: record["alert_id"] for entry, record in zip(entries, batch, strict=True)}
            try:
                response = self.client.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=entries)
            except (BotoCoreError, ClientError) as exc:
                result.failed += list(by_entry.values())
                result.errors.append(f"sns {self.topic_arn}: {exc}; check alert_sns_topic_arn and AWS credentials")
                continue
            result.delivered += [by_entry[ok["Id"]] for ok in response.get("Successful", [])]
            for failed in response.get("Failed", []):
                result.failed.append(by_entry[failed["Id"]])
                result.errors.append(
                    f"sns {self.topic_arn}: {by_entry[failed['Id']]}: {failed.get('Code')}: {failed.get('Message')}"
                )
        return result

    def _entry(self, entry_id: str, record: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": entry_id,
            "Subject": _sns_subject(record["subject"]),
            "Message": json.dumps(record, sort_keys=True, allow_nan=False),
            "MessageAttributes": {
                "severity": {"DataType": "String", "StringValue": record["severity"]},
                "kind": {"DataType": "String", "StringValue": record["kind"]},
            },
        }
        if self.fifo:  # a FIFO topic drops a repeated alert within its five-minute de-duplication window
            entry["MessageGroupId"] = "lakehouse-alerts"
            entry["MessageDeduplicationId"] = hashlib.sha256(record["alert_id"].encode()).hexdigest()
        return entry


def _configured_sinks(settings: Settings) -> list[AlertSink]:
    file_uri = alert_file_uri(settings)
    sinks: list[AlertSink] = [FileSink(_storage(settings, file_uri), file_uri)]
    if settings.alert_webhook_url:
        sinks.append(
            WebhookSink(settings.alert_webhook_url, settings.alert_webhook_timeout_s, settings.alert_webhook_retries)
        )
    if settings.alert_sns_topic_arn:
        sinks.append(SnsSink(_aws_client(settings, "sns"), settings.alert_sns_topic_arn))
    return sinks


def _aws_client(settings: Settings, service: str) -> Any:
    """A boto3 client from the one door to AWS, with the alert timeout (an alert must not hold up a cycle)."""
    from lakehouse import aws

    return aws.client(settings, service, read_timeout_s=settings.alert_webhook_timeout_s)


# ---- Where things are ------------------------------------------------------------------------------------
def alert_file_uri(settings: Settings) -> str:
    return settings.alert_file or settings.lake_root.uri("ops", "alerts.ndjson")


def state_uri(settings: Settings) -> str:
    """The de-duplication state: ``<lake>/ops/alerts_state/state.json``."""
    return f"{settings.lake_root.ops('alerts_state')}/{STATE_FILE}"


def _storage(settings: Settings, uri: str) -> Storage:
    return storage_for(uri, settings)


def _load_state(storage: Storage, uri: str) -> dict[str, Any]:
    empty = {"version": STATE_VERSION, "alerted": {}, "pending": {}}
    if not storage.exists(uri):
        return empty
    try:
        state = json.loads(storage.read_bytes(uri))
        if state.get("version") != STATE_VERSION or not isinstance(state.get("alerted"), dict):
            raise ValueError(f"expected version {STATE_VERSION} with 'alerted' and 'pending' objects")
        state.setdefault("pending", {})
        return state
    except ValueError as exc:
        raise LakehouseError(
            f"alerts state {uri} cannot be read ({exc}); restore it from a backup, or delete it to send every "
            f"current anomaly again"
        ) from exc


def _save_state(storage: Storage, uri: str, state: dict[str, Any]) -> None:
    try:
        storage.write_bytes(uri, json.dumps(state, sort_keys=True, indent=1).encode())
    except Exception as exc:
        raise LakehouseError(
            f"alerts were sent but the alerts state {uri} could not be written ({type(exc).__name__}: {exc}); "
            f"they will be sent again next cycle unless the lake becomes writable"
        ) from exc


# ---- Small helpers ---------------------------------------------------------------------------------------
def _anomaly_alert_id(anomaly: dict[str, Any]) -> str:
    return f"anomaly:{anomaly['anomaly_id']}"


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def _checked_severity(severity: Any, where: str) -> str:
    if severity not in SEVERITIES:
        raise ValueError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    return severity


def _gate_severity(severity: Any, where: str) -> str:
    return GATE_SEVERITY.get(severity) or _checked_severity(severity, where)


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _iso(moment: datetime) -> str:
    return _utc(moment).isoformat().replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    """A value JSON can carry: UTC timestamps as ISO-8601 with Z (naive ones are UTC), non-finite floats as text."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "-inf", "nan": the reading was not a number (see out_of_range)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _show(value: Any) -> str:
    shown = _jsonable(value)
    return f"{shown:g}" if isinstance(shown, float) else str(shown)


def _sns_subject(subject: str) -> str:
    printable = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)
    return printable[: SNS_SUBJECT_MAX - 3] + "..." if len(printable) > SNS_SUBJECT_MAX else printable


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing, the backoff applies
        return None


def _redact(url: str) -> str:
    """The URL without its path and query, which for chat webhooks hold the secret."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    return (
        f"{parsed.scheme}://{host}{port}/..."
        if parsed.path.strip("/") or parsed.query
        else f"{parsed.scheme}://{host}{port}"
    )
