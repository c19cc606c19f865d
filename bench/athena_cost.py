"""What Athena would bill: bytes scanned per dbt model (full and incremental build) and per dashboard query,
measured on the Athena stand-in (tests/support/athena_standin.py: moto over HTTP, queries run by DuckDB).

The stand-in reports as ``DataScannedInBytes`` the size of the S3 objects a query read, after pruning the
partitions that literal filters on partition columns exclude (``event_date = date '...'``, ``in``,
ranges), as Athena does for Hive tables and partition projection. It does not push a filter through a view
into the table below (Athena does), so a model reading bronze through ``stg_bronze__readings`` shows the
bronze it would read without that pushdown: an upper bound. Bytes are of the Parquet DuckDB writes here;
Athena's own CTAS files differ in size (compression, row groups) but not in which partitions are read.

Bronze comes from bench/transform.py's generator (``--readings`` readings over ``--devices`` devices, then
1 % more as one new batch, a tenth of it late for the previous day). Printed: per model, bytes scanned by its
queries in the full build and in the incremental one (and their ratio); per dashboard query (the QuickSight
data sets' SELECTs over the gold tables, and the same filtered to the last day), bytes scanned.

    .venv/bin/python bench/athena_cost.py [--readings 200000] [--devices 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import sys
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.transform import INTERVAL_S, START, readings_sql, write_batch  # noqa: E402
from lakehouse.config import Settings  # noqa: E402
from lakehouse.registry import fleet  # noqa: E402

BUCKET = "bench-athena"
NODE = re.compile(r'"node_id": "([^"]+)"')


def start_standin() -> tuple[object, object, str]:
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.support.athena_standin import AthenaStandIn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    standin = AthenaStandIn(endpoint)
    standin.install()
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    return server, standin, endpoint


def upload(lake: Path, endpoint: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for path in sorted((lake / "bronze").rglob("*.parquet")):
        s3.put_object(Bucket=BUCKET, Key=f"lake/{path.relative_to(lake)}", Body=path.read_bytes())


def scanned_by_node(standin, since: int) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for query, outcome in standin.log.queries[since:]:
        match = NODE.search(query[:400])
        if match and match.group(1).startswith("model."):
            totals[match.group(1).removeprefix("model.lakehouse.")] += outcome.scanned_bytes
    return dict(totals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=20)
    args = parser.parse_args(argv)

    import duckdb

    from orchestration.athena import athena_init, run_query
    from orchestration.transform import transform

    server, standin, endpoint = start_standin()
    lake = Path(tempfile.mkdtemp(prefix="bench-athena-"))
    (lake / "bronze" / "readings").mkdir(parents=True)
    settings = Settings(
        lake=f"s3://{BUCKET}/lake",
        dbt_target="athena",
        aws_endpoint_url=endpoint,
        athena_work_group="primary",
        athena_results_uri=f"s3://{BUCKET}/athena-results/",
        athena_data_uri=f"s3://{BUCKET}/warehouse/",
        pii_salt="bench",
    )
    rate = sum(1.0 / INTERVAL_S[d.device_type] for d in fleet(args.devices))
    full_s = args.readings / rate
    increment_s = full_s * 0.01
    reference = (START + timedelta(seconds=full_s + increment_s, hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    vars = {"reference_time": reference}
    try:
        with duckdb.connect() as con:
            write_batch(con, lake, readings_sql(args.devices, 0, full_s, 0, None), 0)
        upload(lake, endpoint)
        athena_init(settings, echo=lambda _line: None)
        began, mark = time.perf_counter(), len(standin.log.queries)
        full = transform(settings, vars=vars, data_tests=False)
        assert full.success, full.failures
        full_seconds, full_bytes = time.perf_counter() - began, scanned_by_node(standin, mark)
        with duckdb.connect() as con:
            late = START + timedelta(seconds=full_s - 86400 * 0.5)
            write_batch(con, lake, readings_sql(args.devices, full_s, full_s + increment_s, 1, None), 1)
            write_batch(con, lake, readings_sql(args.devices, full_s - 3600, full_s - 3600 + increment_s / 10, 2,
                                                late + timedelta(days=1)), 2)  # fmt: skip
        upload(lake, endpoint)
        began, mark = time.perf_counter(), len(standin.log.queries)
        incremental = transform(settings, vars=vars, data_tests=False)
        assert incremental.success, incremental.failures
        incremental_seconds, incremental_bytes = time.perf_counter() - began, scanned_by_node(standin, mark)

        print(f"bytes scanned per model, {args.readings:,} readings, then 1 % more (stand-in, see docstring)")
        print(f"{'model':36} {'full':>14} {'incremental':>14} {'share':>7}")
        for name in sorted(set(full_bytes) | set(incremental_bytes)):
            f, i = full_bytes.get(name, 0), incremental_bytes.get(name, 0)
            share = f"{100 * i / f:6.1f}%" if f else "      -"
            print(f"{name:36} {f:>14,} {i:>14,} {share}")
        print(f"{'total':36} {sum(full_bytes.values()):>14,} {sum(incremental_bytes.values()):>14,}")
        print(f"(full build {full_seconds:.0f} s, incremental {incremental_seconds:.0f} s on the stand-in)")

        from dashboards.quicksight.definitions import TABLES

        print("\nbytes scanned per dashboard query (QuickSight data sets: their columns of a gold table)")
        last_day = (START + timedelta(seconds=full_s + increment_s)).date().isoformat()
        for table in TABLES:
            schema = f"{settings.athena_schema}_{'gold' if table.layer == 'gold' else 'silver'}"
            columns = ", ".join(f'"{name}"' for name, _ in table.columns)
            for label, where in (("all", ""), ("last day", f" where event_date = date '{last_day}'")):
                if where and "event_date" not in {n for n, _ in table.columns}:
                    continue
                query_id = run_query(settings, f'select {columns} from "{schema}"."{table.name}"{where}')
                outcome = standin.outcomes[query_id]
                print(f"  {table.name:32} {label:9} {outcome.scanned_bytes:>12,} bytes")
        print(
            json.dumps({"full_bytes": sum(full_bytes.values()), "incremental_bytes": sum(incremental_bytes.values())})
        )
    finally:
        standin.uninstall()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
