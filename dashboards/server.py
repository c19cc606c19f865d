"""Start the dashboard: Streamlit's server in this process, on localhost, reading one local lake."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

APP = Path(__file__).resolve().parent / "app.py"


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8501
    open_browser: bool = False


def streamlit_flags(options: ServeOptions) -> dict[str, object]:
    """Streamlit's configuration, as ``streamlit run`` flags would set it (no file, no environment)."""
    return {
        "server.address": options.host,
        "server.port": options.port,
        "server.headless": not options.open_browser,
        # The app reloads data by itself; watching source files only costs inotify handles.
        "server.fileWatcherType": "none",
        "server.runOnSave": False,
        "browser.gatherUsageStats": False,
        "client.toolbarMode": "minimal",
        "theme.base": "light",
    }


def serve(settings: Settings, options: ServeOptions) -> int:
    """Serve the dashboard until interrupted; returns the exit code."""
    lake = settings.lake_root
    if not lake.is_local:
        raise LakehouseError(
            f"the local dashboard reads the DuckDB warehouse of a local lake, and {lake.root} is remote; "
            f"use `lakehouse quicksight deploy` for dashboards on Athena, or pass a local --lake"
        )
    if not 0 < options.port < 65536:
        raise LakehouseError(f"--port {options.port} is not a TCP port; choose one between 1 and 65535")
    from streamlit.web import bootstrap

    with tempfile.TemporaryDirectory(prefix="lakehouse-dashboard-") as snapshots:
        flags = streamlit_flags(options)
        bootstrap.load_config_options(flag_options=flags)
        print(f"dashboard on http://{options.host}:{options.port}/ for the lake {lake.root} (Ctrl-C stops it)")
        bootstrap.run(str(APP), False, ["--lake", lake.root, "--snapshot-dir", snapshots], flags)
    return 0
