"""A local Athena for tests: moto in server mode whose Athena queries are executed by DuckDB.

moto serves Athena, Glue and S3 over real HTTP; on its own it records Athena queries without running them.
:class:`AthenaStandIn` extends moto's Athena backend (in this process, the one the server thread serves) so
that ``StartQueryExecution``:

1. enforces Athena's rules on the statement: it parses as Athena SQL; no ``::`` casts; only functions
   Trino has (a function sqlglot does not know as Trino's and that is not in :data:`TRINO_FUNCTIONS`
   fails the query); a CTAS lists its partition columns last; a CTAS or INSERT writes at most 100
   partitions;
2. transpiles it from Trino to DuckDB with sqlglot and runs it in a fresh in-memory DuckDB;
3. keeps Glue in step with what it creates and drops: databases, tables (external, CTAS, views with their
   columns), partitions of partitioned tables written by CTAS and INSERT INTO.

**Where the data lives: in moto's S3.** A table is read from the objects under its Glue location (the
partitions Glue lists, or for partition projection every ``<column>=<value>/`` folder), fetched through
the S3 API into a local cache keyed by ETag, then read by DuckDB (Parquet, the OpenX JSON SerDe's NDJSON,
the OpenCSV SerDe's CSV). A CTAS or INSERT writes Parquet with DuckDB and PUTs the files under the table's
location. So dbt-athena's own S3 calls (deleting a table's or a partition's objects before it writes them)
act on the same data the queries read, exactly as on AWS.

``DataScannedInBytes`` is the size of the objects a query read (after partition pruning on literal
filters of partition columns), so benchmarks can report what Athena would bill.

What it cannot prove (only a live account can): Athena's own typing of literals, the values of
``approx_percentile`` (Athena's is approximate, DuckDB's here is exact), Lake Formation and IAM, and
Athena's performance.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb
import sqlglot
from sqlglot import exp

MAX_PARTITIONS_PER_QUERY = 100
# A table name in a statement: [catalog.][database.]table, quoted or not; groups: database, table.
_NAME = r'(?:[`"\w]+\.(?=[`"\w]+\.))?(?:([`"\w]+)\.)?([`"\w]+)'
ACCOUNT = "123456789012"

# Trino functions that sqlglot parses as plain (anonymous) calls; every other anonymous call fails the query
# as Athena would ("Function x not registered"). From the Trino 3.x function list used by Athena engine v3.
TRINO_FUNCTIONS = frozenset(
    """
    abs acos approx_distinct approx_percentile approx_set arbitrary array_agg array_distinct array_join
    array_max array_min array_position array_sort arrays_overlap asin atan atan2 avg bitwise_and bool_and
    bool_or cardinality cbrt ceil ceiling char_length chr codepoint coalesce concat concat_ws contains corr
    cos cosh count count_if covar_pop covar_samp current_date current_timestamp date date_add date_diff
    date_format date_parse date_trunc day day_of_month day_of_week day_of_year degrees element_at every exp
    filter first_value flatten floor format format_datetime from_base64 from_hex from_iso8601_date
    from_iso8601_timestamp from_unixtime greatest hour if is_finite is_nan json_extract json_extract_scalar
    json_format json_parse lag last_day_of_month last_value lead least length levenshtein_distance ln log
    log10 log2 lower lpad ltrim map max max_by md5 millisecond min min_by minute mod month now nth_value ntile
    nullif parse_datetime percent_rank pi power quarter radians rand random rank reduce regexp_extract
    regexp_extract_all regexp_like regexp_replace regexp_split repeat replace reverse round row_number rpad
    rtrim second sequence sha1 sha256 sha512 sign sin slice split split_part sqrt starts_with stddev
    stddev_pop stddev_samp strpos substr substring sum tan tanh to_base64 to_hex to_iso8601 to_milliseconds
    to_unixtime to_utf8 transform trim truncate try try_cast typeof upper url_extract_host uuid var_pop
    var_samp variance week week_of_year with_timezone year year_of_week zip zip_with at_timezone
    current_timezone from_utf8 human_readable_seconds parse_duration date_format cume_dist dense_rank
    is_infinite infinity nan approx_most_frequent checksum histogram map_agg multimap_agg geometric_mean
    kurtosis skewness regr_intercept regr_slope bitwise_or listagg format_number
    """.split()  # noqa: SIM905 - a word list reads better than 200 quoted strings
)

_HIVE_TO_DUCKDB = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "char": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "real": "FLOAT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
_DUCKDB_TO_HIVE = {
    "VARCHAR": "string",
    "BIGINT": "bigint",
    "HUGEINT": "bigint",
    "INTEGER": "int",
    "SMALLINT": "smallint",
    "TINYINT": "tinyint",
    "UBIGINT": "bigint",
    "UINTEGER": "bigint",
    "DOUBLE": "double",
    "FLOAT": "float",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    '"NULL"': "string",
    "NULL": "string",
}
# Athena's result-set type names (GetQueryResults ColumnInfo) for a Glue/Hive type.
_RESULT_TYPES = {"string": "varchar", "int": "integer", "float": "real", "array<bigint>": "array(bigint)"}


class AthenaRuleError(Exception):
    """A statement Athena would refuse; the message is what the query's StateChangeReason says."""


