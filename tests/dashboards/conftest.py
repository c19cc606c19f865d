"""Fixtures of the dashboard tests: one small demo lake for the session (a real cycle: Spark bronze, GX
gates, dbt silver and gold on DuckDB), the dashboard served from it by ``lakehouse dashboard`` in its own
process, headless Debian Chromium driven by Selenium, a tiny hand-made warehouse for exact query specs,
and a moto server on 127.0.0.1 for QuickSight."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from lakehouse.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-output" / "dashboards"
DEMO_START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
LATER_START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # after the first cycle's readings end
HOUR = timedelta(hours=1)
DEMO_DEVICES = 12
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,2000",
)
PAGE_TIMEOUT_S = 60
PAUSE_BETWEEN_LOADS_S = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(lake: Path) -> Settings:
    """Settings for a lake folder, ignoring any lakehouse.toml or LAKEHOUSE_* of the machine running tests."""
    return Settings.load(env={}, cwd=lake.parent, lake=str(lake))


# ---- the demo lake ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_lake_root(tmp_path_factory) -> Settings:
    """The demo lake's settings; the folder starts empty (the dashboard is started on it before any cycle)."""
    settings = settings_for(tmp_path_factory.mktemp("dashboards") / "lake")
    settings.lake_root.local_path().mkdir(parents=True)
    return settings


@dataclass
class ServedCycles:
    """Three cycles run in this process while another thread kept loading dashboard pages."""

    settings: Settings
    reports: list
    poller: Poller


@pytest.fixture(scope="session")
def cycles_while_serving(demo_lake_root, spark, page) -> ServedCycles:
    """Build the demo lake with three cycles while the dashboard serves it and a thread keeps loading its
    pages: the first cycle lands 4,000 readings of 12 devices (dirty records and faults included), the next
    two 300 readings each, an hour apart."""
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig
    from orchestration.cycle import run_cycle

    settings = demo_lake_root
    fleets = [FleetConfig(devices=DEMO_DEVICES, readings=4000, dirty_rate=0.02, seed=11, start=DEMO_START)]
    fleets += [
        FleetConfig(devices=DEMO_DEVICES, readings=300, dirty_rate=0.02, seed=20 + i, start=LATER_START + i * HOUR)
        for i in range(2)
    ]
    poller = Poller(page, ["", "device", "anomalies", "quality"])
    poller.start()
    reports = []
    try:
        for fleet in fleets:
            produce(settings, fleet)
            reports.append(run_cycle(settings, spark=spark, echo=lambda _line: None))
    finally:
        poller.stop()
    return ServedCycles(settings, reports, poller)


@pytest.fixture(scope="session")
def demo_lake(cycles_while_serving) -> Settings:
    """The demo lake after its three cycles (see ``cycles_while_serving``)."""
    assert all(r.success for r in cycles_while_serving.reports), [r.failure for r in cycles_while_serving.reports]
    return cycles_while_serving.settings


@pytest.fixture(scope="session")
def demo_fleet_size() -> int:
    return DEMO_DEVICES


@pytest.fixture(scope="session")
def demo_sql(demo_lake):
    """``demo_sql(query, params)``: ask the demo lake directly, on a read-only connection to its warehouse
    closed at once (Parquet through ``read_parquet``): the oracle the dashboard's figures are checked against.
    Not while a cycle runs: the connection would make dbt's write fail."""

    def sql(query: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(demo_lake.lake_root.warehouse), read_only=True) as con:
            return con.execute(query, params or []).fetchall()

    return sql


# ---- the dashboard process and the browser -------------------------------------------------------------


@dataclass
class DashboardServer:
    url: str
    process: subprocess.Popen
    log: Path


