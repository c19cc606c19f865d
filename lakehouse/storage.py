"""Whole-object storage for the driver side: landing files, manifests, ops records.

One small interface, one implementation per backend (a local folder, S3 through boto3), chosen by the
lake URI. Writes are atomic for readers: locally a file is written under a temporary name in the same
folder and renamed; on S3 a PUT is atomic by nature.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

if TYPE_CHECKING:
    from lakehouse.config import Settings


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
    """Objects in S3 through ``client``, a boto3 S3 client (build one with ``lakehouse.aws.s3_storage``,
    which applies the settings' region, endpoint, timeouts and retries)."""

    def __init__(self, client) -> None:
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


def storage_for(uri: str, settings: Settings | None = None) -> Storage:
    """Local folder or S3 for ``uri``. S3 is reached with ``settings``' region, endpoint, timeouts and
    retries (lakehouse/aws.py); without settings, the defaults of :class:`Settings` apply (botocore then
    still honours ``AWS_ENDPOINT_URL`` from the environment). Code that has the settings passes them."""
    if not uri.startswith(("s3://", "s3a://")):
        return LocalStorage()
    from lakehouse.aws import s3_storage
    from lakehouse.config import Settings

    return s3_storage(settings if settings is not None else Settings())
