"""The lake layout under one root URI: a local folder (``./lake``) or ``s3://bucket/prefix``.

Every path in the project is built here, so the layout is written down once:

    landing/readings/YYYY/MM/DD/HH/*.json   newline-delimited JSON, as Firehose delivers it
    landing/<source>/**/*.json              other sources (lakehouse/source_contracts.py), e.g. customer
    bronze/readings/event_date=D/*.parquet  Spark's bronze, one folder per event date
    quarantine/readings/ingest_date=D/      landing lines that failed parsing or the contract
    _checkpoints/<job>/                     Spark Structured Streaming checkpoints
    _manifests/<job>/batch-N.json           one manifest per bronze micro-batch: files and counts
    ops/<table>/*.json                      run history and gate results (ops_runs, ops_gate_results)
    gx/data_docs/                           Great Expectations Data Docs
    warehouse.duckdb                        the local dbt warehouse (target "local" only)

URIs are passed to the engines unchanged; only the local case is turned into an absolute path, because
Spark, DuckDB and dbt may run with another working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

_REMOTE_SCHEMES = ("s3", "s3a", "s3n")


@dataclass(frozen=True)
class Lake:
    root: str

    def __post_init__(self) -> None:
        parsed = urlparse(self.root)
        if parsed.scheme in _REMOTE_SCHEMES:
            if not parsed.netloc:
                raise ValueError(f"lake URI '{self.root}' has no bucket; use s3://bucket/prefix")
            object.__setattr__(self, "root", self.root.rstrip("/"))
        elif parsed.scheme in ("", "file"):
            local = parsed.path if parsed.scheme == "file" else self.root
            object.__setattr__(self, "root", str(Path(local).expanduser().resolve()))
        else:
            raise ValueError(
                f"lake URI '{self.root}' has scheme '{parsed.scheme}'; use a local folder or s3://bucket/prefix"
            )

    @property
    def is_local(self) -> bool:
        return not self.root.startswith(tuple(f"{s}://" for s in _REMOTE_SCHEMES))

    def uri(self, *parts: str) -> str:
        """The URI of a path under the lake, as the engines want it."""
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def local_path(self, *parts: str) -> Path:
        if not self.is_local:
            raise ValueError(f"{self.root} is not a local lake; this step needs a local folder")
        return Path(self.uri(*parts))

    # The layout.
    @property
    def landing_readings(self) -> str:
        return self.uri("landing", "readings")

    @property
    def bronze_readings(self) -> str:
        return self.uri("bronze", "readings")

    @property
    def quarantine_readings(self) -> str:
        return self.uri("quarantine", "readings")

    # Other sources (lakehouse/source_contracts.py) have the same layout under their own name; landing(
    # "readings") is landing_readings, and so on.
    def landing(self, source: str) -> str:
        return self.uri("landing", source)

    def bronze(self, source: str) -> str:
        return self.uri("bronze", source)

    def quarantine(self, source: str) -> str:
        return self.uri("quarantine", source)

    def checkpoint(self, job: str) -> str:
        return self.uri("_checkpoints", job)

    def manifests(self, job: str) -> str:
        return self.uri("_manifests", job)

    def ops(self, table: str) -> str:
        return self.uri("ops", table)

    @property
    def data_docs(self) -> str:
        return self.uri("gx", "data_docs")

    @property
    def warehouse(self) -> Path:
        return self.local_path("warehouse.duckdb")