def duckdb_type(hive: str) -> str:
    hive = hive.strip().lower()
    if hive.startswith("decimal"):
        return hive.upper()
    if hive.startswith("array<"):
        return duckdb_type(hive[6:-1]) + "[]"
    if hive.startswith(("varchar", "char")):
        return "VARCHAR"
    if hive not in _HIVE_TO_DUCKDB:
        raise AthenaRuleError(f"the stand-in does not know the type {hive}")
    return _HIVE_TO_DUCKDB[hive]


def hive_type(duck: str) -> str:
    duck = duck.strip().upper()
    if duck.startswith("DECIMAL"):
        return duck.lower()
    if duck.endswith("[]"):
        return f"array<{hive_type(duck[:-2])}>"
    if duck.startswith("VARCHAR"):
        return "string"
    if duck not in _DUCKDB_TO_HIVE:
        raise AthenaRuleError(f"Athena has no column type for DuckDB's {duck}")
    return _DUCKDB_TO_HIVE[duck]


@dataclass
class Outcome:
    state: str = "SUCCEEDED"
    reason: str | None = None
    scanned_bytes: int = 0
    statement_type: str = "DML"


@dataclass
class StandInLog:
    """Every statement the stand-in ran, with its outcome (for tests and benchmarks)."""

    queries: list[tuple[str, Outcome]] = field(default_factory=list)


def _strip_comments(sql: str) -> str:
    sql = sql.strip()
    while True:
        if sql.startswith("--"):
            sql = sql.split("\n", 1)[1].strip() if "\n" in sql else ""
        elif sql.startswith("/*"):
            sql = sql.split("*/", 1)[1].strip()
        else:
            return sql.rstrip().rstrip(";")


def _unquote(name: str) -> str:
    return name.strip().strip("`\"'").lower()


