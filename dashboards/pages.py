"""The four pages of the local dashboard, rendered with Streamlit from :mod:`dashboards.data`.

Each page starts by refreshing the private copy of the warehouse (a ``stat`` when nothing changed) and
says how current its data is; every query result is read in one short ``with data.warehouse()`` block.
Elements that tests look for carry a ``key`` (Streamlit gives them the CSS class ``st-key-<key>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import duckdb
import pandas as pd
import streamlit as st

from dashboards import PAGES, charts
from dashboards import data as q
from dashboards.data import AnomalyFilter, DashboardData, NoWarehouse

RANGES = {"24 hours": timedelta(hours=24), "7 days": timedelta(days=7), "everything": None}
# Drawing more points than this in a browser is slow; a longer range falls back to hourly aggregates.
MAX_READINGS_POINTS = 20_000
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass
class Pages:
    """The pages as ``st.Page`` objects, so pages can link to each other."""

    data: DashboardData
    fleet: st.Page | None = None
    device: st.Page | None = None
    anomalies: st.Page | None = None
    quality: st.Page | None = None

    def build(self) -> list[st.Page]:
        def fleet() -> None:
            fleet_page(self)

        def device() -> None:
            device_page(self)

        def anomalies() -> None:
            anomalies_page(self)

        def quality() -> None:
            quality_page(self)

        self.fleet = st.Page(fleet, title=PAGES["fleet"], icon=":material/sensors:", url_path="fleet", default=True)
        self.device = st.Page(device, title=PAGES["device"], icon=":material/timeline:", url_path="device")
        self.anomalies = st.Page(anomalies, title=PAGES["anomalies"], icon=":material/warning:", url_path="anomalies")
        self.quality = st.Page(quality, title=PAGES["quality"], icon=":material/verified:", url_path="quality")
        return [self.fleet, self.device, self.anomalies, self.quality]


def device_link(device_id: str) -> str:
    """A link to the device page, relative to the current page (so it works under any base path)."""
    return f"device?device_id={quote(device_id)}"


def _fmt_time(value) -> str:
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).strftime(TIME_FORMAT)


def _times_as_text(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    frame = frame.copy()
    for column in columns:
        frame[column] = [_fmt_time(v) for v in frame[column]]
    return frame


def _fmt_lag(lag: timedelta | None) -> str:
    if lag is None:
        return ""
    seconds = int(lag.total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _header(pages: Pages, title: str) -> bool:
    """Title, and how current the data is. False (with a message shown) when there is nothing to read."""
    st.title(title)
    result = pages.data.refresh()
    with st.container(key="data-status"):
        if result.status in ("busy", "changed", "unreadable"):
            st.info(result.message, icon=":material/hourglass_top:")
        elif result.snapshot is None:
            st.warning(result.message, icon=":material/database:")
        else:
            st.caption(result.message)
    return result.snapshot is not None


def _chart(key: str, chart, alt: str) -> None:
    """An Altair chart inside a container with ``key`` (tests find it by the class st-key-<key>); ``alt``
    says in words what the chart shows, for screen readers."""
    with st.container(key=key):
        st.altair_chart(chart, alt=alt)


def _no_warehouse(exc: NoWarehouse) -> None:
    st.warning(str(exc), icon=":material/database:")


# ---- fleet overview -------------------------------------------------------------------------------------


def fleet_page(pages: Pages) -> None:
    if not _header(pages, PAGES["fleet"]):
        return
    try:
        with pages.data.warehouse() as con:
            summary = q.fleet_summary(con)
            since, until = q.anomaly_window(summary.as_of_at)
            counts = q.anomalies_by_kind_and_site(con, since, until)
            devices = q.fleet_devices(con)
    except NoWarehouse as exc:
        _no_warehouse(exc)
        return
    recent = int(counts.anomalies.sum()) if not counts.empty else 0
    critical = int(counts[counts.severity == "critical"].anomalies.sum()) if not counts.empty else 0
    st.caption(
        f"Judged at {_fmt_time(summary.as_of_at)} UTC, the newest accepted reading of the fleet "
        f'(gold_device_health.as_of_at); "online" means a reading within the device type\'s silence limit.'
    )
    with st.container(key="fleet-metrics", horizontal=True):
        st.metric("Devices", summary.devices, border=True)
        st.metric("Online now", summary.online, border=True)
        st.metric("Silent", summary.offline, border=True)
        st.metric("Anomalies, last 24 h", recent, border=True)
        st.metric("Critical, last 24 h", critical, border=True)

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Anomalies in the last 24 hours, by kind and site")
        if counts.empty:
            st.write("No anomaly windows in the last 24 hours.")
        else:
            _chart(
                "chart-anomalies-by-kind-site",
                charts.anomalies_by_kind_and_site(counts),
                f"{recent} anomaly windows in the last 24 hours by kind and site",
            )
            pivot = counts.pivot_table(
                index="anomaly_kind", columns="site_id", values="anomalies", aggfunc="sum", fill_value=0
            )
            pivot["all sites"] = pivot.sum(axis=1)
            with st.container(key="table-anomalies-by-kind-site"):
                st.table(pivot.rename_axis(index="kind", columns=None))
    with right:
        st.subheader("Devices by health")
        _chart(
            "chart-devices-by-status",
            charts.devices_by_status(summary.by_status),
            f"{summary.devices} devices by health status",
        )
    st.subheader("Devices")
    shown = _times_as_text(devices, "last_seen_at")
    shown.insert(0, "device", [device_link(d) for d in devices.device_id])
    with st.container(key="table-devices"):
        st.dataframe(
            shown.drop(columns=["device_id"]),
            hide_index=True,
            height=min(38 + 35 * len(shown), 640),
            column_config={"device": st.column_config.LinkColumn("device", display_text=r"device_id=(.*)$")},
        )


# ---- device detail --------------------------------------------------------------------------------------


def device_page(pages: Pages) -> None:
    if not _header(pages, PAGES["device"]):
        return
    try:
        with pages.data.warehouse() as con:
            ids = q.device_ids(con)
            if not ids:
                st.write("No device has accepted readings yet.")
                return
            controls = st.columns([2, 2, 2])
            with controls[0]:
                device_id = st.selectbox("Device", ids, key="device_id", bind="query-params")
            with controls[1]:
                range_name = st.selectbox(
                    "Time range, up to its last reading", list(RANGES), key="range", bind="query-params"
                )
            with controls[2]:
                resolution = st.segmented_control(
                    "Resolution",
                    list(q.RESOLUTIONS),
                    default="readings",
                    required=True,
                    key="resolution",
                    bind="query-params",
                    format_func=lambda r: "hourly (gold)" if r == "hourly" else "readings (silver)",
                )
            fleet = pages.data.fleet()
            dev = q.device(con, device_id, fleet)
            if dev is None:
                st.warning(f"Device {device_id} is not in gold_device_health; pick another device.")
                return
            # A device's history ends at its last reading: a silent device still shows what it sent.
            until = dev.last_seen_at or dev.as_of_at
            span = RANGES[range_name]
            since = until - span if span else (q.first_hour(con, dev.device_id) or until - timedelta(days=1))
            if resolution == "readings":
                points = q.count_readings(con, dev.device_id, since, until) * max(1, len(dev.metrics))
                if points > MAX_READINGS_POINTS:
                    st.info(
                        f"{points:,} values in this range are too many to draw; showing hourly aggregates. "
                        f"Choose a shorter time range to see every reading."
                    )
                    resolution = "hourly"
            series = q.device_series(con, dev, since, until, resolution)
            anomalies = q.device_anomalies(con, dev.device_id, since, until)
    except NoWarehouse as exc:
        _no_warehouse(exc)
        return

    with st.container(key="device-metrics", horizontal=True):
        st.metric("Health", dev.health_status, border=True)
        st.metric("Type", dev.device_type, border=True)
        st.metric("Site", dev.site_id, border=True)
        st.metric("Battery", "" if dev.battery_pct is None else f"{dev.battery_pct:.0f} %", border=True)
        st.metric("Anomaly windows in range", len(anomalies), border=True)
    st.caption(
        f"Last reading {_fmt_time(dev.last_seen_at)} UTC (fleet clock {_fmt_time(dev.as_of_at)} UTC); "
        f"showing {_fmt_time(since)} to {_fmt_time(until)} UTC. "
        f"Shaded: anomaly windows, coloured by severity (device-level data gaps on every metric). "
        f"Dashed red: the alert limits of {dev.device_type} from the lake's catalogue."
    )
    limits = q.thresholds(dev.device_type, fleet)
    for metric in dev.metrics:
        unit = fleet.units.get((dev.device_type, metric), "")
        values = series[series.metric == metric]
        windows = charts.anomaly_windows_for_chart(anomalies, metric, since, until)
        limit = limits.get(metric)
        st.subheader(f"{metric} ({unit})" if unit else metric)
        drawn = [f"alert min {limit.alert_min:g}"] if limit and limit.alert_min is not None else []
        drawn += [f"alert max {limit.alert_max:g}"] if limit and limit.alert_max is not None else []
        _chart(
            f"chart-metric-{metric}",
            charts.metric_series(values, windows, limit, metric, since, until),
            (
                f"{metric} of {dev.device_id}: {len(values)} {resolution} points, {len(windows)} anomaly windows, "
                f"{', '.join(drawn) if drawn else 'no alert limits'}"
            ),
        )
    st.subheader("Anomaly windows")
    if anomalies.empty:
        st.write("None in this range.")
    else:
        with st.container(key="table-device-anomalies"):
            st.dataframe(_times_as_text(anomalies, "started_at", "ended_at"), hide_index=True)


# ---- anomalies ------------------------------------------------------------------------------------------


def anomalies_page(pages: Pages) -> None:
    if not _header(pages, PAGES["anomalies"]):
        return
    try:
        with pages.data.warehouse() as con:
            options = q.anomaly_options(con)
            with st.container(key="anomaly-filters"):
                row = st.columns(3)
                kinds = row[0].multiselect("Kind", options.kinds, key="kind", placeholder="every kind")
                severities = row[1].multiselect(
                    "Severity", options.severities, key="severity", placeholder="every severity"
                )
                sites = row[2].multiselect("Site", options.sites, key="site", placeholder="every site")
                row = st.columns(3)
                device_text = row[0].text_input(
                    "Device id contains", key="device_text", placeholder="e.g. env-0001", max_chars=100
                )
                dates = (
                    (options.first_at.date(), options.last_at.date()) if options.first_at and options.last_at else ()
                )
                chosen = row[1].date_input(
                    "Between (UTC dates)",
                    value=dates,
                    min_value=dates[0] if dates else None,
                    max_value=dates[1] if dates else None,
                    key="dates",
                )
                limit = row[2].number_input("Rows shown", min_value=10, max_value=5000, value=500, step=10, key="limit")
            since, until = _date_range(chosen)
            page = q.find_anomalies(
                con,
                AnomalyFilter(kinds, severities, sites, device_text, since, until, int(limit)),
            )
    except NoWarehouse as exc:
        _no_warehouse(exc)
        return
    with st.container(key="anomaly-metrics", horizontal=True):
        st.metric("Matching anomaly windows", page.total, border=True)
        st.metric("Devices", page.devices, border=True)
        critical = page.by_kind[page.by_kind.severity == "critical"].anomalies.sum() if page.total else 0
        st.metric("Critical", int(critical), border=True)
    if page.total == 0:
        st.write("No anomaly window matches these filters.")
        return
    _chart(
        "chart-anomalies-by-kind-severity",
        charts.anomalies_by_kind_and_severity(page.by_kind),
        f"{page.total} matching anomaly windows by kind and severity",
    )
    shown = _times_as_text(page.rows, "started_at", "ended_at")
    shown["metric"] = shown.metric.fillna("(device)")
    shown.insert(0, "device", [device_link(d) for d in page.rows.device_id])
    if page.total > len(page.rows):
        st.caption(f"Showing the first {len(page.rows):,} of {page.total:,}, most severe and newest first.")
    with st.container(key="table-anomalies"):
        st.dataframe(
            shown.drop(columns=["device_id"]),
            hide_index=True,
            column_config={"device": st.column_config.LinkColumn("device", display_text=r"device_id=(.*)$")},
        )
    st.caption("Open a device of this selection:")
    with st.container(key="device-links", horizontal=True):
        for device_id in list(dict.fromkeys(page.rows.device_id))[:20]:
            st.page_link(pages.device, label=device_id, query_params={"device_id": device_id})


def _date_range(chosen) -> tuple[datetime | None, datetime | None]:
    """The date input's (from, to) as [from 00:00, to+1 00:00); a half-chosen range filters one side."""
    if not chosen:
        return None, None
    values = list(chosen) if isinstance(chosen, tuple | list) else [chosen]
    since = datetime.combine(values[0], datetime.min.time())
    until = datetime.combine(values[-1], datetime.min.time()) + timedelta(days=1) if len(values) > 1 else None
    return since, until


