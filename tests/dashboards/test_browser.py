"""The dashboard in a real browser: ``lakehouse dashboard`` serves the demo lake in its own process and
headless Chromium opens each page. Figures on the pages are checked against the lake read directly;
charts are checked by the marks they drew (Vega renders SVG). Screenshots go to test-output/dashboards/."""

from __future__ import annotations

from datetime import timedelta

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboards import PAGES
from lakehouse import ops
from lakehouse.contract import DEVICE_TYPES, load_metric_limits


def test_the_fleet_overview_shows_devices_online_and_the_last_24_hours_of_anomalies(page, demo_sql, demo_fleet_size):
    ((online, as_of_at),) = demo_sql(
        "select count(*) filter (where health_status <> 'silent'), max(as_of_at) from gold.gold_device_health"
    )
    last_24_hours = [as_of_at - timedelta(hours=24), as_of_at]
    by_kind = dict(
        demo_sql(
            "select anomaly_kind, count(*) from gold.gold_anomalies where ended_at >= ? and started_at <= ? "
            "group by all",
            last_24_hours,
        )
    )
    ((critical,),) = demo_sql(
        "select count(*) from gold.gold_anomalies where ended_at >= ? and started_at <= ? and severity = 'critical'",
        last_24_hours,
    )

    page.open("")
    page.screenshot("fleet-overview")

    assert page.title == "Fleet overview"
    assert page.errors() == []
    assert page.metrics("fleet-metrics") == {
        "Devices": str(demo_fleet_size),
        "Online now": str(online),
        "Silent": str(demo_fleet_size - online),
        "Anomalies, last 24 h": str(sum(by_kind.values())),
        "Critical, last 24 h": str(critical),
    }
    assert by_kind, "the demo fleet has anomalies in its last 24 hours"
    table = page.table("table-anomalies-by-kind-site")
    assert table[0][0] == "kind" and table[0][-1] == "all sites"
    assert {row[0]: int(row[-1]) for row in table[1:]} == by_kind
    assert page.marks("chart-anomalies-by-kind-site", "rect") >= len(by_kind)
    assert page.marks("chart-devices-by-status", "rect") >= 1
    devices_table = page.find('.st-key-table-devices [data-testid="stDataFrame"]')
    assert devices_table and "device_id=" in devices_table[0].get_attribute("textContent")


def test_the_device_page_draws_each_metric_with_its_anomaly_windows_shaded_and_alert_limits_drawn(page, demo_sql):
    (device_id, device_type), *_ = demo_sql(
        "select device_id, device_type from gold.gold_anomalies where metric is not null "
        "group by all order by count(*) desc, device_id limit 1"
    )
    windows = dict(
        demo_sql(
            "select coalesce(metric, '(device)'), count(*) from gold.gold_anomalies where device_id = ? group by 1",
            [device_id],
        )
    )
    limits = load_metric_limits()

    page.open(f"device?device_id={device_id}&range=everything")
    page.screenshot(f"device-{device_id}")

    assert page.title == "Device detail"
    assert page.errors() == []
    shown = page.metrics("device-metrics")
    assert (shown["Type"], shown["Anomaly windows in range"]) == (device_type, str(sum(windows.values())))
    for metric in DEVICE_TYPES[device_type]:
        key = f"chart-metric-{metric}"
        limit = limits[(device_type, metric)]
        alert_limits = sum(v is not None for v in (limit.alert_min, limit.alert_max))
        assert page.marks(key, "line") == 1, f"{metric}: one line of values"
        assert page.marks(key, "rule") == alert_limits, f"{metric}: a dashed line per alert limit"
        shaded = windows.get(metric, 0) + windows.get("(device)", 0)
        assert page.marks(key, "rect") == shaded, f"{metric}: one shaded rectangle per anomaly window"
        label = page.chart(key).get_attribute("aria-label")
        assert label.startswith(f"{metric} of {device_id}: ")


def test_the_anomalies_page_filters_treat_typed_text_as_data_and_link_to_the_device(page, demo_sql):
    ((total,),) = demo_sql("select count(*) from gold.gold_anomalies")
    (device_id, device_windows), *_ = demo_sql(
        "select device_id, count(*) from gold.gold_anomalies group by 1 order by 2 desc, 1 limit 1"
    )

    page.open("anomalies")
    assert page.title == "Anomalies"
    assert page.metrics("anomaly-metrics")["Matching anomaly windows"] == str(total)
    assert page.marks("chart-anomalies-by-kind-severity", "rect") >= 1

    type_into(page, "device_text", "x' or '1'='1")
    assert page.errors() == []
    assert page.metrics("anomaly-metrics")["Matching anomaly windows"] == "0"
    assert "No anomaly window matches these filters." in page.driver.page_source
    page.screenshot("anomalies-hostile-filter")

    type_into(page, "device_text", device_id)
    assert page.metrics("anomaly-metrics")["Matching anomaly windows"] == str(device_windows)
    assert page.metrics("anomaly-metrics")["Devices"] == "1"
    page.screenshot("anomalies-one-device")

    links = page.find(".st-key-device-links a")
    assert [link.text.splitlines()[-1] for link in links] == [device_id]
    links[0].click()
    page.wait()
    assert page.title == "Device detail"
    assert f"device_id={device_id}" in page.driver.current_url
    assert page.errors() == []


def type_into(page, key: str, text: str) -> None:
    field = page.find(f".st-key-{key} input")[0]
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.BACKSPACE)
    field.send_keys(text, Keys.ENTER)
    page.wait()


def test_data_quality_shows_gates_quarantine_rejections_freshness_and_recent_runs(page, demo_sql, demo_lake):
    lake = demo_lake.lake_root
    ((quarantined,),) = demo_sql("select count(*) from read_parquet(?)", [f"{lake.quarantine_readings}/*/*.parquet"])
    ((bronze_rows,),) = demo_sql("select count(*) from read_parquet(?)", [f"{lake.bronze_readings}/*/*.parquet"])
    rejected = dict(demo_sql("select rejection_reason, count(*) from silver.silver_rejected_readings group by 1"))
    run_ids = {r["run_id"] for r in ops.read(lake, "ops_runs")}

    page.open("quality")
    page.screenshot("data-quality")

    assert page.title == "Data quality"
    assert page.errors() == []
    metrics = page.metrics("quality-metrics")
    assert {metrics[f"Gate {layer}"] for layer in ("bronze", "silver", "gold")} <= {"passed", "passed with warnings"}
    assert metrics["Quarantined lines"] == str(quarantined)
    assert metrics["Rejected readings"] == str(sum(rejected.values()))
    gates = page.table("table-gates")
    assert [row[0] for row in gates[1:]] == ["bronze", "silver", "gold"]
    freshness = {row[1]: row for row in page.table("table-freshness")[1:]}
    assert freshness["bronze/readings (Parquet)"][2] == f"{bronze_rows:,}"
    assert set(freshness) >= {"silver.silver_readings", "gold.gold_sensor_metrics_hourly", "gold.gold_anomalies"}
    rejections: dict[str, int] = {}
    for reason, _metric, readings in page.table("table-rejections")[1:]:
        rejections[reason] = rejections.get(reason, 0) + int(readings)
    assert rejections == rejected
    assert page.marks("chart-quarantine", "rect") >= 1
    shown_runs = {row[0] for row in page.table("table-runs")[1:]}
    assert shown_runs and shown_runs <= run_ids


def test_every_page_is_in_the_navigation(page):
    page.open("")
    links = page.driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
    assert [link.text.splitlines()[-1] for link in links] == list(PAGES.values())
