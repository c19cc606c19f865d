"""Altair charts of the dashboard, built from the DataFrames of :mod:`dashboards.data`.

Times in the warehouse are naive UTC; the charts mark them as UTC and draw them on UTC scales, so a
browser in another time zone shows the same hours as the tables.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import altair as alt
import pandas as pd

from dashboards.data import SEVERITY_ORDER, Thresholds

SEVERITY_COLORS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#9ecae1"}
HEALTH_COLORS = {"healthy": "#2ca02c", "degraded": "#ff7f0e", "critical": "#d62728", "silent": "#7f7f7f"}
# An anomaly window of one reading has no width; it is drawn at least this share of the time axis wide.
MIN_WINDOW_SHARE = 0.006


def _utc(series: pd.Series) -> pd.Series:
    series = pd.to_datetime(series)
    return series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")


def anomalies_by_kind_and_site(counts: pd.DataFrame) -> alt.Chart:
    """Stacked bars: anomaly windows per kind, one colour per site."""
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("anomaly_kind:N", title="kind", sort="-y", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("sum(anomalies):Q", title="anomaly windows"),
            color=alt.Color("site_id:N", title="site"),
            tooltip=["anomaly_kind", "site_id", "severity", "anomalies"],
        )
        .properties(height=260)
    )


def devices_by_status(by_status: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(by_status)
        .mark_bar()
        .encode(
            y=alt.Y("health_status:N", title=None, sort=list(HEALTH_COLORS)),
            x=alt.X("devices:Q", title="devices"),
            color=alt.Color(
                "health_status:N",
                scale=alt.Scale(domain=list(HEALTH_COLORS), range=list(HEALTH_COLORS.values())),
                legend=None,
            ),
            tooltip=["health_status", "devices"],
        )
        .properties(height=160)
    )


def anomalies_by_kind_and_severity(by_kind: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(by_kind)
        .mark_bar()
        .encode(
            x=alt.X("anomaly_kind:N", title="kind", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("anomalies:Q", title="anomaly windows"),
            color=alt.Color(
                "severity:N",
                scale=alt.Scale(domain=list(SEVERITY_ORDER), range=[SEVERITY_COLORS[s] for s in SEVERITY_ORDER]),
            ),
            tooltip=["anomaly_kind", "severity", "anomalies"],
        )
        .properties(height=220)
    )


def counts_by_reason(counts: pd.DataFrame, reason: str, value: str, title: str) -> alt.Chart:
    """Horizontal bars of a count per reason code (quarantine reasons, rejection reasons)."""
    totals = counts.groupby(reason, as_index=False)[value].sum()
    return (
        alt.Chart(totals)
        .mark_bar()
        .encode(
            y=alt.Y(f"{reason}:N", title=None, sort="-x", axis=alt.Axis(labelLimit=220)),
            x=alt.X(f"{value}:Q", title=title),
            tooltip=[reason, value],
        )
        .properties(height=alt.Step(24))
    )


def anomaly_windows_for_chart(anomalies: pd.DataFrame, metric: str, since: datetime, until: datetime) -> pd.DataFrame:
    """The windows to shade on ``metric``'s chart: its own and the device-level ones (metric null),
    clipped to the axis and widened to a visible minimum."""
    columns = ["window_start", "window_end", "anomaly_kind", "severity", "started_at", "ended_at", "score"]
    if anomalies.empty:
        return pd.DataFrame(columns=columns)
    windows = anomalies[(anomalies.metric == metric) | anomalies.metric.isna()].copy()
    if windows.empty:
        return pd.DataFrame(columns=columns)
    min_width = max((until - since) * MIN_WINDOW_SHARE, timedelta(seconds=1))
    start = pd.to_datetime(windows.started_at)
    end = pd.to_datetime(windows.ended_at)
    short = (end - start) < min_width
    middle = start + (end - start) / 2
    start = start.where(~short, middle - min_width / 2).clip(lower=pd.Timestamp(since))
    end = end.where(~short, middle + min_width / 2).clip(upper=pd.Timestamp(until))
    windows["window_start"], windows["window_end"] = _utc(start), _utc(end)
    windows["started_at"] = pd.to_datetime(windows.started_at).dt.strftime("%Y-%m-%d %H:%M:%S")
    windows["ended_at"] = pd.to_datetime(windows.ended_at).dt.strftime("%Y-%m-%d %H:%M:%S")
    return windows[columns]


def metric_series(
    series: pd.DataFrame,
    windows: pd.DataFrame,
    limits: Thresholds | None,
    metric: str,
    since: datetime,
    until: datetime,
) -> alt.LayerChart:
    """One metric of one device: the values (with the hour's min-max band), anomaly windows shaded by
    severity, and the alert limits of the device type as dashed lines."""
    data = series.copy()
    data["event_at"] = _utc(data["event_at"]) if not data.empty else pd.Series(dtype="datetime64[ns, UTC]")
    domain = [pd.Timestamp(since, tz="UTC").isoformat(), pd.Timestamp(until, tz="UTC").isoformat()]
    x = alt.X("event_at:T", title="time (UTC)", scale=alt.Scale(type="utc", domain=domain))
    layers: list[alt.Chart] = []
    if not windows.empty:
        layers.append(
            alt.Chart(windows)
            .mark_rect(opacity=0.25)
            .encode(
                x=alt.X("window_start:T", scale=alt.Scale(type="utc", domain=domain)),
                x2="window_end:T",
                color=alt.Color(
                    "severity:N",
                    title="anomaly",
                    scale=alt.Scale(domain=list(SEVERITY_ORDER), range=[SEVERITY_COLORS[s] for s in SEVERITY_ORDER]),
                ),
                tooltip=["anomaly_kind", "severity", "started_at", "ended_at", "score"],
            )
        )
    base = alt.Chart(data).encode(x=x)
    y_scale = alt.Scale(zero=False)
    layers.append(
        base.mark_area(opacity=0.2).encode(y=alt.Y("min_value:Q", title=metric, scale=y_scale), y2="max_value:Q")
    )
    layers.append(
        base.mark_line(point=len(data) < 200).encode(
            y=alt.Y("value:Q", title=metric, scale=y_scale),
            tooltip=[alt.Tooltip("event_at:T", format="%Y-%m-%d %H:%M:%S", title="time (UTC)"), "value:Q"],
        )
    )
    lines = []
    if limits is not None:
        for name, value in (("alert min", limits.alert_min), ("alert max", limits.alert_max)):
            if value is not None:
                lines.append({"limit": name, "value": value})
    if lines:
        rules = alt.Chart(pd.DataFrame(lines))
        layers.append(
            rules.mark_rule(color="#d62728", strokeDash=[6, 4]).encode(y="value:Q", tooltip=["limit", "value"])
        )
        layers.append(
            rules.mark_text(align="left", dx=4, dy=-6, color="#d62728").encode(
                y="value:Q", text="limit:N", x=alt.value(0)
            )
        )
    return alt.layer(*layers).resolve_scale(color="independent").properties(height=240)
