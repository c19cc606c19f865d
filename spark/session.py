"""The Spark session for the bronze job: UTC everywhere, small shuffles, quiet logs."""

from __future__ import annotations

from pyspark.sql import SparkSession

from lakehouse.config import Settings

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
    if settings.spark_master:
        builder = builder.master(settings.spark_master)
        builder = builder.config("spark.driver.memory", settings.spark_driver_memory)
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