@pytest.fixture(scope="session")
def dashboard(demo_lake_root) -> Iterator[DashboardServer]:
    """``lakehouse --lake <demo lake> dashboard`` in its own process, until the session ends."""
    port = free_port()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log = SCREENSHOTS / "dashboard-server.log"
    command = [sys.executable, "-m", "lakehouse.cli", "--lake", demo_lake_root.lake, "dashboard", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the dashboard did not start (exit {process.poll()}); its output:\n{log.read_text()}")
        time.sleep(0.3)
    yield DashboardServer(url, process, log)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Debian's headless Chromium through chromedriver, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed: run `make browser` (Debian: chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.TemporaryDirectory(prefix="dashboard-chromium-")
    options.add_argument(f"--user-data-dir={profile.name}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    yield driver
    driver.quit()
    profile.cleanup()


class Page:
    """What a test reads off a rendered dashboard page (Streamlit's test ids and our element keys)."""

    def __init__(self, driver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> Page:
        self.driver.get(f"{self.base_url}/{path}")
        return self.wait()

    def wait(self) -> Page:
        """Until the script has run and drawn its charts: the app is connected, idle and has a title."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def finished(driver) -> bool:
            apps = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"]')
            if not apps or apps[0].get_attribute("data-test-script-state") != "notRunning":
                return False
            if apps[0].get_attribute("data-test-connection-state") != "CONNECTED":
                return False
            charts = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')
            drawn = all(c.find_elements(By.CSS_SELECTOR, "svg.marks") for c in charts)
            return bool(driver.find_elements(By.CSS_SELECTOR, "h1")) and drawn

        time.sleep(0.3)  # let a rerun that a click or URL change triggers begin
        WebDriverWait(self.driver, PAGE_TIMEOUT_S, poll_frequency=0.2).until(finished)
        return self

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    @property
    def title(self) -> str:
        return self.find("h1")[0].text

    def metrics(self, key: str | None = None) -> dict[str, str]:
        """st.metric label -> value, optionally only inside the element with ``key``.

        Waits until the metrics are drawn and two reads agree, for the reason :meth:`table` waits."""
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        scope = f".st-key-{key} " if key else ""

        def read() -> dict[str, str]:
            values = {}
            for metric in self.find(f'{scope}[data-testid="stMetric"]'):
                label = metric.find_element("css selector", '[data-testid="stMetricLabel"]').text.strip()
                values[label] = metric.find_element("css selector", '[data-testid="stMetricValue"]').text.strip()
            return values

        seen: list[dict[str, str]] = []

        def settled(_driver) -> bool:
            try:
                seen.append(read())
            except StaleElementReferenceException:  # redrawn while read: read again
                return False
            return bool(seen[-1]) and len(seen) > 1 and seen[-1] == seen[-2]

        try:
            WebDriverWait(self.driver, PAGE_TIMEOUT_S / 2, poll_frequency=0.3).until(settled)
        except TimeoutException:
            body = self.driver.find_element("css selector", "body").text
            raise AssertionError(
                f"no settled metrics under {key or 'the page'} on {self.driver.current_url}; last read "
                f"{seen[-1] if seen else None}; the page shows:\n{body[:3000]}"
            ) from None
        return seen[-1]

    def table(self, key: str) -> list[list[str]]:
        """The rows (header first) of the st.table inside the element with ``key``, once it has rows.

        Waits for the table because a busy machine may report the script idle a moment before the
        browser has drawn the last elements it sent; a table that never comes fails with the page's
        text, so the failure says what the page showed instead."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, PAGE_TIMEOUT_S / 2, poll_frequency=0.2).until(
                lambda _driver: self.find(f".st-key-{key} table tr td")
            )
        except TimeoutException:
            body = self.driver.find_element("css selector", "body").text
            raise AssertionError(
                f"no table with key {key} on {self.driver.current_url}; errors {self.errors()}; the page shows:\n"
                f"{body[:3000]}"
            ) from None
        rows = []
        for tr in self.find(f".st-key-{key} table tr"):
            cells = tr.find_elements("css selector", "th, td")
            rows.append([c.text.strip() for c in cells])
        return rows

    def chart(self, key: str):
        charts = self.find(f'.st-key-{key} [data-testid="stVegaLiteChart"]')
        assert charts, f"no chart with key {key} on {self.driver.current_url}"
        return charts[0]

    def marks(self, key: str, mark: str) -> int:
        """How many marks of a kind (rect, rule, line, ...) the chart with ``key`` drew in its SVG (not
        counting axes and legends)."""
        css = f"g.mark-{mark}.role-mark > path, g.mark-{mark}.role-mark > line"
        return len(self.chart(key).find_elements("css selector", css))

    def errors(self) -> list[str]:
        return [e.text for e in self.find('[data-testid="stException"], [data-testid="stAlertContentError"]')]

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        height = self.driver.execute_script("return document.body.scrollHeight") or 2000
        self.driver.set_window_size(1400, max(2000, min(int(height) + 200, 8000)))
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture(scope="session")
def page(browser, dashboard) -> Page:
    return Page(browser, dashboard.url)


class Poller(threading.Thread):
    """Loads the dashboard's pages one after the other until stopped, noting what each load showed."""

    def __init__(self, page: Page, paths: list[str]) -> None:
        super().__init__(name="dashboard-poller", daemon=True)
        self.page, self.paths = page, paths
        self.loads = 0
        self.failures: list[tuple[str, str]] = []  # (path, what went wrong)
        self.statuses: list[str] = []  # the data-status line of every load
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for path in self.paths:
                if self._stop_event.is_set():
                    return
                self._stop_event.wait(PAUSE_BETWEEN_LOADS_S)  # a reader, not a load test: leave the cycles CPU
                try:
                    self.page.open(path)
                    self.loads += 1
                    self.statuses.append(" ".join(e.text for e in self.page.find(".st-key-data-status")))
                    errors = self.page.errors()
                    if errors:
                        self.failures.append((path, " | ".join(errors)))
                except Exception as exc:  # a timeout or a broken page: recorded, the polling goes on
                    self.failures.append((path, f"{type(exc).__name__}: {exc}"))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=PAGE_TIMEOUT_S + 30)


# ---- a tiny warehouse with exactly known rows ------------------------------------------------------------

AS_OF = datetime(2026, 3, 2, 12, 0, 0)  # the fleet clock of the tiny warehouse (naive UTC, as stored)

TINY_WAREHOUSE_SQL = """
create schema gold;
create schema silver;
create table gold.gold_device_health (
    device_id varchar, device_type varchar, site_id varchar, last_seen_at timestamp, readings_24h bigint,
    completeness_24h double, uptime_24h double, battery_pct double, open_anomalies bigint,
    health_status varchar, as_of_at timestamp);
insert into gold.gold_device_health values
    ('env-00001', 'environmental', 'site-01', '2026-03-02 11:59:30', 2880, 1.0, 1.0, 80, 0, 'healthy',
     '2026-03-02 12:00:00'),
    ('mch-00002', 'machine', 'site-02', '2026-03-02 11:59:50', 8000, 0.93, 1.0, 15, 1, 'degraded',
     '2026-03-02 12:00:00'),
    ('wrb-00003', 'wearable', 'site-03', '2026-03-01 08:00:00', 10, 0.01, 0.1, 50, 0, 'silent',
     '2026-03-02 12:00:00');
create table gold.gold_anomalies (
    anomaly_id varchar, device_id varchar, device_type varchar, site_id varchar, metric varchar,
    anomaly_kind varchar, started_at timestamp, ended_at timestamp, peak_value double, score double,
    severity varchar, reading_count bigint, last_ingested_at timestamp, event_date date);
insert into gold.gold_anomalies values
    -- ended 25 hours before the fleet clock: not in the last 24 hours
    ('a-old', 'env-00001', 'environmental', 'site-01', 'temperature_c', 'threshold_breach',
     '2026-03-01 10:00:00', '2026-03-01 11:00:00', 50, 0.2, 'warning', 12, '2026-03-01 12:00:00', '2026-03-01'),
    -- started before the window, ended inside it: counts
    ('a-across', 'mch-00002', 'machine', 'site-02', null, 'data_gap',
     '2026-03-01 09:00:00', '2026-03-01 13:00:00', null, 8.0, 'critical', 0, '2026-03-01 13:05:00', '2026-03-01'),
    ('a-inside', 'mch-00002', 'machine', 'site-02', 'vibration_mm_s', 'threshold_breach',
     '2026-03-02 11:00:00', '2026-03-02 11:02:00', 7.5, 0.6, 'critical', 13, '2026-03-02 11:05:00', '2026-03-02'),
    ('a-flat', 'env-00001', 'environmental', 'site-01', 'humidity_pct', 'flatline',
     '2026-03-02 06:00:00', '2026-03-02 07:00:00', 40, 6.0, 'warning', 120, '2026-03-02 07:05:00', '2026-03-02');
create table gold.gold_sensor_metrics_hourly (
    device_id varchar, device_type varchar, site_id varchar, metric varchar, hour_at timestamp,
    reading_count bigint, min_value double, max_value double, avg_value double, stddev_value double,
    p50_value double, p95_value double, expected_count double, completeness double,
    last_ingested_at timestamp, event_date date);
insert into gold.gold_sensor_metrics_hourly values
    ('mch-00002', 'machine', 'site-02', 'vibration_mm_s', '2026-03-02 10:00:00', 360, 1.0, 2.0, 1.5, 0.2, 1.5, 1.9,
     360, 1.0, '2026-03-02 11:05:00', '2026-03-02'),
    ('mch-00002', 'machine', 'site-02', 'vibration_mm_s', '2026-03-02 11:00:00', 360, 1.0, 7.5, 2.5, 1.2, 1.6, 7.0,
     360, 1.0, '2026-03-02 12:05:00', '2026-03-02'),
    ('mch-00002', 'machine', 'site-02', 'temperature_c', '2026-03-02 11:00:00', 360, 50, 52, 51, 0.5, 51, 52,
     360, 1.0, '2026-03-02 12:05:00', '2026-03-02');
create table silver.silver_readings (
    device_id varchar, device_type varchar, site_id varchar, event_at timestamp, event_date date, seq bigint,
    temperature_c double, humidity_pct double, pressure_hpa double, vibration_mm_s double, accel_x_g double,
    accel_y_g double, accel_z_g double, distance_mm double, battery_pct double, ingested_at timestamp);
insert into silver.silver_readings values
    ('mch-00002', 'machine', 'site-02', '2026-03-02 11:00:00', '2026-03-02', 1, 51, null, 2500, 1.2,
     null, null, null, null, 15, '2026-03-02 11:05:00'),
    ('mch-00002', 'machine', 'site-02', '2026-03-02 11:00:10', '2026-03-02', 2, 51.5, null, 2510, 7.5,
     null, null, null, null, 15, '2026-03-02 11:05:00');
create table silver.silver_rejected_readings (
    device_id varchar, event_at timestamp, rejection_reason varchar, rejected_metric varchar);
insert into silver.silver_rejected_readings values
    ('env-00001', '2026-03-02 10:00:00', 'out_of_range', 'temperature_c'),
    ('env-00001', '2026-03-02 10:00:30', 'out_of_range', 'temperature_c'),
    ('xyz-99999', '2026-03-02 10:00:00', 'unknown_device', null);
"""


@pytest.fixture
def tiny_lake(tmp_path) -> Settings:
    """A lake whose warehouse holds a handful of rows written by SQL (no pipeline run)."""
    settings = settings_for(tmp_path / "lake")
    settings.lake_root.local_path().mkdir(parents=True)
    with duckdb.connect(str(settings.lake_root.warehouse)) as con:
        con.execute(TINY_WAREHOUSE_SQL)
    return settings


@pytest.fixture
def tiny_data(tiny_lake, tmp_path):
    """DashboardData on the tiny lake, with its first copy of the warehouse taken."""
    from dashboards.data import DashboardData

    data = DashboardData(tiny_lake.lake_root, tmp_path / "snapshots", min_refresh_interval_s=0)
    assert data.refresh().status == "copied"
    return data


# ---- another process that holds the warehouse ------------------------------------------------------------

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
if len(sys.argv) > 3:
    con.execute(sys.argv[3])
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


class Holders:
    """Processes that open a DuckDB file and keep it open: ``hold(path, mode="write", sql=None)`` returns
    once the file is open (after running ``sql``); ``release(process)`` closes it."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []

    def hold(self, path: Path, mode: str = "write", sql: str | None = None) -> subprocess.Popen:
        args = [sys.executable, "-c", HOLDER, str(path), mode] + ([sql] if sql else [])
        process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.processes.append(process)
        line = process.stdout.readline()
        assert line.strip() == "holding", f"the holder could not open {path}: exit {process.wait()}"
        return process

    def release(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.stdin.write("\n")
            process.stdin.flush()
            process.wait(timeout=30)


@pytest.fixture
def holders() -> Iterator[Holders]:
    holders = Holders()
    yield holders
    for process in holders.processes:
        holders.release(process)


# ---- AWS ----------------------------------------------------------------------------------------------

AWS_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server in server mode on 127.0.0.1 (a free port), for the whole test session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch) -> None:
    """Dummy credentials and a region for code that builds its own boto3 clients (the CLI)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_CREDENTIALS["region_name"])
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
