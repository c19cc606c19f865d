"""Where the JVM's and Spark's own log lines go: a file, not the user's terminal.

A Spark start prints a screenful before the first line a user came for: the JVM's "Using incubator
modules", log4j's default-profile notice, the loopback-hostname and native-hadoop warnings. They help
whoever debugs Spark and nobody else, so they go to ``<lake>/_logs/spark.log`` (a lake on S3: the user's
cache folder), and the command says once where that file is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lakehouse.config import USER_CACHE_DIR
from lakehouse.lake import Lake

LOG_NAME = "spark.log"

# log4j2 for the driver JVM: everything at WARN or above into one appending file, nothing on the console.
_LOG4J2 = """\
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yyyy-MM-dd HH:mm:ss}} %p %c{{1}}: %m%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
"""


def log_folder(lake: Lake) -> Path:
    """``<lake>/_logs`` for a local lake; for an S3 lake, a folder of the user's cache named after it."""
    if lake.is_local:
        return lake.local_path("_logs")
    return USER_CACHE_DIR / "logs" / lake.root.replace("://", "_").replace("/", "_")


def log4j_options(lake: Lake) -> tuple[str, Path]:
    """The driver's Java option that sends log4j to the lake's Spark log, and that log's path."""
    folder = log_folder(lake)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / LOG_NAME
    config = folder / "log4j2.properties"
    text = _LOG4J2.format(log=log)
    if not config.exists() or config.read_text() != text:
        config.write_text(text)
    return f"-Dlog4j2.configurationFile=file:{config}", log


@contextmanager
def jvm_stderr_to(log: Path) -> Iterator[None]:
    """While the JVM starts, point this process's standard error (fd 2) at ``log``.

    PySpark starts the JVM as a child that inherits fd 2, so what the JVM itself prints (the incubator
    warning comes from the java launcher, before log4j exists) lands in the log for the JVM's whole life;
    Python's own standard error is restored as soon as the JVM is up.
    """
    saved = os.dup(2)
    target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)
