"""The synthesized template, read as a specification: it lints clean, and each resource is configured the
way the lakehouse reads and writes (landing layout, Glue databases dbt uses, outputs the settings need).
Several of these resource types are skipped by moto's CloudFormation, so the template is where they are
checked."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import yaml

from infra.outputs import EMR_OUTPUTS, OUTPUTS
from lakehouse.config import DBT_PROJECT_DIR
from lakehouse.lake import Lake
from spark.bronze_job import LANDING_GLOB

SCHEMA = "lakehouse_dev"


def test_the_template_passes_cfn_lint_with_no_errors(synthesized):
    cfn_lint = str(Path(sys.executable).parent / "cfn-lint")
    completed = subprocess.run(
        [cfn_lint, "--format", "json", str(synthesized)], capture_output=True, text=True, timeout=300
    )
    findings = json.loads(completed.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)[:4000]
    assert completed.returncode & 2 == 0  # cfn-lint's exit code: bit 2 = errors


def test_the_lake_bucket_is_encrypted_private_versioned_and_owner_enforced(resources):
    bucket = resources["Lake"]["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert resources["Lake"]["DeletionPolicy"] == "Retain"  # deleting the stack never deletes the lake


def test_lifecycle_rules_expire_landing_quarantine_and_athena_results(resources):
    rules = {r["Id"]: r for r in resources["Lake"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    lake = Lake("s3://bucket/lake")
    expected = {
        "landing": lake.uri("landing") + "/",
        "quarantine": lake.uri("quarantine") + "/",
        "athena-results": "s3://bucket/athena/results/",
    }
    for rule_id, prefix in expected.items():
        rule = rules[rule_id]
        assert rule["Status"] == "Enabled"
        assert "s3://bucket/" + rule["Prefix"] == prefix
        assert rule["ExpirationInDays"] > 0
    assert rules["landing"]["ExpirationInDays"] == 90
    assert rules["athena-results"]["ExpirationInDays"] == 7
    catch_all = rules["noncurrent-and-incomplete-uploads"]
    assert "Prefix" not in catch_all and catch_all["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7


def test_firehose_writes_the_landing_layout_the_bronze_job_reads(of_type):
    streams = of_type("AWS::KinesisFirehose::DeliveryStream")
    assert len(streams) == 2
    lake = Lake("s3://bucket/lake")
    for stream in streams.values():
        s3 = stream["Properties"]["ExtendedS3DestinationConfiguration"]
        # A prefix without !{...} expressions: Firehose appends the UTC hour YYYY/MM/dd/HH/ itself.
        assert "!{" not in s3["Prefix"]
        assert f"s3://bucket/{s3['Prefix']}" == lake.landing_readings + "/"
        # An object Firehose writes, <prefix>YYYY/MM/dd/HH/<name><extension>, is what bronze's glob matches.
        delivered = f"{s3['Prefix']}2026/12/03/12/lakehouse-dev-readings-1-2026-12-03-12-00-00-abc{s3['FileExtension']}"
        assert fnmatch(delivered.removeprefix(s3["Prefix"]), LANDING_GLOB)
        assert s3["CompressionFormat"] == "UNCOMPRESSED"  # bronze reads plain NDJSON
        assert "ProcessingConfiguration" not in s3  # no delimiter processor: producers end each record with \n
        # Failed records go to quarantine, outside what bronze reads, with the error type in the path.
        assert s3["ErrorOutputPrefix"].startswith("lake/quarantine/")
        assert "!{firehose:error-output-type}" in s3["ErrorOutputPrefix"]
        assert s3["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 16}
        assert s3["BucketARN"] == {"Fn::GetAtt": ["Lake", "Arn"]}
    kinds = {s["Properties"]["DeliveryStreamType"]: s["Properties"] for s in streams.values()}
    assert kinds["KinesisStreamAsSource"]["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == {
        "Fn::GetAtt": ["Readings", "Arn"]
    }
    assert kinds["DirectPut"]["DeliveryStreamName"] == "lakehouse-dev-readings"


def test_the_kinesis_stream_is_on_demand_and_encrypted(resources):
    stream = resources["Readings"]["Properties"]
    assert stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert stream["StreamEncryption"]["EncryptionType"] == "KMS"
    assert "ShardCount" not in stream


def test_the_iot_rule_sends_each_mqtt_reading_as_one_line_to_the_direct_firehose(of_type):
    (rule,) = of_type("AWS::IoT::TopicRule").values()
    payload = rule["Properties"]["TopicRulePayload"]
    assert payload["Sql"] == "SELECT * FROM 'sites/+/devices/+/readings'"
    (action,) = payload["Actions"]
    assert action["Firehose"]["DeliveryStreamName"] == "lakehouse-dev-readings"
    assert action["Firehose"]["Separator"] == "\n"  # Firehose adds no newline; bronze reads one reading a line


def _dbt_custom_schemas() -> set[str]:
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "+schema":
                    found.add(value)
                walk(value)

    walk(project)
    return found


def test_glue_databases_are_every_schema_dbt_and_athena_init_use(of_type):
    from lakehouse.config import Settings
    from orchestration.athena import catalogue_database, databases

    names = {r["Properties"]["DatabaseInput"]["Name"] for r in of_type("AWS::Glue::Database").values()}
    init = databases(Settings(athena_schema=SCHEMA))  # what `lakehouse athena init` creates
    expected = {SCHEMA, *init.values(), catalogue_database(init["bronze"])}
    assert names == expected | {f"{SCHEMA}_{s}" for s in _dbt_custom_schemas()}


def test_the_work_group_enforces_its_results_location_and_a_bytes_scanned_cutoff(resources):
    group = resources["WorkGroup"]["Properties"]
    config = group["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == 10 * 1024**3
    results = config["ResultConfiguration"]
    assert results["OutputLocation"] == {"Fn::Join": ["", ["s3://", {"Ref": "Lake"}, "/athena/results/"]]}
    assert results["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}


def test_the_emr_serverless_application_runs_spark_4_costs_nothing_idle_and_is_optional(template, resources):
    application = resources["BronzeApplication"]
    assert application["Condition"] == "WithEmrServerless"
    assert template["Conditions"]["WithEmrServerless"] == {"Fn::Equals": [{"Ref": "BronzeOn"}, "emr-serverless"]}
    props = application["Properties"]
    assert props["Type"] == "SPARK" and props["ReleaseLabel"] == "emr-spark-8.0.0"
    assert "InitialCapacity" not in props  # no pre-initialized workers billed at rest
    assert props["AutoStopConfiguration"] == {"Enabled": True, "IdleTimeoutMinutes": 5}
    assert resources["BronzeJobRole"]["Condition"] == "WithEmrServerless"
    for key in ("EmrServerlessApplicationId", "EmrServerlessJobRoleArn"):
        assert template["Outputs"][key]["Condition"] == "WithEmrServerless"


def test_the_schedule_starts_one_fargate_task_running_lakehouse_run(resources, template):
    schedule = resources["Schedule"]["Properties"]
    assert schedule["ScheduleExpression"] == {"Ref": "CycleSchedule"}
    assert template["Parameters"]["CycleSchedule"]["Default"] == "rate(15 minutes)"
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["Cycles", "Arn"]}
    ecs = target["EcsParameters"]
    assert ecs["LaunchType"] == "FARGATE" and ecs["TaskCount"] == 1
    assert ecs["TaskDefinitionArn"] == {"Ref": "CycleTask"}
    (container,) = resources["CycleTask"]["Properties"]["ContainerDefinitions"]
    assert container["Command"] == ["lakehouse", "run", "--json-logs"]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment["LAKEHOUSE_DBT_TARGET"] == "athena"
    assert environment["LAKEHOUSE_ATHENA_WORK_GROUP"] == "lakehouse-dev"
    # The task's settings are names Settings knows (it rejects unknown keys in a file; here: no typos).
    from lakehouse.config import Settings

    known = {f"LAKEHOUSE_{name.upper()}" for name in Settings.__dataclass_fields__}
    profile = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    for name in environment:
        assert name in known or name in profile, name


def test_the_stack_outputs_every_setting_lakehouse_infra_outputs_reads(template):
    assert {o.key for o in OUTPUTS + EMR_OUTPUTS} <= set(template["Outputs"])


def test_every_name_in_the_template_carries_the_prefix_and_environment(of_type):
    named = {
        "AWS::IAM::Role": "RoleName",
        "AWS::Kinesis::Stream": "Name",
        "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
        "AWS::Athena::WorkGroup": "Name",
        "AWS::SNS::Topic": "TopicName",
        "AWS::EMRServerless::Application": "Name",
    }
    for kind, key in named.items():
        for resource in of_type(kind).values():
            assert re.match(r"^lakehouse-dev(-|$)", resource["Properties"][key]), resource["Properties"][key]
