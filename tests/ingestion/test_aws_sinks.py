"""The AWS sinks against a real HTTP endpoint: moto in server mode on 127.0.0.1, reached through boto3.

Every test reads back what arrived (the S3 prefix, every shard of the stream, the delivery stream's
bucket) and compares it with what the same seeded run writes to a local landing folder.
"""

from __future__ import annotations

import uuid
from collections import Counter

import numpy as np
import pytest

from ingestion.produce import produce
from ingestion.simulator import FleetConfig, line_sizes
from ingestion.sinks import (
    FIREHOSE_MAX_REQUEST_BYTES,
    KINESIS_MAX_RECORD_BYTES,
    KINESIS_MAX_REQUEST_BYTES,
    FirehoseSink,
    KinesisSink,
    RetryPolicy,
    SinkError,
    SinkOptions,
)
from lakehouse.cli import main


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _send(sink, lines: list[str], keys: list[str]) -> None:
    sink.send(lines, np.zeros(len(lines), dtype=np.int64), keys, line_sizes(lines))
    sink.close()


def read_stream(kinesis, stream: str) -> list[tuple[str, str]]:
    """Every record of every shard: (data without the trailing newline, partition key)."""
    records = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if not page["Records"]:
                break
            records += [(r["Data"].decode().removesuffix("\n"), r["PartitionKey"]) for r in page["Records"]]
            iterator = page.get("NextShardIterator")
    return records


def read_bucket_lines(s3, bucket: str, prefix: str) -> list[str]:
    lines = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            data = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            assert data.endswith("\n"), item["Key"]
            lines += data.split("\n")[:-1]
    return lines


@pytest.fixture(scope="module")
def expected(produce_run, start):
    """The lines a small seeded run sends (to a local landing folder), dirty records included."""
    config = FleetConfig(devices=20, readings=4_000, start=start, seed=21, dirty_rate=0.05)
    return config, produce_run(config)


