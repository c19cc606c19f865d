"""The template deployed into moto (server mode, CloudFormation), then used only through the settings that
`lakehouse infra outputs` writes: producers deliver to the stack's streams, readings land in the stack's
bucket in the landing layout, and Athena init creates its tables in the stack's Glue databases."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from lakehouse.config import Settings
from tests.support.datasets import nab_file

READINGS = 240
PRODUCE = ["--readings", str(READINGS), "--devices", "4", "--dirty-rate", "0", "--seed", "7", "--quiet"]
LANDING_KEY = re.compile(r"^lake/landing/readings/\d{4}/\d{2}/\d{2}/\d{2}/[^/]+$")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, deployed, aws, lakehouse):
    """A folder whose lakehouse.toml is what `lakehouse infra outputs` wrote for the stack; commands run
    there see nothing else (no LAKEHOUSE_* variables, dummy AWS credentials)."""
    folder = tmp_path_factory.mktemp("deployment")
    completed = lakehouse(
        ["infra", "outputs", "--stack", "lakehouse-dev"],
        cwd=folder,
        env={**aws.env, "LAKEHOUSE_AWS_ENDPOINT_URL": aws.endpoint},
    )
    assert completed.returncode == 0, completed.stderr
    return folder


def test_infra_outputs_writes_the_settings_that_point_at_the_stack(workdir, deployed, aws):
    written = tomllib.loads((workdir / "lakehouse.toml").read_text())["lakehouse"]
    outputs = deployed.outputs
    assert written == {
        "dbt_target": "athena",
        "lake": outputs["LakeUri"],
        "aws_region": "us-east-1",
        "kinesis_stream": outputs["KinesisStream"],
        "firehose_stream": outputs["FirehoseStream"],
        "athena_work_group": outputs["AthenaWorkGroup"],
        "athena_results_uri": outputs["AthenaResultsUri"],
        "athena_data_uri": outputs["AthenaDataUri"],
        "athena_schema": outputs["AthenaSchema"],
        "alert_sns_topic_arn": outputs["AlertTopicArn"],
        "bronze_on": "local",
        "aws_endpoint_url": aws.endpoint,
    }
    bucket = deployed.physical["Lake"]
    assert written["lake"] == f"s3://{bucket}/lake"
    settings = Settings.load(env={}, cwd=workdir)  # the file is one the settings accept as it is
    assert settings.kinesis_stream == deployed.physical["Readings"]
    assert settings.alert_sns_topic_arn == deployed.physical["Alerts"]


def _stream_records(kinesis, stream: str) -> list[bytes]:
    records = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += [r["Data"] for r in page["Records"]]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return records


def _landed_readings(s3, bucket: str) -> dict[str, bytes]:
    objects = s3.list_objects_v2(Bucket=bucket, Prefix="lake/landing/readings/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in objects}


def test_produce_sink_kinesis_delivers_each_reading_as_one_line_to_the_stacks_stream(workdir, deployed, aws, lakehouse):
    completed = lakehouse(["produce", "--sink", "kinesis", *PRODUCE], cwd=workdir, env=aws.env)
    assert completed.returncode == 0, completed.stderr
    assert f"kinesis -> {deployed.physical['Readings']}" in completed.stdout

    records = _stream_records(aws.client("kinesis"), deployed.physical["Readings"])
    assert len(records) == READINGS
    assert all(r.endswith(b"\n") and r.count(b"\n") == 1 for r in records)  # newline-delimited once delivered
    assert len({json.loads(r)["device_id"] for r in records}) == 4
    # The simulator's labels went to the stack's lake, through the endpoint the settings name.
    labels = aws.client("s3").list_objects_v2(Bucket=deployed.physical["Lake"], Prefix="lake/landing/_labels/")
    assert len(labels.get("Contents", [])) >= 2


def test_produce_sink_firehose_lands_readings_in_the_stacks_bucket_under_the_landing_layout(
    workdir, deployed, aws, lakehouse
):
    s3 = aws.client("s3")
    bucket = deployed.physical["Lake"]
    before = _landed_readings(s3, bucket)
    completed = lakehouse(["produce", "--sink", "firehose", *PRODUCE, "--producer", "fh"], cwd=workdir, env=aws.env)
    assert completed.returncode == 0, completed.stderr
    assert "firehose -> lakehouse-dev-readings" in completed.stdout

    landed = {key: data for key, data in _landed_readings(s3, bucket).items() if key not in before}
    assert landed, "Firehose wrote nothing into the stack's landing folder"
    assert all(LANDING_KEY.match(key) for key in landed), sorted(landed)
    lines = [line for data in landed.values() for line in data.decode().split("\n") if line]
    assert len(lines) == READINGS  # every reading arrives, one a line, nothing glued together
    assert all(data.endswith(b"\n") for data in landed.values())
    assert {json.loads(line)["seq"] for line in lines} >= {1}


def test_athena_init_creates_its_tables_in_the_stacks_glue_databases(workdir, deployed, aws, template, lakehouse):
    completed = lakehouse(["athena", "init"], cwd=workdir, env=aws.env)
    assert completed.returncode == 0, completed.stderr
    assert "athena init:" in completed.stdout and "created" in completed.stdout

    settings = Settings.load(env={}, cwd=workdir)
    athena = aws.client("athena")
    ran = athena.list_query_executions(WorkGroup=settings.athena_work_group)["QueryExecutionIds"]
    statements = [athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"] for q in ran]
    stack_databases = {
        r["Properties"]["DatabaseInput"]["Name"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Glue::Database"
    }
    glue = aws.client("glue")
    tables = 0
    for statement in statements:
        created = re.match(r"CREATE (?:DATABASE|EXTERNAL TABLE) IF NOT EXISTS `([^`]+)`", statement)
        assert created, statement
        assert created.group(1) in stack_databases, f"{created.group(1)} is not a database of the stack"
        assert glue.get_database(Name=created.group(1))["Database"]["Name"] == created.group(1)
        if "EXTERNAL TABLE" in statement:
            tables += 1
            (location,) = re.findall(r"LOCATION '([^']+)'", statement)
            assert location.startswith(f"s3://{deployed.physical['Lake']}/lake/")
    assert tables >= 4  # readings, the STEDI sources, the ops records, the catalogue and the PII salt


def test_a_recorded_nab_series_replayed_through_firehose_lands_row_for_row(workdir, deployed, aws, lakehouse):
    nab = nab_file("ambient_temperature_system_failure.csv")
    rows = len(nab.read_text().splitlines()) - 1  # the header
    s3 = aws.client("s3")
    bucket = deployed.physical["Lake"]
    before = _landed_readings(s3, bucket)
    completed = lakehouse(
        [
            "replay", str(nab), "--device", "env-00001", "--map", "value=temperature_c",
            "--convert", "value=degF_to_degC", "--sink", "firehose", "--producer", "nab", "--quiet",
        ],
        cwd=workdir,
        env=aws.env,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr

    landed = {key: data for key, data in _landed_readings(s3, bucket).items() if key not in before}
    assert all(LANDING_KEY.match(key) for key in landed)
    readings = [json.loads(line) for data in landed.values() for line in data.decode().split("\n") if line]
    assert len(readings) == rows == 7267
    assert {r["device_id"] for r in readings} == {"env-00001"}
    first = min(readings, key=lambda r: r["event_time"])
    assert first["event_time"] == "2013-07-04T00:00:00.000Z"
    assert first["temperature_c"] == pytest.approx((69.88083514 - 32) * 5 / 9, abs=1e-6)
