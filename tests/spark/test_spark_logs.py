"""The JVM's and Spark's start-up chatter goes to the lake's Spark log, not the user's terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
STARTUP_NOISE = ("Using incubator modules", "log4j", "NativeCodeLoader", "resolves to a loopback address")


def test_a_command_that_starts_spark_keeps_jvm_warnings_in_the_lake_log_and_says_where(tmp_path):
    lake = tmp_path / "lake"
    completed = subprocess.run(
        [LAKEHOUSE, "--lake", str(lake), "bronze", "--once"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    terminal = completed.stdout + completed.stderr
    for noise in STARTUP_NOISE:
        assert noise not in terminal, f"'{noise}' reached the terminal:\n{terminal}"
    log = lake / "_logs" / "spark.log"
    assert f"JVM and Spark log lines go to {log}" in completed.stderr
    assert "bronze: no new landing files" in completed.stdout
    assert "Using incubator modules" in log.read_text(), "the JVM's own warning is kept in the log"
