"""Whole-object storage for the driver side: landing files, manifests, ops records.

One small interface, one implementation per backend (a local folder, S3 through boto3), chosen by the
lake URI. Writes are atomic for readers: locally a file is written under a temporary name in the same
folder and renamed; on S3 a PUT is atomic by nature.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse


class Storage(Protocol):
    def write_bytes(self, uri: str, data: bytes) -> None: ...
    def read_bytes(self, uri: str) -> bytes: ...
    def list(self, prefix_uri: str, suffix: str = "") -> list[str]: ...
    def exists(self, uri: str) -> bool: ...


class LocalStorage:
    def write_bytes(self, uri: str, data: bytes) -> None:
        target = Path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A leading dot keeps the half-written file out of Spark's and DuckDB's listings.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read_bytes(self, uri: str) -> bytes:
        return Path(uri).read_bytes()

    def list(self, prefix_uri: str, suffix: str = "") -> list[str]:
        root = Path(prefix_uri)
        if not root.exists():
            return []
        return sorted(str(p) for p in root.rglob(f"*{suffix}") if p.is_file() and not p.name.startswith((".", "_")))

    def exists(self, uri: str) -> bool:
        return Path(uri).exists()


class S3Storage:
    def __init__(self, client=None, timeout_s: float = 30.0) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3", config=Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 5})
            )
        self._s3 = client

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        return parsed.netloc, parsed.path.lstrip("/")

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = self._split(uri)
        self._s3.put_object(Bucket=bucket, Key=key, Body=data)

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = self._split(uri)
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def list(self, prefix_uri: str, suffix: str = "") -> list[str]:
        bucket, prefix = self._split(prefix_uri.rstrip("/") + "/")
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if obj["Key"].endswith(suffix) and not name.startswith((".", "_")):
                    keys.append(f"s3://{bucket}/{obj['Key']}")
        return sorted(keys)

    def exists(self, uri: str) -> bool:
        bucket, key = self._split(uri)
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
            return True
        except self._s3.exceptions.ClientError:
            return False


def storage_for(uri: str) -> Storage:
    return S3Storage() if uri.startswith(("s3://", "s3a://")) else LocalStorage()