class AthenaStandIn:
    """See the module docstring. ``install()`` hooks moto; ``uninstall()`` restores it."""

    def __init__(self, endpoint: str, region: str = "us-east-1", cache_dir: str | None = None) -> None:
        import boto3

        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
        )
        self.s3 = session.client("s3", endpoint_url=endpoint)
        self.glue = session.client("glue", endpoint_url=endpoint)
        self.region = region
        self.cache = Path(cache_dir or tempfile.mkdtemp(prefix="athena-standin-"))
        self.outcomes: dict[str, Outcome] = {}
        self.log = StandInLog()
        self._lock = threading.RLock()
        self._saved: dict[str, Any] = {}

    # ---- hooking moto ------------------------------------------------------------------------------------
    def install(self) -> None:
        from moto.athena.models import AthenaBackend, QueryResults
        from moto.athena.responses import AthenaResponse

        standin = self
        original_start = AthenaBackend.start_query_execution
        original_get = AthenaResponse.get_query_execution
        self._saved = {"start": original_start, "get": original_get}

        def start_query_execution(backend, query, context, config, workgroup, execution_parameters):
            exec_id = original_start(backend, query, context, config, workgroup, execution_parameters)
            database = (context or {}).get("Database") if isinstance(context, dict) else None
            outcome, columns, rows = standin.run(query, database)
            standin.outcomes[exec_id] = outcome
            if outcome.state == "SUCCEEDED" and columns is not None:
                backend.query_results[exec_id] = QueryResults(rows, columns)
            return exec_id

        def get_query_execution(response):
            body = json.loads(original_get(response))
            execution = body["QueryExecution"]
            outcome = standin.outcomes.get(execution["QueryExecutionId"])
            if outcome is not None:
                execution["Status"]["State"] = outcome.state
                if outcome.reason:
                    execution["Status"]["StateChangeReason"] = outcome.reason
                execution["Statistics"]["DataScannedInBytes"] = outcome.scanned_bytes
                execution["StatementType"] = outcome.statement_type
            return json.dumps(body)

        AthenaBackend.start_query_execution = start_query_execution
        AthenaResponse.get_query_execution = get_query_execution

    def uninstall(self) -> None:
        from moto.athena.models import AthenaBackend
        from moto.athena.responses import AthenaResponse

        if self._saved:
            AthenaBackend.start_query_execution = self._saved["start"]
            AthenaResponse.get_query_execution = self._saved["get"]
            self._saved = {}

    # ---- one statement -----------------------------------------------------------------------------------
    def run(self, query: str, database: str | None) -> tuple[Outcome, list[dict] | None, list[dict]]:
        with self._lock:
            outcome = Outcome()
            try:
                columns, rows = self._execute(_strip_comments(query), database or "default", outcome)
            except (AthenaRuleError, duckdb.Error, sqlglot.errors.SqlglotError) as exc:
                outcome.state, outcome.reason = "FAILED", f"{type(exc).__name__}: {exc}"
                columns, rows = None, []
            except Exception as exc:  # noqa: BLE001 - a gap in the stand-in: the query fails, with the trace
                import traceback

                outcome.state = "FAILED"
                outcome.reason = f"stand-in error {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
                columns, rows = None, []
            self.log.queries.append((query, outcome))
            return outcome, columns, rows

    def _execute(self, sql: str, database: str, outcome: Outcome) -> tuple[list[dict] | None, list[dict]]:
        if "::" in re.sub(r"'[^']*'", "''", sql):
            raise AthenaRuleError("line 1: mismatched input '::'. Athena has no '::' casts; use cast(x as type)")
        head = " ".join(sql.split()[:4]).upper()
        if re.match(r"^(CREATE|DROP|ALTER|MSCK|SHOW|DESCRIBE)\b", head):
            outcome.statement_type = "DDL"
        if re.match(r"^CREATE (DATABASE|SCHEMA)", head):
            return self._create_database(sql)
        if re.match(r"^DROP (DATABASE|SCHEMA)", head):
            return self._drop_database(sql)
        if re.match(r"^CREATE EXTERNAL TABLE", head):
            return self._create_external_table(sql, database)
        if re.match(r"^CREATE (OR REPLACE )?VIEW", head):
            return self._create_view(sql, database)
        if re.match(r"^CREATE TABLE", head):
            return self._ctas(sql, database, outcome)
        if re.match(r"^DROP (TABLE|VIEW)", head):
            return self._drop_table(sql, database)
        if re.match(r"^INSERT INTO", head):
            return self._insert(sql, database, outcome)
        if re.match(r"^(SELECT|WITH|\()", head):
            return self._select(sql, database, outcome)
        if re.match(r"^ALTER TABLE", head) and re.search(r"\bSET\s+TBLPROPERTIES\b", sql, re.I):
            return self._set_properties(sql, database)
        if re.match(r"^(ALTER TABLE|MSCK REPAIR)", head):
            raise AthenaRuleError(f"the stand-in does not run {head}: add it to tests/support/athena_standin.py")
        raise AthenaRuleError(f"the stand-in does not run: {head}")

    # ---- Glue helpers ------------------------------------------------------------------------------------
    def _get_table(self, database: str, name: str) -> dict | None:
        try:
            return self.glue.get_table(DatabaseName=database, Name=name)["Table"]
        except self.glue.exceptions.EntityNotFoundException:
            return None

    def _database_exists(self, database: str) -> bool:
        try:
            self.glue.get_database(Name=database)
            return True
        except self.glue.exceptions.EntityNotFoundException:
            return False

    def _require_database(self, database: str) -> None:
        if not self._database_exists(database):
            raise AthenaRuleError(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist")

    # ---- DDL -----------------------------------------------------------------------------------------------
    def _create_database(self, sql: str):
        match = re.match(r"CREATE\s+(?:DATABASE|SCHEMA)\s+(IF\s+NOT\s+EXISTS\s+)?([`\"\w]+)", sql, re.I)
        name = _unquote(match.group(2))
        if self._database_exists(name):
            if not match.group(1):
                raise AthenaRuleError(f"Database {name} already exists")
        else:
            self.glue.create_database(DatabaseInput={"Name": name})
        return None, []

    def _drop_database(self, sql: str):
        match = re.match(r"DROP\s+(?:DATABASE|SCHEMA)\s+(IF\s+EXISTS\s+)?([`\"\w]+)(\s+CASCADE)?", sql, re.I)
        name = _unquote(match.group(2))
        if not self._database_exists(name):
            if not match.group(1):
                raise AthenaRuleError(f"SCHEMA_NOT_FOUND: Schema '{name}' does not exist")
            return None, []
        tables = self.glue.get_tables(DatabaseName=name).get("TableList", [])
        if tables and not match.group(3):
            raise AthenaRuleError(f"Schema '{name}' is not empty; DROP ... CASCADE drops its tables")
        for table in tables:
            self.glue.delete_table(DatabaseName=name, Name=table["Name"])
        self.glue.delete_database(Name=name)
        return None, []

    def _create_external_table(self, sql: str, database: str):
        match = re.match(
            r"CREATE\s+EXTERNAL\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?" + _NAME + r"\s*\((.*?)\)\s*"
            r"(PARTITIONED\s+BY\s*\((.*?)\)\s*)?(.*)$",
            sql,
            re.I | re.S,
        )
        if not match:
            raise AthenaRuleError(f"cannot parse CREATE EXTERNAL TABLE: {sql[:200]}")
        db = _unquote(match.group(2) or database)
        name = _unquote(match.group(3))
        self._require_database(db)
        if self._get_table(db, name) is not None:
            if match.group(1):
                return None, []
            raise AthenaRuleError(f"Table {db}.{name} already exists")
        columns = _column_list(match.group(4))
        partitions = _column_list(match.group(6) or "")
        rest = match.group(7)
        location = re.search(r"LOCATION\s+'([^']+)'", rest, re.I)
        properties = dict(re.findall(r"'([^']+)'\s*=\s*'([^']*)'", _after(rest, "TBLPROPERTIES")))
        serde = re.search(r"SERDE\s+'([^']+)'", rest, re.I)
        stored = re.search(r"STORED\s+AS\s+(\w+)", rest, re.I)
        fmt = stored.group(1).lower() if stored else "textfile"
        serde_name = serde.group(1) if serde else ""
        if "JsonSerDe" in serde_name:
            fmt = "json"
        elif "OpenCSVSerde" in serde_name or (fmt == "textfile" and "field.delim" in rest):
            fmt = "csv"
        elif fmt == "textfile" and not serde_name:
            fmt = "text"
        properties["standin.format"] = fmt
        serde_name = serde_name or (
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
            if fmt == "parquet"
            else "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
        )
        self.glue.create_table(
            DatabaseName=db,
            TableInput={
                "Name": name,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {**properties, "EXTERNAL": "TRUE"},
                "PartitionKeys": [{"Name": c, "Type": t} for c, t in partitions],
                "StorageDescriptor": {
                    "Columns": [{"Name": c, "Type": t} for c, t in columns],
                    "Location": location.group(1) if location else "",
                    "SerdeInfo": {"SerializationLibrary": serde_name},
                },
            },
        )
        return None, []

    def _set_properties(self, sql: str, database: str):
        match = re.match(
            r"ALTER\s+TABLE\s+(?:([`\"\w]+)\.)?([`\"\w]+)\s+SET\s+TBLPROPERTIES\s*\((.*)\)", sql, re.I | re.S
        )
        db, name = _unquote(match.group(1) or database), _unquote(match.group(2))
        table = self._get_table(db, name)
        if table is None:
            raise AthenaRuleError(f"Table {db}.{name} does not exist")
        properties = dict(re.findall(r"'([^']+)'\s*=\s*'([^']*)'", match.group(3)))
        table_input = {k: table[k] for k in ("Name", "TableType", "StorageDescriptor", "PartitionKeys") if k in table}
        table_input["Parameters"] = {**table.get("Parameters", {}), **properties}
        self.glue.update_table(DatabaseName=db, TableInput=table_input)
        return None, []

    def _drop_table(self, sql: str, database: str):
        match = re.match(
            r"DROP\s+(TABLE|VIEW)\s+(IF\s+EXISTS\s+)?" + _NAME + r"",
            sql,
            re.I,
        )
        db, name = _unquote(match.group(3) or database), _unquote(match.group(4))
        if self._get_table(db, name) is None:
            if match.group(2):
                return None, []
            raise AthenaRuleError(f"Table {db}.{name} does not exist")
        # Athena's DROP TABLE of an external table leaves its objects in S3 (dbt-athena deletes them itself).
        self.glue.delete_table(DatabaseName=db, Name=name)
        return None, []

    def _create_view(self, sql: str, database: str):
        match = re.match(
            r"CREATE\s+(OR\s+REPLACE\s+)?VIEW\s+" + _NAME + r"\s+AS\s+(.*)$",
            sql,
            re.I | re.S,
        )
        db, name, body = _unquote(match.group(2) or database), _unquote(match.group(3)), match.group(4)
        self._require_database(db)
        existing = self._get_table(db, name)
        if existing is not None and not match.group(1):
            raise AthenaRuleError(f"View {db}.{name} already exists")
        con, _ = self._connection(body, db)
        described = con.execute(f"describe {self._to_duckdb(body, db)}").fetchall()
        columns = [{"Name": r[0], "Type": hive_type(r[1])} for r in described]
        table_input = {
            "Name": name,
            "TableType": "VIRTUAL_VIEW",
            "Parameters": {"presto_view": "true", "comment": "Presto View"},
            "ViewOriginalText": body,
            "ViewExpandedText": "/* Presto View */",
            "StorageDescriptor": {"Columns": columns, "Location": ""},
            "PartitionKeys": [],
        }
        if existing is not None:
            self.glue.update_table(DatabaseName=db, TableInput=table_input)
        else:
            self.glue.create_table(DatabaseName=db, TableInput=table_input)
        return None, []

    # ---- CTAS and INSERT -----------------------------------------------------------------------------------
    def _ctas(self, sql: str, database: str, outcome: Outcome):
        match = re.match(
            r"CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?" + _NAME + r"\s+WITH\s*\((.*?)\)\s*AS\s+(.*)$",
            sql,
            re.I | re.S,
        )
        if not match:
            raise AthenaRuleError(f"cannot parse CREATE TABLE AS: {sql[:200]}")
        db, name, props, body = (
            _unquote(match.group(2) or database),
            _unquote(match.group(3)),
            match.group(4),
            match.group(5),
        )
        self._require_database(db)
        if self._get_table(db, name) is not None:
            raise AthenaRuleError(f"TABLE_ALREADY_EXISTS: Table '{db}.{name}' already exists")
        properties = dict(re.findall(r"(\w+)\s*=\s*'([^']*)'", props))
        partitioned = re.search(r"partitioned_by\s*=\s*ARRAY\s*\[(.*?)\]", props, re.I | re.S)
        partition_columns = [_unquote(p) for p in partitioned.group(1).split(",")] if partitioned else []
        if properties.get("table_type", "hive").lower() == "iceberg":
            raise AthenaRuleError("the stand-in runs Hive tables only (table_type='iceberg' is not executed)")
        if "external_location" not in properties:
            raise AthenaRuleError(f"CTAS {db}.{name}: no external_location (the stand-in needs one)")
        location = properties["external_location"].rstrip("/") + "/"
        if self._list(location):
            raise AthenaRuleError(
                f"HIVE_PATH_ALREADY_EXISTS: Target directory for table '{db}.{name}' already exists: {location}"
            )
        con, scanned = self._connection(body, db)
        duck_sql = self._to_duckdb(body, db)
        described = con.execute(f"describe {duck_sql}").fetchall()
        names = [r[0].lower() for r in described]
        if partition_columns and names[-len(partition_columns) :] != partition_columns:
            raise AthenaRuleError(
                f"Partition keys must be the last columns in the table and in the same order as the "
                f"partition specification: {partition_columns}; the query gives {names}"
            )
        columns = [(r[0], hive_type(r[1])) for r in described]
        data = [c for c in columns if c[0].lower() not in partition_columns]
        keys = [c for c in columns if c[0].lower() in partition_columns]
        written = self._write(con, duck_sql, location, partition_columns, data)
        outcome.scanned_bytes = scanned
        self.glue.create_table(
            DatabaseName=db,
            TableInput={
                "Name": name,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"EXTERNAL": "TRUE", "classification": "parquet", "standin.format": "parquet"},
                "PartitionKeys": [{"Name": c, "Type": t} for c, t in keys],
                "StorageDescriptor": {
                    "Columns": [{"Name": c, "Type": t} for c, t in data],
                    "Location": location,
                    "SerdeInfo": {
                        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    },
                },
            },
        )
        self._add_partitions(db, name, location, keys, written)
        return None, []

    def _insert(self, sql: str, database: str, outcome: Outcome):
        match = re.match(
            r"INSERT\s+INTO\s+" + _NAME + r"\s*(\(([^)]*)\))?\s*(.*)$",
            sql,
            re.I | re.S,
        )
        db, name, column_list, body = (
            _unquote(match.group(1) or database),
            _unquote(match.group(2)),
            match.group(4),
            match.group(5),
        )
        table = self._get_table(db, name)
        if table is None:
            raise AthenaRuleError(f"TABLE_NOT_FOUND: Table '{db}.{name}' does not exist")
        data = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        keys = [(c["Name"], c["Type"]) for c in table.get("PartitionKeys", [])]
        target = [c for c, _ in data + keys]
        con, scanned = self._connection(body, db)
        duck_sql = self._to_duckdb(body, db)
        given = [_unquote(c) for c in column_list.split(",")] if column_list else target
        typed = ", ".join(
            f"cast(src.{_q(g)} as {duckdb_type(t)}) as {_q(c)}"
            for c, t in data + keys
            for g in [given[target.index(c)] if c in target else c]
        )
        query = f"select {typed} from ({duck_sql}) as src" if column_list else None
        if query is None:
            described = [r[0] for r in con.execute(f"describe {duck_sql}").fetchall()]
            typed = ", ".join(
                f"cast(src.{_q(s)} as {duckdb_type(t)}) as {_q(c)}"
                for (c, t), s in zip(data + keys, described, strict=True)
            )
            query = f"select {typed} from ({duck_sql}) as src"
        location = table["StorageDescriptor"]["Location"].rstrip("/") + "/"
        written = self._write(con, query, location, [c.lower() for c, _ in keys], data)
        outcome.scanned_bytes = scanned
        self._add_partitions(db, name, location, keys, written)
        return None, []

    def _write(self, con, query: str, location: str, partition_columns: list[str], data) -> list[tuple[str, ...]]:
        """Write the query's rows as Parquet under ``location`` (one folder per partition); returns the
        partition values written. At most 100 partitions, as Athena."""
        folder = Path(tempfile.mkdtemp(dir=self.cache, prefix="write-"))
        values: list[tuple[str, ...]] = []
        if partition_columns:
            cols = ", ".join(_q(c) for c in partition_columns)
            values = [
                tuple(_partition_text(v) for v in row)
                for row in con.execute(f"select distinct {cols} from ({query}) as q").fetchall()
            ]
            if len(values) > MAX_PARTITIONS_PER_QUERY:
                raise AthenaRuleError(
                    f"HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of {MAX_PARTITIONS_PER_QUERY} open writers "
                    f"for partitions/buckets ({len(values)} partitions)"
                )
            con.execute(
                f"copy ({query}) to '{folder}' (format parquet, partition_by ({cols}), "
                f"filename_pattern 'part-{{uuid}}')"
            )
        else:
            count = con.execute(f"select count(*) from ({query}) as q").fetchall()[0][0]
            if count:
                con.execute(f"copy ({query}) to '{folder}/part-{uuid.uuid4().hex}.parquet' (format parquet)")
        bucket, prefix = _split(location)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.s3.put_object(Bucket=bucket, Key=prefix + str(path.relative_to(folder)), Body=path.read_bytes())
        return values

    def _add_partitions(self, db: str, name: str, location: str, keys, values: list[tuple[str, ...]]) -> None:
        if not keys or not values:
            return
        existing = {
            tuple(p["Values"])
            for page in self.glue.get_paginator("get_partitions").paginate(DatabaseName=db, TableName=name)
            for p in page["Partitions"]
        }
        new = [v for v in values if v not in existing]
        for start in range(0, len(new), 100):
            self.glue.batch_create_partition(
                DatabaseName=db,
                TableName=name,
                PartitionInputList=[
                    {
                        "Values": list(v),
                        "StorageDescriptor": {
                            "Location": location + "/".join(f"{k}={x}" for (k, _), x in zip(keys, v, strict=True)) + "/"
                        },
                    }
                    for v in new[start : start + 100]
                ],
            )

    # ---- SELECT ---------------------------------------------------------------------------------------------
    def _select(self, sql: str, database: str, outcome: Outcome):
        con, scanned = self._connection(sql, database)
        result = con.execute(self._to_duckdb(sql, database))
        names = [d[0] for d in result.description]
        types = [hive_type(str(t)) for t in _result_types(con, result)]
        rows = result.fetchall()
        outcome.scanned_bytes = scanned
        column_info = [
            {
                "CatalogName": "hive",
                "SchemaName": "",
                "TableName": "",
                "Name": n,
                "Label": n,
                "Type": _result_type(t),
                "Precision": 0,
                "Scale": 0,
                "Nullable": "UNKNOWN",
                "CaseSensitive": False,
            }
            for n, t in zip(names, types, strict=True)
        ]
        header = {"Data": [{"VarCharValue": n} for n in names]}
        data = [{"Data": [_cell(v) for v in row]} for row in rows]
        return column_info, [header, *data]

    # ---- translating and reading ------------------------------------------------------------------------
    def _parse(self, sql: str) -> exp.Expression:
        statements = [s for s in sqlglot.parse(sql, read="athena", error_level=sqlglot.ErrorLevel.RAISE) if s]
        if len(statements) != 1:
            raise AthenaRuleError("Athena runs one statement per query")
        tree = statements[0]
        for call in tree.find_all(exp.Anonymous):
            if str(call.this).lower() not in TRINO_FUNCTIONS:
                raise AthenaRuleError(f"FUNCTION_NOT_FOUND: Function '{call.this}' not registered")
        return tree

    def _to_duckdb(self, sql: str, database: str) -> str:
        tree = self._parse(sql)
        for table in tree.find_all(exp.Table):
            table.set("catalog", None)
            if (table.db or "").lower() == "information_schema":  # DuckDB has its own; ours comes from Glue
                table.set("db", exp.to_identifier("information_schema_standin"))
        tree = tree.transform(_trino_to_duckdb)
        return tree.sql(dialect="duckdb")

    def _connection(self, sql: str, database: str) -> tuple[duckdb.DuckDBPyConnection, int]:
        """A DuckDB connection with a view per table and Glue view the query reads; and the bytes they read."""
        con = duckdb.connect()
        scanned = self._register(con, self._parse(sql), database, set())
        return con, scanned

    def _register(self, con, tree: exp.Expression, database: str, done: set) -> int:
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        scanned = 0
        prunes = _partition_filters(tree, database)
        for table in tree.find_all(exp.Table):
            name = table.name.lower()
            db = (table.db or "").lower() or None
            if (db is None and name in ctes) or not name:
                continue
            db = db or database
            if (db, name) in done:
                continue
            done.add((db, name))
            if db == "information_schema":
                self._information_schema(con, name)
                continue
            glue = self._get_table(db, name)
            if glue is None:
                raise AthenaRuleError(f"TABLE_NOT_FOUND: line 1: Table 'awsdatacatalog.{db}.{name}' does not exist")
            con.execute(f'create schema if not exists "{db}"')
            if glue.get("TableType") == "VIRTUAL_VIEW":
                body = glue["ViewOriginalText"]
                scanned += self._register(con, self._parse(body), db, done)
                con.execute(f'create or replace view "{db}"."{name}" as {self._to_duckdb(body, db)}')
            else:
                reader, size = self._reader(glue, prunes.get((db, name)))
                scanned += size
                con.execute(f'create or replace view "{db}"."{name}" as {reader}')
        return scanned

    def _information_schema(self, con, name: str) -> None:
        """``information_schema.tables`` / ``.columns`` from Glue, with Athena's type names."""
        if name not in ("tables", "columns"):
            raise AthenaRuleError(f"the stand-in has no information_schema.{name}")
        rows = []
        for page in self.glue.get_paginator("get_databases").paginate():
            for database in page["DatabaseList"]:
                for tables in self.glue.get_paginator("get_tables").paginate(DatabaseName=database["Name"]):
                    for table in tables["TableList"]:
                        kind = "VIEW" if table.get("TableType") == "VIRTUAL_VIEW" else "BASE TABLE"
                        columns = table["StorageDescriptor"]["Columns"] + table.get("PartitionKeys", [])
                        rows.append((database["Name"], table["Name"], kind, columns))
        con.execute('create schema if not exists "information_schema_standin"')
        if name == "tables":
            con.execute(
                "create table information_schema_standin.tables (table_catalog varchar, table_schema varchar, "
                "table_name varchar, table_type varchar)"
            )
            con.executemany(
                "insert into information_schema_standin.tables values ('awsdatacatalog', ?, ?, ?)",
                [(d, t, k) for d, t, k, _ in rows],
            )
        else:
            con.execute(
                "create table information_schema_standin.columns (table_catalog varchar, table_schema varchar, "
                "table_name varchar, column_name varchar, ordinal_position bigint, data_type varchar)"
            )
            values = [
                (
                    d,
                    t,
                    c["Name"],
                    i + 1,
                    _result_type(c["Type"].lower()) if c["Type"] != "timestamp" else "timestamp(3)",
                )
                for d, t, _, columns in rows
                for i, c in enumerate(columns)
            ]
            if values:
                con.executemany(
                    "insert into information_schema_standin.columns values ('awsdatacatalog', ?, ?, ?, ?, ?)", values
                )

    def _reader(self, table: dict, prune: list | None) -> tuple[str, int]:
        """A DuckDB SELECT over the table's objects, typed as Glue says, and the bytes of the objects read.
        ``prune``: predicates on partition values (see :func:`_partition_filters`); None reads them all."""
        descriptor = table["StorageDescriptor"]
        columns = [(c["Name"], c["Type"]) for c in descriptor["Columns"]]
        keys = [(c["Name"], c["Type"]) for c in table.get("PartitionKeys", [])]
        fmt = table.get("Parameters", {}).get("standin.format", "parquet")
        location = descriptor["Location"].rstrip("/") + "/"
        parts: list[tuple[tuple[str, ...], str]] = []  # (partition values, folder)
        if not keys:
            parts = [((), location)]
        elif table.get("Parameters", {}).get("projection.enabled") == "true":
            seen = {}
            for key in self._list(location):
                rel = key[len(location) :].split("/")
                values = tuple(seg.split("=", 1)[1] for seg in rel[: len(keys)] if "=" in seg)
                if len(values) == len(keys):
                    seen[values] = location + "/".join(rel[: len(keys)]) + "/"
            parts = sorted(seen.items())
        else:
            parts = [
                (tuple(p["Values"]), p["StorageDescriptor"]["Location"].rstrip("/") + "/")
                for page in self.glue.get_paginator("get_partitions").paginate(
                    DatabaseName=table["DatabaseName"], TableName=table["Name"]
                )
                for p in page["Partitions"]
            ]
        # partition pruning on literal filters (what Athena bills for)
        if prune is not None:
            names = [k.lower() for k, _ in keys]
            parts = [(v, folder) for v, folder in parts if _keep(prune, dict(zip(names, v, strict=True)))]
        selects, scanned = [], 0
        for values, folder in parts:
            files, size = self._fetch(folder, fmt)
            scanned += size
            if not files:
                continue
            source = _source(files, fmt, columns)
            cols = [f"cast({_q(c)} as {duckdb_type(t)}) as {_q(c)}" for c, t in columns]
            cols += [
                f"cast({_sql_literal(v)} as {duckdb_type(t)}) as {_q(k)}"
                for (k, t), v in zip(keys, values, strict=True)
            ]
            selects.append(f"select {', '.join(cols)} from {source}")
        if not selects:
            empty = ", ".join(f"cast(null as {duckdb_type(t)}) as {_q(c)}" for c, t in columns + keys)
            return f"select {empty} where false", scanned
        return " union all ".join(selects), scanned

    def _list(self, prefix_uri: str) -> list[str]:
        bucket, prefix = _split(prefix_uri)
        uris = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if not name.startswith((".", "_")) and not obj["Key"].endswith("/"):
                    uris.append(f"s3://{bucket}/{obj['Key']}")
        return uris

    def _fetch(self, folder: str, fmt: str) -> tuple[list[str], int]:
        """The objects under ``folder`` as local files (cached by ETag), and their total size."""
        bucket, prefix = _split(folder)
        files, size = [], 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if name.startswith((".", "_")) or obj["Key"].endswith("/") or obj["Size"] == 0:
                    continue
                if fmt == "parquet" and not (name.endswith(".parquet") or "." not in name or name.startswith("part")):
                    continue
                digest = hashlib.sha1(f"{bucket}/{obj['Key']}/{obj['ETag']}".encode()).hexdigest()
                local = self.cache / "objects" / (digest + ("." + name.rsplit(".", 1)[-1] if "." in name else ""))
                if not local.exists():
                    local.parent.mkdir(parents=True, exist_ok=True)
                    body = self.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    tmp = local.with_suffix(local.suffix + ".tmp")
                    tmp.write_bytes(body)
                    tmp.replace(local)
                files.append(str(local))
                size += obj["Size"]
        return files, size


