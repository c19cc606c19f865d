"""File operations through Hadoop's FileSystem API, so the same code works on file://, s3:// (EMRFS)
and any other store the Spark cluster is configured for; nothing here assumes a local disk."""

from __future__ import annotations

from pyspark.sql import SparkSession


class HadoopFS:
    def __init__(self, spark: SparkSession, root_uri: str) -> None:
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()
        # Looked up once: py4j resolves ``jvm.org.apache.hadoop.fs.Path`` one package at a time, and each
        # step that is not a class makes the JVM search every jar for it, several round trips per call.
        self._path_class = self._jvm.org.apache.hadoop.fs.Path
        self._fs = self._path(root_uri).getFileSystem(self._conf)

    def _path(self, uri: str):
        return self._path_class(uri)

    def exists(self, uri: str) -> bool:
        return bool(self._fs.exists(self._path(uri)))

    def delete(self, uri: str, recursive: bool = True) -> None:
        path = self._path(uri)
        if self._fs.exists(path):
            self._fs.delete(path, recursive)

    def mkdirs(self, uri: str) -> None:
        self._fs.mkdirs(self._path(uri))

    def list_dirs(self, uri: str) -> list[str]:
        if not self.exists(uri):
            return []
        return sorted(s.getPath().getName() for s in self._fs.listStatus(self._path(uri)) if s.isDirectory())

    def list_files(self, uri: str, suffix: str = "") -> list[str]:
        """Names (not paths) of the files directly under ``uri`` that end with ``suffix``."""
        if not self.exists(uri):
            return []
        return sorted(
            s.getPath().getName()
            for s in self._fs.listStatus(self._path(uri))
            if s.isFile() and s.getPath().getName().endswith(suffix)
        )

    def rename(self, src: str, dst: str) -> None:
        """Move a file; an existing target is replaced (a retried batch overwrites its own files)."""
        dst_path = self._path(dst)
        if self._fs.exists(dst_path):
            self._fs.delete(dst_path, False)
        self._fs.mkdirs(dst_path.getParent())
        if not self._fs.rename(self._path(src), dst_path):
            raise OSError(f"could not move {src} to {dst}")

    def write_text(self, uri: str, text: str) -> None:
        """Write a small file atomically: a hidden temporary file, then a rename."""
        final = self._path(uri)
        tmp = self._path(f"{final.getParent().toString()}/.{final.getName()}.tmp")
        stream = self._fs.create(tmp, True)
        try:
            stream.write(bytearray(text.encode()))
        finally:
            stream.close()
        self.rename(tmp.toString(), uri)

    def read_text(self, uri: str) -> str:
        stream = self._fs.open(self._path(uri))
        try:
            reader = self._jvm.java.io.BufferedReader(self._jvm.java.io.InputStreamReader(stream, "UTF-8"))
            lines = []
            line = reader.readLine()
            while line is not None:
                lines.append(line)
                line = reader.readLine()
            return "\n".join(lines)
        finally:
            stream.close()
