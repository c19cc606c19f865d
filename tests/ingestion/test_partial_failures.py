"""Partial failures: a proxy in front of moto rejects some entries of a batch, as Kinesis and Firehose do
when a shard is throttled. The producer must retry exactly those entries, and nothing may be lost or
doubled."""

from __future__ import annotations

import uuid
import zlib
from collections import Counter

import numpy as np
import pytest

from ingestion.produce import produce
from ingestion.simulator import FleetConfig, line_sizes
from ingestion.sinks import FirehoseSink, KinesisSink, RetryPolicy, SinkError

FAST_RETRY = RetryPolicy(base_seconds=0.005, cap_seconds=0.05, max_seconds=30)


def _read_stream(kinesis, stream: str) -> list[str]:
    lines = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if not page["Records"]:
                break
            lines += [r["Data"].decode().removesuffix("\n") for r in page["Records"]]
            iterator = page.get("NextShardIterator")
    return lines


def _read_bucket(s3, bucket: str) -> list[str]:
    lines = []
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        lines += s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode().split("\n")[:-1]
    return lines


def _destination(service: str, aws_client, proxy, retry: RetryPolicy = FAST_RETRY):
    """A fresh stream (read back directly from moto) and a sink whose requests go through the proxy."""
    name = f"partial-{uuid.uuid4().hex[:8]}"
    if service == "kinesis":
        aws_client("kinesis").create_stream(StreamName=name, ShardCount=2)
        sink = KinesisSink(name, aws_client("kinesis", proxy.endpoint), retry)
        return sink, lambda: _read_stream(aws_client("kinesis"), name)
    aws_client("s3").create_bucket(Bucket=name)
    aws_client("firehose").create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/f",
                                            "BucketARN": f"arn:aws:s3:::{name}"},
    )  # fmt: skip
    sink = FirehoseSink(name, aws_client("firehose", proxy.endpoint), retry)
    return sink, lambda: _read_bucket(aws_client("s3"), name)


@pytest.mark.parametrize("service", ["kinesis", "firehose"])
def test_a_partial_failure_is_retried_for_exactly_the_rejected_records(
    service, proxy, aws_client, produce_run, settings, start
):
    config = FleetConfig(devices=20, readings=3_000, start=start, seed=31, dirty_rate=0.05)
    sent = produce_run(config).lines  # what the run sends, from a local landing run of the same seed
    rejections: Counter = Counter()

    def reject(data: bytes) -> bool:  # about 30 % of the entries, each at most twice
        if zlib.crc32(data) % 10 < 3 and rejections[data] < 2:
            rejections[data] += 1
            return True
        return False

    proxy.reject = reject
    sink, read_back = _destination(service, aws_client, proxy)

    report = produce(settings, config, sink)

    requests = proxy.requests
    assert sum(len(r.rejected) for r in requests) > 500
    for request, following in zip(requests, requests[1:], strict=False):
        if request.rejected:  # the next request re-sends exactly the rejected entries, in order
            assert following.entries == [request.entries[i] for i in request.rejected]
    accepted = Counter(e.decode().removesuffix("\n") for r in requests for i, e in enumerate(r.entries)
                       if i not in r.rejected)  # fmt: skip
    assert accepted == Counter(sent)  # every line accepted exactly once (duplicates in the data stay two)
    assert Counter(read_back()) == Counter(sent)
    assert report.retried_records == sum(len(r.rejected) for r in requests)
    assert max(rejections.values()) == 2


def test_records_still_rejected_when_the_retry_time_is_up_end_in_a_clear_error(proxy, aws_client):
    proxy.reject = lambda data: data.startswith(b"bad")
    retry = RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_seconds=0.5)
    sink, read_back = _destination("kinesis", aws_client, proxy, retry)
    lines = ["good-1", "bad-1", "good-2", "bad-2", "good-3"]

    with pytest.raises(
        SinkError,
        match=r"kinesis stream 'partial-\w+': 2 of 5 records still rejected after \d+ attempts in 0.5 s "
        r"\(last error: ProvisionedThroughputExceededException\).*--max-retry-seconds",
    ):
        sink.send(lines, np.zeros(5, dtype=np.int64), ["k"] * 5, line_sizes(lines))
        sink.close()

    assert proxy.requests[0].entries == [f"{line}\n".encode() for line in lines]
    assert all(r.entries == [b"bad-1\n", b"bad-2\n"] for r in proxy.requests[1:]) and len(proxy.requests) > 2
    assert sorted(read_back()) == ["good-1", "good-2", "good-3"]
