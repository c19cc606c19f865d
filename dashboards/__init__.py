"""Dashboards on gold: a local web dashboard (``lakehouse dashboard``) and QuickSight definitions for AWS
(``lakehouse quicksight deploy``).

- ``snapshot``   a private copy of the DuckDB warehouse, taken only while nobody writes it, so the
                 dashboard can never block a cycle
- ``data``       the queries behind every page (parameterised), returning DataFrames
- ``charts``     Altair charts built from those DataFrames
- ``app``        the Streamlit script (pages: fleet, device, anomalies, data quality)
- ``server``     starts Streamlit in this process on localhost
- ``quicksight`` the same pages as QuickSight definitions, and their deployment through boto3
"""

# The pages of the dashboard, local and on QuickSight alike: url path / sheet id -> title.
PAGES = {
    "fleet": "Fleet overview",
    "device": "Device detail",
    "anomalies": "Anomalies",
    "quality": "Data quality",
}