# Trino functions sqlglot leaves as they are, and what DuckDB calls them.
_DUCKDB_NAMES = {"is_infinite": "isinf", "is_finite": "isfinite"}


def _trino_to_duckdb(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and str(node.this).lower() in _DUCKDB_NAMES:
        return exp.Anonymous(this=_DUCKDB_NAMES[str(node.this).lower()], expressions=node.expressions)
    # Trino: lower(to_hex(sha256(to_utf8(x)))) is the hex digest of x; DuckDB's sha256(x) gives it directly
    if isinstance(node, exp.Hex) and isinstance(node.this, exp.SHA2):
        inner = node.this.this
        if isinstance(inner, exp.Anonymous) and str(inner.this).lower() == "to_utf8":
            inner = inner.expressions[0]
        elif isinstance(inner, exp.Encode):
            inner = inner.this
        return exp.Anonymous(this="sha256", expressions=[inner])
    return node


# ---- small helpers -----------------------------------------------------------------------------------------
def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _after(text: str, word: str) -> str:
    index = text.upper().find(word)
    return text[index:] if index >= 0 else ""


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri.replace("s3a://", "s3://"))
    return parsed.netloc, parsed.path.lstrip("/")


def _column_list(text: str) -> list[tuple[str, str]]:
    """``a string, b array<bigint>`` -> [(a, string), (b, array<bigint>)], commas inside <> and () kept."""
    columns, depth, current = [], 0, ""
    for char in text:
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        if char == "," and depth == 0:
            columns.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        columns.append(current)
    out = []
    for column in columns:
        column = re.sub(r"\s+COMMENT\s+'[^']*'", "", column.strip(), flags=re.I)
        name, kind = column.split(None, 1)
        out.append((_unquote(name), kind.strip().lower()))
    return out