def test_s3_sink_writes_the_same_files_as_the_landing_sink(expected, settings, aws_env, aws_client,
                                                           moto_endpoint, read_landing_files):  # fmt: skip
    config, local = expected
    s3 = aws_client("s3")
    bucket = _name("landing")
    s3.create_bucket(Bucket=bucket)

    report = produce(settings, config, "s3", SinkOptions(s3_uri=f"s3://{bucket}/lake", endpoint_url=moto_endpoint))

    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            objects[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    local_files = read_landing_files(local.settings.lake_root)
    root = local.settings.lake_root.root
    assert objects == {"lake" + uri[len(root) :]: data for uri, data in local_files.items()}
    assert report.files == len(objects) > 1 and report.sink == "s3"
    assert all(key.startswith("lake/landing/readings/2025/03/0") for key in objects)


def test_kinesis_sink_delivers_every_line_once_keyed_by_device(expected, settings, aws_client):
    config, local = expected
    kinesis = aws_client("kinesis")
    stream = _name("readings")
    kinesis.create_stream(StreamName=stream, ShardCount=2)

    report = produce(settings, config, KinesisSink(stream, kinesis))

    records = read_stream(kinesis, stream)
    assert Counter(data for data, _ in records) == Counter(local.lines)
    reading_of = dict(zip(local.lines, local.parsed, strict=True))
    keyed = 0
    for data, key in records:
        reading = reading_of[data]
        if reading is not None and isinstance(reading.get("device_id"), str):
            assert key == reading["device_id"]
            keyed += 1
    assert keyed > 0.9 * len(records)
    assert report.requests == -(-len(local.lines) // 500)  # full batches of 500 records


def test_firehose_sink_delivers_newline_delimited_lines_to_the_bucket(expected, settings, aws_client):
    config, local = expected
    s3, firehose = aws_client("s3"), aws_client("firehose")
    bucket, stream = _name("delivery"), _name("readings")
    s3.create_bucket(Bucket=bucket)
    firehose.create_delivery_stream(
        DeliveryStreamName=stream,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose-delivery",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "landing/readings/",
        },
    )

    report = produce(settings, config, FirehoseSink(stream, firehose))

    delivered = read_bucket_lines(s3, bucket, "landing/readings/")
    assert Counter(delivered) == Counter(local.lines)
    assert report.sink == "firehose" and report.requests == -(-len(local.lines) // 500)


def test_lakehouse_produce_sends_to_kinesis_from_the_command_line(settings, aws_env, aws_client, moto_endpoint,
                                                                  capsys):  # fmt: skip
    kinesis = aws_client("kinesis")
    stream = _name("cli")
    kinesis.create_stream(StreamName=stream, ShardCount=1)

    exit_code = main(
        ["--lake", settings.lake, "produce", "--devices", "4", "--readings", "300", "--seed", "1",
         "--start", "2025-03-01T00:00:00Z", "--sink", "kinesis", "--stream", stream,
         "--endpoint-url", moto_endpoint, "--quiet"]
    )  # fmt: skip

    assert exit_code == 0
    assert "sink            kinesis -> " + stream in capsys.readouterr().out
    assert len(read_stream(kinesis, stream)) >= 300


def test_kinesis_batches_stay_within_500_records_and_5_mib(proxy, aws_client):
    kinesis = aws_client("kinesis", proxy.endpoint)
    stream = _name("limits")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    small = [f'{{"n":{i}}}' for i in range(1_100)]
    big = ["x" * 40_000 + str(i) for i in range(300)]  # 300 x 40 kB = 12 MB

    _send(KinesisSink(stream, kinesis), small + big, ["k"] * (len(small) + len(big)))

    sizes = [(len(r.entries), sum(len(e) + 1 for e in r.entries)) for r in proxy.requests]
    assert all(count <= 500 and size <= KINESIS_MAX_REQUEST_BYTES for count, size in sizes)
    assert sum(count for count, _ in sizes) == 1_400
    assert [count for count, _ in sizes][:2] == [500, 500]
    assert max(size for _, size in sizes) > 0.9 * KINESIS_MAX_REQUEST_BYTES  # filled up to the byte limit
    assert len(read_stream(kinesis, stream)) == 1_400


def test_firehose_batches_stay_within_500_records_and_4_mib(proxy, aws_client):
    s3, firehose = aws_client("s3"), aws_client("firehose", proxy.endpoint)
    bucket, stream = _name("delivery"), _name("limits")
    s3.create_bucket(Bucket=bucket)
    firehose.create_delivery_stream(
        DeliveryStreamName=stream,
        ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/f",
                                            "BucketARN": f"arn:aws:s3:::{bucket}"},
    )  # fmt: skip
    lines = ["y" * 30_000 + str(i) for i in range(400)]  # 12 MB

    _send(FirehoseSink(stream, firehose), lines, ["k"] * len(lines))

    sizes = [sum(len(e) for e in r.entries) for r in proxy.requests]
    assert all(size <= FIREHOSE_MAX_REQUEST_BYTES for size in sizes) and len(sizes) == 3
    assert sorted(read_bucket_lines(s3, bucket, "")) == sorted(lines)


def test_a_record_over_the_kinesis_record_limit_is_refused_before_sending(proxy, aws_client):
    kinesis = aws_client("kinesis", proxy.endpoint)
    with pytest.raises(SinkError, match=r"over the 1048576-byte record limit"):
        _send(KinesisSink("any-stream", kinesis), ["z" * KINESIS_MAX_RECORD_BYTES], ["k"])
    assert proxy.requests == []


def test_a_missing_stream_is_a_clear_error_without_retries(aws_client):
    kinesis = aws_client("kinesis")
    sink = KinesisSink("no-such-stream", kinesis, RetryPolicy(max_seconds=30))
    with pytest.raises(SinkError, match=r"kinesis stream 'no-such-stream' refused a request: ResourceNotFound"):
        _send(sink, ['{"a":1}'], ["k"])
    assert sink.stats.requests == 1
