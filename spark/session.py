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
    # Many small landing files: see scan_conf, set from the cores the session has.
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
    for key, value in scan_conf(spark.sparkContext.defaultParallelism).items():
        spark.conf.set(key, value)
    if spark.sparkContext.master.startswith("local"):
        _no_local_checksum_files(spark)
    return spark


def _no_local_checksum_files(spark: SparkSession) -> None:
    """Hadoop's local file system keeps a ``.name.crc`` beside every file it writes and looks for one
    beside every file it opens: a second file operation per landing file (none has one: producers
    write plain files) and a second file per Parquet file. In local mode the driver and its tasks share
    one cached instance of it, so this turns both off for the session; a lake on s3:// is not affected.
    """
    hadoop = spark._jvm.org.apache.hadoop.fs
    local = hadoop.FileSystem.getLocal(spark._jsc.hadoopConfiguration())
    local.setVerifyChecksum(False)
    local.setWriteChecksum(False)


def scan_conf(cores: int) -> dict[str, str]:
    """How Spark lists and packs the landing files of a batch, for a session with ``cores`` task slots.

    Many small landing files (Firehose cuts one per buffer interval: thousands of ~80 KB files) are the
    case to serve; a few large ones read as before.

    - A streaming file source builds each batch as a file source over the batch's file list, and Spark
      lists more than 32 such paths (parallelPartitionDiscovery.threshold) with a Spark job of one task
      per path (parallelism up to 10,000): about 29 ms of JVM CPU per landing file before a byte is read
      (issue 17, bench/bronze.py). Two tasks per core, each listing many files, make the same listing
      calls without a task per file, and on a cluster still list in parallel.
    - A read task takes files up to maxPartitionBytes (128 MB), counting each as its size plus
      openCostInBytes (default 4 MB, sized for HDFS blocks): at most 31 small files a task, so a task,
      and a Parquet file per event date, per 31 landing files. Opening a landing file costs far less
      than reading 4 MB: count 256 KB. minPartitionNum, two tasks per core, keeps a small batch spread
      over every core so that none waits on one last big task.
    """
    slots = str(max(2, 2 * cores))
    return {
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": slots,
        "spark.sql.files.openCostInBytes": str(256 * 1024),
        "spark.sql.files.minPartitionNum": slots,
    }