def _source(files: list[str], fmt: str, columns: list[tuple[str, str]]) -> str:
    listed = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    if fmt == "parquet":
        return f"read_parquet({listed}, union_by_name = true)"
    spec = "{" + ", ".join(f"'{c}': '{duckdb_type(t)}'" for c, t in columns) + "}"
    if fmt == "json":
        return f"read_json({listed}, format = 'newline_delimited', columns = {spec})"
    if fmt == "csv":
        varchar = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c, _ in columns) + "}"
        return f"read_csv({listed}, header = true, columns = {varchar}, quote = '\"', escape = '\"')"
    # plain text: one column per line
    return f"read_csv({listed}, header = false, columns = {spec}, delim = '\\x01', quote = '')"


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _partition_text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _partition_filters(tree: exp.Expression, database: str) -> dict[tuple[str, str], list | None]:
    """For each table the statement reads: the predicates of its SELECT's WHERE that compare one of its
    columns with literals (``c = 'x'``, ``c in (...)``, ``c >= date 'x'``, ``c between a and b``), as
    (column, operator, values). Several references to one table keep the union; a reference without such a
    predicate reads every partition (None). Predicates outside a view do not reach into it (Athena pushes
    them down: the stand-in then reads, and reports, more than Athena would, never less)."""
    found: dict[tuple[str, str], list | None] = {}
    for table in tree.find_all(exp.Table):
        key = ((table.db or database).lower(), table.name.lower())
        select = table.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        predicates = []
        if where is not None:
            alias = table.alias_or_name.lower()
            for conjunct in _conjuncts(where.this):
                predicate = _predicate(conjunct, alias)
                if predicate is not None:
                    predicates.append(predicate)
        if key not in found:
            found[key] = predicates or None
        elif found[key] is not None and predicates:
            found[key] = [("or", found[key], predicates)]
        else:
            found[key] = None
    return found


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def _literal_value(node: exp.Expression) -> str | None:
    if node is None or node.find(exp.Column) is not None:
        return None
    literal = node if isinstance(node, exp.Literal) else node.find(exp.Literal)
    return literal.name if literal is not None else None


