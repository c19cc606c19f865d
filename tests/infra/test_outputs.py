"""Bad input to `lakehouse infra outputs`: a missing or malformed stack output, a stack that does not
exist, a file that would be overwritten. Each error names the output (or stack, or file) and the fix."""

from __future__ import annotations

import json

import pytest

from infra.outputs import StackOutputError, render_settings, settings_from_outputs

GOOD = {
    "LakeUri": "s3://lakehouse-dev-lake-abc123/lake",
    "AwsRegion": "eu-west-1",
    "KinesisStream": "lakehouse-dev-readings",
    "FirehoseStream": "lakehouse-dev-readings",
    "AthenaWorkGroup": "lakehouse-dev",
    "AthenaResultsUri": "s3://lakehouse-dev-lake-abc123/athena/results/",
    "AthenaDataUri": "s3://lakehouse-dev-lake-abc123/athena/tables/",
    "AthenaSchema": "lakehouse_dev",
    "AlertTopicArn": "arn:aws:sns:eu-west-1:123456789012:lakehouse-dev-alerts",
    "BronzeOn": "emr-serverless",
    "EmrServerlessApplicationId": "00fg5h6j7k8l9m0n",
    "EmrServerlessJobRoleArn": "arn:aws:iam::123456789012:role/lakehouse-dev-bronze-job",
}


def test_every_output_becomes_its_agreed_setting():
    assert settings_from_outputs("lakehouse-dev", GOOD) == {
        "dbt_target": "athena",
        "lake": GOOD["LakeUri"],
        "aws_region": "eu-west-1",
        "kinesis_stream": "lakehouse-dev-readings",
        "firehose_stream": "lakehouse-dev-readings",
        "athena_work_group": "lakehouse-dev",
        "athena_results_uri": GOOD["AthenaResultsUri"],
        "athena_data_uri": GOOD["AthenaDataUri"],
        "athena_schema": "lakehouse_dev",
        "alert_sns_topic_arn": GOOD["AlertTopicArn"],
        "bronze_on": "emr-serverless",
        "emr_serverless_application_id": "00fg5h6j7k8l9m0n",
        "emr_serverless_job_role_arn": GOOD["EmrServerlessJobRoleArn"],
    }


@pytest.mark.parametrize("missing", ["LakeUri", "FirehoseStream", "AthenaWorkGroup", "EmrServerlessApplicationId"])
def test_a_missing_output_is_named_with_its_setting_and_the_fix(missing):
    outputs = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(StackOutputError) as error:
        settings_from_outputs("lakehouse-dev", outputs)
    message = str(error.value)
    assert f"stack 'lakehouse-dev' has no output '{missing}'" in message
    assert "deploy the stack again" in message


def test_emr_outputs_are_not_needed_when_bronze_runs_locally():
    outputs = {k: v for k, v in GOOD.items() if not k.startswith("Emr")} | {"BronzeOn": "local"}
    values = settings_from_outputs("lakehouse-dev", outputs)
    assert values["bronze_on"] == "local"
    assert "emr_serverless_application_id" not in values


@pytest.mark.parametrize(
    ("key", "value", "shape"),
    [
        ("LakeUri", "lakehouse-dev-lake", "s3://bucket/prefix"),
        ("AthenaResultsUri", "s3://bucket/athena/results", "ending in /"),
        ("AlertTopicArn", "lakehouse-dev-alerts", "an SNS topic ARN"),
        ("BronzeOn", "glue", "local or emr-serverless"),
        ("EmrServerlessJobRoleArn", "arn:aws:iam::123:role/x", "an IAM role ARN"),
    ],
)
def test_a_malformed_output_is_named_with_what_it_should_look_like(key, value, shape):
    with pytest.raises(StackOutputError) as error:
        settings_from_outputs("lakehouse-dev", GOOD | {key: value})
    message = str(error.value)
    assert f"output '{key}'" in message and repr(value) in message and shape in message


def test_rendered_settings_are_toml_the_settings_load(tmp_path):
    from lakehouse.config import Settings

    values = settings_from_outputs("lakehouse-dev", GOOD)
    (tmp_path / "lakehouse.toml").write_text(render_settings("lakehouse-dev", values))
    settings = Settings.load(env={}, cwd=tmp_path)
    assert settings.lake == GOOD["LakeUri"] and settings.bronze_on == "emr-serverless"
    assert settings.emr_serverless_job_role_arn == GOOD["EmrServerlessJobRoleArn"]


# ---- through the command, against stacks in moto ------------------------------------------------------
def _env(aws) -> dict[str, str]:
    return {**aws.env, "LAKEHOUSE_AWS_ENDPOINT_URL": aws.endpoint}


def test_a_stack_with_a_malformed_output_exits_2_naming_it(aws, lakehouse, tmp_path):
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "not-the-lakehouse"}}},
        "Outputs": {"LakeUri": {"Value": "somewhere-else"}},
    }
    aws.client("cloudformation").create_stack(StackName="not-the-lakehouse", TemplateBody=json.dumps(template))
    completed = lakehouse(["infra", "outputs", "--stack", "not-the-lakehouse"], cwd=tmp_path, env=_env(aws))
    assert completed.returncode == 2
    assert "output 'LakeUri' (setting lake) is 'somewhere-else', not s3://bucket/prefix" in completed.stderr
    assert not (tmp_path / "lakehouse.toml").exists()  # nothing half-written


def test_a_stack_that_does_not_exist_exits_2_naming_it_and_the_region(aws, lakehouse, tmp_path):
    completed = lakehouse(["infra", "outputs", "--stack", "nope"], cwd=tmp_path, env=_env(aws))
    assert completed.returncode == 2
    assert "no CloudFormation stack 'nope' in region us-east-1" in completed.stderr
    assert "--stack" in completed.stderr


def test_an_existing_file_is_replaced_only_with_force(aws, lakehouse, tmp_path, deployed):
    (tmp_path / "lakehouse.toml").write_text("# mine\n")
    completed = lakehouse(["infra", "outputs", "--stack", "lakehouse-dev"], cwd=tmp_path, env=_env(aws))
    assert completed.returncode == 2 and "pass --force" in completed.stderr
    assert (tmp_path / "lakehouse.toml").read_text() == "# mine\n"
    forced = lakehouse(["infra", "outputs", "--stack", "lakehouse-dev", "--force"], cwd=tmp_path, env=_env(aws))
    assert forced.returncode == 0, forced.stderr
    assert "kinesis_stream = " in (tmp_path / "lakehouse.toml").read_text()
