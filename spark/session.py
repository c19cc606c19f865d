"""The Spark session for the bronze job: UTC everywhere, small shuffles, quiet logs."""

from __future__ import annotations

import sys

from pyspark import SparkContext
from pyspark.sql import SparkSession

from lakehouse.config import Settings
from spark.logs import jvm_stderr_to, log4j_options

SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # A laptop has few cores: 200 shuffle partitions would mostly be empty tasks.
    "spark.sql.shuffle.partitions": "4",
    # A partitioned write (bronze by event date) sorts every task's rows by partition unless it may keep
    # a few files open at once: a batch's task holds rows of one to a few dates, so no sort. Beyond this
    # many dates in a task Spark falls back to sorting the rest (bounded memory either way).
    "spark.sql.maxConcurrentOutputFileWriters": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.streaming.stopGracefullyOnShutdown": "true",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}


def build_session(settings: Settings, app_name: str = "lakehouse-bronze") -> SparkSession:
    """Get or create the session. On a cluster (spark-submit) the master comes from the submit command."""
    builder = SparkSession.builder.appName(app_name)
    conf = dict(SESSION_CONF)
    starts_jvm = bool(settings.spark_master) and SparkContext._active_spark_context is None
    if settings.spark_master:
        builder = builder.master(settings.spark_master)
        builder = builder.config("spark.driver.memory", settings.spark_driver_memory)
        # Locally this process starts the driver JVM: its start-up chatter goes to the lake's Spark log.
        # Under spark-submit (EMR, Glue) the cluster's own logging stays in charge.
        log_option, log = log4j_options(settings.lake_root)
        conf["spark.driver.extraJavaOptions"] = f"{conf['spark.driver.extraJavaOptions']} {log_option}"
    for key, value in conf.items():
        builder = builder.config(key, value)
    if starts_jvm:
        with jvm_stderr_to(log):
            spark = builder.getOrCreate()
        print(f"spark: JVM and Spark log lines go to {log}", file=sys.stderr, flush=True)
    else:
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