def _column_of(node: exp.Expression, alias: str) -> str | None:
    if isinstance(node, exp.Column) and (not node.table or node.table.lower() == alias):
        return node.name.lower()
    return None


_COMPARISONS = {exp.EQ: "=", exp.GTE: ">=", exp.GT: ">", exp.LTE: "<=", exp.LT: "<"}


def _predicate(node: exp.Expression, alias: str) -> tuple | None:
    for kind, op in _COMPARISONS.items():
        if isinstance(node, kind):
            column, value = _column_of(node.this, alias), _literal_value(node.expression)
            return (column, op, [value]) if column and value is not None else None
    if isinstance(node, exp.In) and not node.args.get("query"):
        column = _column_of(node.this, alias)
        values = [_literal_value(v) for v in node.expressions]
        if column and values and all(v is not None for v in values):
            return (column, "in", values)
    if isinstance(node, exp.Between):
        column = _column_of(node.this, alias)
        low, high = _literal_value(node.args.get("low")), _literal_value(node.args.get("high"))
        if column and low is not None and high is not None:
            return (column, "between", [low, high])
    return None


def _keep(predicates: list, values: dict[str, str]) -> bool:
    """Whether a partition with ``values`` can hold rows the predicates accept (other columns: it can)."""
    for predicate in predicates:
        if predicate[0] == "or":
            if not (_keep(predicate[1], values) or _keep(predicate[2], values)):
                return False
            continue
        column, op, literals = predicate
        if column not in values:
            continue
        value = values[column]
        if op == "=":
            ok = value == literals[0]
        elif op == "in":
            ok = value in literals
        elif not all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for v in [value, *literals]):
            ok = True  # ranges are compared only between ISO dates (text order is date order)
        elif op == "between":
            ok = literals[0] <= value <= literals[1]
        else:
            ok = {">=": value >= literals[0], ">": value > literals[0], "<=": value <= literals[0]}.get(
                op, value < literals[0]
            )
        if not ok:
            return False
    return True


def _result_types(con, result) -> list[str]:
    return [str(d[1]) for d in result.description]


def _result_type(hive: str) -> str:
    if hive.startswith("decimal"):
        return "decimal"
    if hive.startswith("array"):
        return "array"
    return _RESULT_TYPES.get(hive, hive)


def _cell(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"VarCharValue": "true" if value else "false"}
    if hasattr(value, "isoformat") and hasattr(value, "hour"):
        return {"VarCharValue": value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}
    if hasattr(value, "isoformat"):
        return {"VarCharValue": value.isoformat()}
    if isinstance(value, list):
        return {"VarCharValue": "[" + ", ".join(str(v) for v in value) + "]"}
    return {"VarCharValue": str(value)}
