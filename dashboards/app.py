"""The Streamlit script of ``lakehouse dashboard`` (Streamlit runs it once per page view and interaction).

Arguments come after Streamlit's own, from :func:`dashboards.server.serve`:
``--lake <root> [--snapshot-dir <folder>]``. One :class:`~dashboards.data.DashboardData` per server
process is shared by every browser session (``st.cache_resource``), so the warehouse is copied once per
change, not once per visitor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

from dashboards.data import DashboardData
from dashboards.pages import Pages
from lakehouse.lake import Lake


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dashboards/app.py")
    parser.add_argument("--lake", required=True, help="lake root (a local folder)")
    parser.add_argument("--snapshot-dir", help="folder for the private copies of the warehouse")
    return parser.parse_args(argv)


@st.cache_resource
def dashboard_data(lake_root: str, snapshot_dir: str | None) -> DashboardData:
    return DashboardData(Lake(lake_root), Path(snapshot_dir) if snapshot_dir else None)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    st.set_page_config(page_title="IoT sensor lakehouse", page_icon=":material/sensors:", layout="wide")
    data = dashboard_data(args.lake, args.snapshot_dir)
    navigation = st.navigation(Pages(data).build())
    st.sidebar.caption(f"Lake: {data.lake.root}")
    navigation.run()


main(sys.argv[1:])