# ---- data quality ---------------------------------------------------------------------------------------


def quality_page(pages: Pages) -> None:
    if not _header(pages, PAGES["quality"]):
        return
    data = pages.data
    gates = q.latest_gate_results(data.ops_records("ops_gate_results"))
    failures = q.failed_expectations(data.ops_records("ops_gate_results"))
    runs = q.recent_runs(data.ops_records("ops_runs"))
    try:
        quarantine = q.quarantine_counts(data.lake)
    except duckdb.IOException as exc:  # a compaction replaced quarantine files while they were read
        st.info(f"Quarantine files are being rewritten; reload in a moment ({exc}).")
        quarantine = pd.DataFrame(columns=["reason", "ingest_date", "lines"])
    try:
        with data.warehouse() as con:
            rejections = q.rejection_counts(con)
            freshness = q.layer_freshness(con, data.lake)
    except NoWarehouse as exc:
        _no_warehouse(exc)
        return
    now = datetime.now(UTC).replace(tzinfo=None)

    with st.container(key="quality-metrics", horizontal=True):
        for layer in ("bronze", "silver", "gold"):
            row = gates[gates.layer == layer]
            st.metric(f"Gate {layer}", row.status.iloc[0] if not row.empty else "not run", border=True)
        st.metric("Quarantined lines", int(quarantine.lines.sum()) if not quarantine.empty else 0, border=True)
        st.metric("Rejected readings", int(rejections.readings.sum()) if not rejections.empty else 0, border=True)

    st.subheader("Latest gate results per layer")
    if gates.empty:
        st.write("No gate has run yet (`lakehouse run` or `lakehouse gate`).")
    else:
        with st.container(key="table-gates"):
            validated = pd.to_datetime(gates.validated_at, utc=True).dt.tz_localize(None)
            st.table(_times_as_text(gates.assign(validated_at=validated), "validated_at").set_index("layer"))
        if not failures.empty:
            with st.container(key="table-gate-failures"):
                st.table(failures.set_index("layer"))

    st.subheader("Freshness of each layer")
    with st.container(key="table-freshness"):
        st.table(
            pd.DataFrame(
                [
                    {
                        "layer": f.layer,
                        "table": f.table,
                        "rows": "" if f.rows is None else f"{f.rows:,}",
                        "newest event (UTC)": _fmt_time(f.newest_event_at),
                        "age of newest event": _fmt_lag(f.lag(now)),
                        "newest ingest (UTC)": _fmt_time(f.last_written_at),
                        "note": f.problem,
                    }
                    for f in freshness
                ]
            ).set_index("layer")
        )

    left, right = st.columns(2)
    with left:
        st.subheader("Quarantined landing lines")
        if quarantine.empty:
            st.write("None: every landing line parsed.")
        else:
            _chart(
                "chart-quarantine",
                charts.counts_by_reason(quarantine, "reason", "lines", "lines"),
                f"{int(quarantine.lines.sum())} quarantined lines by reason",
            )
            with st.container(key="table-quarantine"):
                st.table(quarantine.groupby("reason").lines.sum().sort_values(ascending=False).to_frame())
    with right:
        st.subheader("Readings silver rejected")
        if rejections.empty:
            st.write("None: silver accepted every bronze row.")
        else:
            _chart(
                "chart-rejections",
                charts.counts_by_reason(rejections, "rejection_reason", "readings", "readings"),
                f"{int(rejections.readings.sum())} rejected readings by reason",
            )
            with st.container(key="table-rejections"):
                st.table(rejections.set_index("rejection_reason"))

    st.subheader("Recent runs")
    if runs.empty:
        st.write("No cycle has run yet.")
    else:
        runs = runs.assign(
            started_at=pd.to_datetime(runs.started_at, utc=True).dt.tz_localize(None),
            seconds=[f"{s:.1f}" for s in runs.seconds],
        )
        with st.container(key="table-runs"):
            st.table(_times_as_text(runs, "started_at").set_index("run_id"))
