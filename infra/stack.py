"""The whole AWS side of the lakehouse as one CloudFormation stack, written with AWS CDK (L1 resources for
everything IAM touches, so that each policy reads exactly as it is deployed).

One stack per name prefix and environment (``lakehouse-dev``, ``lakehouse-prod``): the lake bucket, the
Kinesis stream and the Firehose delivery streams into the landing layout, the optional IoT Core rule, the
Glue databases and the Athena work group, the EMR Serverless application of the bronze job, the SNS topic
of alerts, the cycle schedule (EventBridge Scheduler -> an ECS Fargate task running ``lakehouse run``),
and one IAM role per component scoped to its own prefixes and actions.

Every name is derived from the prefix and environment at synth time (not from CloudFormation parameters),
so that the outputs are plain strings and ``lakehouse infra outputs`` can turn them into settings. The
only deploy-time parameters are the cycle's container image, its schedule, and whether bronze runs on
EMR Serverless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_emrserverless as emrserverless
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

# Where things live in the lake bucket. The lake root is s3://<bucket>/lake (lakehouse/lake.py lays out
# everything below it); Athena's query results and dbt-athena's tables sit beside it, outside the lake.
LAKE_PREFIX = "lake"
LANDING_READINGS = f"{LAKE_PREFIX}/landing/readings/"
# Firehose appends the UTC hour YYYY/MM/DD/HH/ to a prefix without !{...} expressions: exactly the layout
# spark/bronze_job.py reads (LANDING_GLOB = "*/*/*/*/*.json"). Records it cannot deliver go to quarantine,
# never into the landing folder bronze reads.
FIREHOSE_ERRORS = f"{LAKE_PREFIX}/quarantine/_firehose/!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd/HH}}/"
ATHENA_RESULTS = "athena/results/"
ATHENA_DATA = "athena/tables/"
JOBS_PREFIX = "jobs/"
LOGS_PREFIX = "logs/"
# The MQTT topic devices publish readings on (one reading per message).
MQTT_TOPIC_FILTER = "sites/+/devices/+/readings"
# dbt's custom schemas (dbt_project/dbt_project.yml) and the two athena_init creates; on Athena each is the
# Glue database <athena_schema>_<layer> (macros/generate_schema_name.sql), plus <athena_schema> itself.
# The layers of dbt_project.yml, plus what `lakehouse athena init` creates: bronze, the ops records, the
# catalogue source and the PII salt.
GLUE_LAYERS = ("bronze", "staging", "silver", "gold", "trusted", "curated", "seeds", "secrets", "ops", "catalogue")
# The readings' layers that dashboards read (gold, and silver for device detail).
DASHBOARD_LAYERS = ("silver", "gold")

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class StackConfig:
    """What a deployment chooses at synth time (the flags of ``lakehouse infra synth``)."""

    prefix: str = "lakehouse"
    environment: str = "dev"
    # Firehose buffering hints: a file per this many seconds or MiB, whichever comes first.
    buffer_seconds: int = 60
    buffer_mib: int = 16
    landing_retention_days: int = 90
    quarantine_retention_days: int = 365
    athena_results_retention_days: int = 7
    # Per-query cutoff of the Athena work group (a runaway query costs at most this much scanning).
    athena_bytes_scanned_cutoff: int = 10 * 1024**3
    # The IoT Core rule from MQTT devices into the Firehose stream.
    with_iot: bool = True
    # Spark 4.0 (AWS runtime for Apache Spark 8.0.0); the job is tested locally on PySpark 4.x.
    emr_release_label: str = "emr-spark-8.0.0"

    def __post_init__(self) -> None:
        for label, value in (("prefix", self.prefix), ("environment", self.environment)):
            if not _NAME.match(value):
                raise ValueError(
                    f"{label} '{value}': use lowercase letters, digits and single hyphens, starting with a letter "
                    f"(it names buckets, streams and roles), e.g. 'lakehouse' or 'dev'"
                )
        if len(self.name) > 24:
            raise ValueError(f"prefix + environment '{self.name}' is {len(self.name)} characters; keep it to 24")
        if not 0 <= self.buffer_seconds <= 900:
            raise ValueError(f"buffer_seconds {self.buffer_seconds}: Firehose takes 0 to 900")
        if not 1 <= self.buffer_mib <= 128:
            raise ValueError(f"buffer_mib {self.buffer_mib}: Firehose takes 1 to 128")
        if self.athena_bytes_scanned_cutoff < 10 * 1024**2:
            raise ValueError("athena_bytes_scanned_cutoff: Athena's minimum is 10 MiB (10485760)")

    @property
    def name(self) -> str:
        return f"{self.prefix}-{self.environment}"

    @property
    def athena_schema(self) -> str:
        """Glue database names take no hyphens."""
        return self.name.replace("-", "_")

    @property
    def stack_name(self) -> str:
        return self.name


def _doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(sid: str, actions: list[str], resources: list[str], **extra) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def _service_trust(service: str, account_condition: bool = True) -> dict:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if account_condition:
        # Confused-deputy guard: the service may assume the role only on behalf of this account.
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}}
    return _doc(statement)


class LakehouseStack(cdk.Stack):
    def __init__(self, scope: Construct, config: StackConfig, **kwargs) -> None:
        super().__init__(
            scope,
            config.stack_name,
            description=f"IoT sensor lakehouse ({config.name}): lake bucket, streams, catalogue, jobs, alerts",
            **kwargs,
        )
        self.config = config
        name = config.name
        account, region, partition = cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION, cdk.Aws.PARTITION

        # ---- deploy-time parameters --------------------------------------------------------------------
        bronze_on = cdk.CfnParameter(
            self,
            "BronzeOn",
            type="String",
            default="emr-serverless",
            allowed_values=["emr-serverless", "local"],
            description="Where the bronze job runs: emr-serverless (an application and job role in this stack) "
            "or local (the cycle task runs Spark itself; no EMR resources)",
        )
        image_tag = cdk.CfnParameter(
            self,
            "CycleImageTag",
            type="String",
            default="latest",
            description="Tag of the cycle image in this stack's ECR repository (see infra/README.md)",
        )
        schedule_expression = cdk.CfnParameter(
            self,
            "CycleSchedule",
            type="String",
            default="rate(15 minutes)",
            description="When cycles run: an EventBridge Scheduler expression, rate(...) or cron(...)",
        )
        schedule_state = cdk.CfnParameter(
            self,
            "CycleScheduleState",
            type="String",
            default="DISABLED",
            allowed_values=["ENABLED", "DISABLED"],
            description="DISABLED until the cycle image is pushed; then deploy again with ENABLED",
        )
        with_emr = cdk.CfnCondition(
            self, "WithEmrServerless", expression=cdk.Fn.condition_equals(bronze_on.value_as_string, "emr-serverless")
        )
        # BronzeOn=local: the cycle task runs the bronze job itself, so its role gets the job's prefixes.
        bronze_in_cycle = cdk.CfnCondition(self, "BronzeInTheCycle", expression=cdk.Fn.condition_not(with_emr))

        # ---- the lake bucket -----------------------------------------------------------------------------
        noncurrent = cdk.Duration.days(30)
        bucket = s3.Bucket(
            self,
            "Lake",
            encryption=s3.BucketEncryption.S3_MANAGED,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="landing",
                    prefix=f"{LAKE_PREFIX}/landing/",
                    expiration=cdk.Duration.days(config.landing_retention_days),
                    noncurrent_version_expiration=noncurrent,
                ),
                s3.LifecycleRule(
                    id="quarantine",
                    prefix=f"{LAKE_PREFIX}/quarantine/",
                    expiration=cdk.Duration.days(config.quarantine_retention_days),
                    noncurrent_version_expiration=noncurrent,
                ),
                s3.LifecycleRule(
                    id="athena-results",
                    prefix=ATHENA_RESULTS,
                    expiration=cdk.Duration.days(config.athena_results_retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                ),
                # Bronze, silver and gold are rewritten by compaction and dbt: old versions go after 30 days.
                s3.LifecycleRule(
                    id="noncurrent-and-incomplete-uploads",
                    noncurrent_version_expiration=noncurrent,
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
            ],
        )
        # Stable logical ids: tests and readers find the bucket and its policy by name.
        bucket.node.default_child.override_logical_id("Lake")
        bucket.policy.node.default_child.override_logical_id("LakePolicy")
        bucket_arn = bucket.bucket_arn

        def objects(*prefixes: str) -> list[str]:
            return [f"{bucket_arn}/{p}*" for p in prefixes]

        def list_bucket(sid: str, *prefixes: str) -> dict:
            return _allow(
                sid,
                ["s3:ListBucket"],
                [bucket_arn],
                Condition={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
            )

        lake_uri = f"s3://{bucket.bucket_name}/{LAKE_PREFIX}"

        # ---- streams -----------------------------------------------------------------------------------
        stream = kinesis.CfnStream(
            self,
            "Readings",
            name=f"{name}-readings",
            stream_mode_details=kinesis.CfnStream.StreamModeDetailsProperty(stream_mode="ON_DEMAND"),
            stream_encryption=kinesis.CfnStream.StreamEncryptionProperty(
                encryption_type="KMS", key_id="alias/aws/kinesis"
            ),
            retention_period_hours=24,
        )
        stream_arn = stream.attr_arn
        direct_name = f"{name}-readings"
        from_kinesis_name = f"{name}-readings-from-kinesis"
        firehose_arn = f"arn:{partition}:firehose:{region}:{account}:deliverystream/"
        delivery_log_group = logs.CfnLogGroup(
            self, "DeliveryLogs", log_group_name=f"/aws/kinesisfirehose/{name}-readings", retention_in_days=30
        )

        firehose_role = iam.CfnRole(
            self,
            "FirehoseRole",
            role_name=f"{name}-firehose",
            description="Firehose: deliver readings into the landing layout, failures into quarantine",
            assume_role_policy_document=_service_trust("firehose.amazonaws.com"),
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="deliver-readings",
                    policy_document=_doc(
                        _allow(
                            "WriteLandingAndErrors",
                            ["s3:PutObject", "s3:AbortMultipartUpload"],
                            objects(LANDING_READINGS, f"{LAKE_PREFIX}/quarantine/_firehose/"),
                        ),
                        _allow(
                            "FindTheBucket", ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"], [bucket_arn]
                        ),
                        list_bucket("ListLanding", LANDING_READINGS, f"{LAKE_PREFIX}/quarantine/_firehose/"),
                        _allow(
                            "ReadTheStream",
                            [
                                "kinesis:DescribeStream",
                                "kinesis:DescribeStreamSummary",
                                "kinesis:GetShardIterator",
                                "kinesis:GetRecords",
                                "kinesis:ListShards",
                            ],
                            [stream_arn],
                        ),
                        _allow(
                            "LogDeliveryErrors",
                            ["logs:CreateLogStream", "logs:PutLogEvents"],
                            [f"{delivery_log_group.attr_arn}:*"],
                        ),
                    ),
                )
            ],
        )

        def delivery_stream(logical_id: str, stream_name: str, from_stream: bool) -> firehose.CfnDeliveryStream:
            destination = firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket_arn,
                role_arn=firehose_role.attr_arn,
                prefix=LANDING_READINGS,
                error_output_prefix=FIREHOSE_ERRORS,
                # Bronze reads *.json; Firehose adds no newlines, each producer's record ends with its own
                # (ingestion/sinks.py; the IoT rule adds one with its separator).
                file_extension=".json",
                compression_format="UNCOMPRESSED",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=config.buffer_seconds, size_in_m_bs=config.buffer_mib
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=delivery_log_group.log_group_name, log_stream_name=stream_name
                ),
            )
            resource = firehose.CfnDeliveryStream(
                self,
                logical_id,
                delivery_stream_name=stream_name,
                delivery_stream_type="KinesisStreamAsSource" if from_stream else "DirectPut",
                kinesis_stream_source_configuration=firehose.CfnDeliveryStream.KinesisStreamSourceConfigurationProperty(
                    kinesis_stream_arn=stream_arn, role_arn=firehose_role.attr_arn
                )
                if from_stream
                else None,
                extended_s3_destination_configuration=destination,
            )
            return resource  # GetAtt of the role: its inline policy exists before Firehose checks it

        # Two delivery streams write the same layout: one reads the Kinesis stream (producers with
        # --sink kinesis), one takes PutRecordBatch directly (--sink firehose, and IoT Core): a delivery
        # stream with a Kinesis source refuses direct puts.
        direct = delivery_stream("ReadingsDelivery", direct_name, from_stream=False)
        delivery_stream("ReadingsFromKinesisDelivery", from_kinesis_name, from_stream=True)

        # ---- producers -----------------------------------------------------------------------------------
        producer_role = iam.CfnRole(
            self,
            "ProducerRole",
            role_name=f"{name}-producer",
            description="Producers (gateways, lakehouse produce/replay): send readings, nothing else",
            assume_role_policy_document=_doc(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                    "Action": "sts:AssumeRole",
                }
            ),
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="send-readings",
                    policy_document=_doc(
                        _allow("PutToTheStream", ["kinesis:PutRecord", "kinesis:PutRecords"], [stream_arn]),
                        _allow(
                            "PutToFirehose",
                            ["firehose:PutRecord", "firehose:PutRecordBatch"],
                            [f"{firehose_arn}{direct_name}"],
                        ),
                        # --sink s3: files straight into the landing layout (checks a name before writing).
                        _allow("WriteLandingFiles", ["s3:PutObject", "s3:GetObject"], objects(LANDING_READINGS)),
                        list_bucket("ListLanding", LANDING_READINGS),
                    ),
                )
            ],
        )

        if config.with_iot:
            iot_role = iam.CfnRole(
                self,
                "IotRuleRole",
                role_name=f"{name}-iot-rule",
                description="IoT Core rule: forward MQTT readings to the Firehose stream",
                assume_role_policy_document=_service_trust("iot.amazonaws.com"),
                policies=[
                    iam.CfnRole.PolicyProperty(
                        policy_name="forward-readings",
                        policy_document=_doc(
                            _allow(
                                "PutToFirehose",
                                ["firehose:PutRecord", "firehose:PutRecordBatch"],
                                [f"{firehose_arn}{direct_name}"],
                            )
                        ),
                    )
                ],
            )
            rule = iot.CfnTopicRule(
                self,
                "MqttReadings",
                rule_name=f"{config.athena_schema}_readings",
                topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                    sql=f"SELECT * FROM '{MQTT_TOPIC_FILTER}'",
                    aws_iot_sql_version="2016-03-23",
                    rule_disabled=False,
                    description="MQTT readings (one JSON reading per message) into the landing layout",
                    actions=[
                        iot.CfnTopicRule.ActionProperty(
                            firehose=iot.CfnTopicRule.FirehoseActionProperty(
                                delivery_stream_name=direct_name,
                                role_arn=iot_role.attr_arn,
                                # One reading a line, as bronze reads it: Firehose adds no newline itself.
                                separator="\n",
                                batch_mode=False,
                            )
                        )
                    ],
                ),
            )
            rule.add_resource_dependency(direct)  # the rule names the stream, it does not Ref it

        # ---- catalogue and Athena ----------------------------------------------------------------------
        schema = config.athena_schema
        databases = [schema] + [f"{schema}_{layer}" for layer in GLUE_LAYERS]
        for database in databases:
            layer = database.removeprefix(schema).strip("_")
            glue.CfnDatabase(
                self,
                f"Database{layer.title() or 'Base'}",
                catalog_id=account,
                database_input=glue.CfnDatabase.DatabaseInputProperty(
                    name=database, description=f"IoT sensor lakehouse {config.name}: {database}"
                ),
            )
        results_uri = f"s3://{bucket.bucket_name}/{ATHENA_RESULTS}"
        data_uri = f"s3://{bucket.bucket_name}/{ATHENA_DATA}"
        athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=name,
            description=f"IoT sensor lakehouse {config.name}: dbt, athena init, dashboards",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                bytes_scanned_cutoff_per_query=config.athena_bytes_scanned_cutoff,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=results_uri,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
        work_group_arn = f"arn:{partition}:athena:{region}:{account}:workgroup/{name}"
        catalog_arn = f"arn:{partition}:glue:{region}:{account}:catalog"

        def glue_resources(names: list[str]) -> list[str]:
            return (
                [catalog_arn]
                + [f"arn:{partition}:glue:{region}:{account}:database/{db}" for db in names]
                + [f"arn:{partition}:glue:{region}:{account}:table/{db}/*" for db in names]
            )

        # dbt-athena and QuickSight list databases and tables through Athena's view of the Glue catalogue.
        data_catalog_arn = f"arn:{partition}:athena:{region}:{account}:datacatalog/AwsDataCatalog"
        data_catalog_actions = [
            "athena:GetDataCatalog",
            "athena:ListDatabases",
            "athena:GetDatabase",
            "athena:ListTableMetadata",
            "athena:GetTableMetadata",
        ]
        athena_actions = [
            "athena:StartQueryExecution",
            "athena:GetQueryExecution",
            "athena:GetQueryResults",
            "athena:StopQueryExecution",
            "athena:GetWorkGroup",
        ]

        # ---- alerts ------------------------------------------------------------------------------------
        topic = sns.CfnTopic(
            self,
            "Alerts",
            topic_name=f"{name}-alerts",
            kms_master_key_id="alias/aws/sns",
            display_name="Lakehouse alerts",
        )

        # ---- bronze on EMR Serverless ------------------------------------------------------------------
        bronze_role = iam.CfnRole(
            self,
            "BronzeJobRole",
            role_name=f"{name}-bronze-job",
            description="The bronze job on EMR Serverless: landing in, bronze and quarantine out",
            assume_role_policy_document=_service_trust("emr-serverless.amazonaws.com"),
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="land-bronze",
                    policy_document=_doc(
                        _allow(
                            "ReadLandingAndTheJob",
                            ["s3:GetObject"],
                            objects(f"{LAKE_PREFIX}/landing/", JOBS_PREFIX),
                        ),
                        _allow(
                            "WriteBronzeQuarantineAndState",
                            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                            objects(
                                f"{LAKE_PREFIX}/bronze/",
                                f"{LAKE_PREFIX}/quarantine/",
                                f"{LAKE_PREFIX}/_checkpoints/",
                                f"{LAKE_PREFIX}/_manifests/",
                                f"{LOGS_PREFIX}emr/",
                            ),
                        ),
                        list_bucket(
                            "ListItsPrefixes",
                            f"{LAKE_PREFIX}/landing/",
                            f"{LAKE_PREFIX}/bronze/",
                            f"{LAKE_PREFIX}/quarantine/",
                            f"{LAKE_PREFIX}/_checkpoints/",
                            f"{LAKE_PREFIX}/_manifests/",
                            JOBS_PREFIX,
                            f"{LOGS_PREFIX}emr/",
                        ),
                        _allow("FindTheBucket", ["s3:GetBucketLocation"], [bucket_arn]),
                    ),
                )
            ],
        )
        bronze_role.cfn_options.condition = with_emr
        application = emrserverless.CfnApplication(
            self,
            "BronzeApplication",
            name=f"{name}-bronze",
            release_label=config.emr_release_label,
            type="SPARK",
            architecture="ARM64",
            # Nothing runs, and nothing is billed, between cycles: workers start with a job and stop after.
            auto_start_configuration=emrserverless.CfnApplication.AutoStartConfigurationProperty(enabled=True),
            auto_stop_configuration=emrserverless.CfnApplication.AutoStopConfigurationProperty(
                enabled=True, idle_timeout_minutes=5
            ),
            maximum_capacity=emrserverless.CfnApplication.MaximumAllowedResourcesProperty(
                cpu="16 vCPU", memory="64 GB", disk="320 GB"
            ),
        )
        application.cfn_options.condition = with_emr
        application_arn = f"arn:{partition}:emr-serverless:{region}:{account}:/applications/{application.ref}"

        # ---- the cycle: EventBridge Scheduler -> ECS Fargate task running `lakehouse run` --------------
        repository = ecr.CfnRepository(
            self,
            "CycleImages",
            repository_name=f"{name}-cycle",
            image_scanning_configuration=ecr.CfnRepository.ImageScanningConfigurationProperty(scan_on_push=True),
            lifecycle_policy=ecr.CfnRepository.LifecyclePolicyProperty(
                lifecycle_policy_text='{"rules":[{"rulePriority":1,"description":"keep the last 5 images",'
                '"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},'
                '"action":{"type":"expire"}}]}'
            ),
        )
        cycle_log_group = logs.CfnLogGroup(
            self, "CycleLogs", log_group_name=f"/lakehouse/{name}/cycles", retention_in_days=30
        )
        # A VPC with public subnets only: the task reaches AWS APIs through an internet gateway (S3 through a
        # free gateway endpoint), so nothing is billed at rest (no NAT gateway).
        vpc = ec2.Vpc(
            self,
            "Network",
            max_azs=2,
            nat_gateways=0,
            restrict_default_security_group=False,
            subnet_configuration=[ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
        )
        security_group = ec2.CfnSecurityGroup(
            self,
            "CycleTasks",
            vpc_id=vpc.vpc_id,
            group_description="Cycle tasks: no inbound traffic, HTTPS out to AWS APIs",
            security_group_egress=[
                ec2.CfnSecurityGroup.EgressProperty(ip_protocol="tcp", from_port=443, to_port=443, cidr_ip="0.0.0.0/0")
            ],
        )
        cluster = ecs.CfnCluster(self, "Cycles", cluster_name=f"{name}-cycles")

        execution_role = iam.CfnRole(
            self,
            "CycleExecutionRole",
            role_name=f"{name}-cycle-execution",
            description="ECS: pull the cycle image and write its logs",
            assume_role_policy_document=_service_trust("ecs-tasks.amazonaws.com"),
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="pull-and-log",
                    policy_document=_doc(
                        _allow(
                            "PullTheCycleImage",
                            ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                            [repository.attr_arn],
                        ),
                        # ECR's token is account-wide: this action has no resource-level permissions.
                        _allow("GetRegistryToken", ["ecr:GetAuthorizationToken"], ["*"]),
                        _allow(
                            "WriteCycleLogs",
                            ["logs:CreateLogStream", "logs:PutLogEvents"],
                            [f"{cycle_log_group.attr_arn}:*"],
                        ),
                    ),
                )
            ],
        )
        runner_databases = databases
        bronze_writes = (
            f"{LAKE_PREFIX}/bronze/",
            f"{LAKE_PREFIX}/quarantine/",
            f"{LAKE_PREFIX}/_checkpoints/",
            f"{LAKE_PREFIX}/_manifests/",
        )
        cycle_role = iam.CfnRole(
            self,
            "CycleRunnerRole",
            role_name=f"{name}-cycle-runner",
            description="lakehouse run: start bronze, gate, dbt on Athena, record runs, send alerts",
            assume_role_policy_document=_service_trust("ecs-tasks.amazonaws.com"),
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="run-cycles",
                    policy_document=_doc(
                        _allow(
                            "ReadTheLake",
                            ["s3:GetObject"],
                            objects(
                                f"{LAKE_PREFIX}/bronze/",
                                f"{LAKE_PREFIX}/quarantine/",
                                f"{LAKE_PREFIX}/_manifests/",
                                f"{LAKE_PREFIX}/_secrets/",
                            ),
                        ),
                        _allow(
                            "WriteRunsGatesAndWarehouse",
                            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                            objects(
                                f"{LAKE_PREFIX}/ops/",
                                f"{LAKE_PREFIX}/gx/",
                                f"{LAKE_PREFIX}/_locks/",
                                ATHENA_RESULTS,
                                ATHENA_DATA,
                            ),
                        ),
                        list_bucket(
                            "ListItsPrefixes",
                            f"{LAKE_PREFIX}/bronze/",
                            f"{LAKE_PREFIX}/quarantine/",
                            f"{LAKE_PREFIX}/_manifests/",
                            f"{LAKE_PREFIX}/_secrets/",
                            f"{LAKE_PREFIX}/ops/",
                            f"{LAKE_PREFIX}/gx/",
                            f"{LAKE_PREFIX}/_locks/",
                            ATHENA_RESULTS,
                            ATHENA_DATA,
                        ),
                        _allow("FindTheBucket", ["s3:GetBucketLocation"], [bucket_arn]),
                        _allow("QueryInTheWorkGroup", athena_actions, [work_group_arn]),
                        _allow("BrowseTheDataCatalog", data_catalog_actions, [data_catalog_arn]),
                        _allow(
                            "BuildTablesInTheStacksDatabases",
                            [
                                "glue:GetDatabase",
                                "glue:GetDatabases",
                                "glue:GetTable",
                                "glue:GetTables",
                                "glue:CreateTable",
                                "glue:UpdateTable",
                                "glue:DeleteTable",
                                "glue:GetPartition",
                                "glue:GetPartitions",
                                "glue:BatchCreatePartition",
                                "glue:BatchDeletePartition",
                            ],
                            glue_resources(runner_databases),
                        ),
                        _allow("SendAlerts", ["sns:Publish"], [topic.ref]),
                        *(
                            cdk.Fn.condition_if(bronze_in_cycle.logical_id, statement, cdk.Aws.NO_VALUE)
                            for statement in (
                                _allow("LocalBronzeReadsLanding", ["s3:GetObject"], objects(f"{LAKE_PREFIX}/landing/")),
                                _allow(
                                    "LocalBronzeWrites",
                                    ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                                    objects(*bronze_writes),
                                ),
                                list_bucket("LocalBronzeLists", f"{LAKE_PREFIX}/landing/", *bronze_writes),
                            )
                        ),
                        # Bronze on EMR Serverless: start, watch and stop job runs of this application only.
                        cdk.Fn.condition_if(
                            with_emr.logical_id,
                            _allow(
                                "RunTheBronzeJob",
                                [
                                    "emr-serverless:StartJobRun",
                                    "emr-serverless:GetJobRun",
                                    "emr-serverless:CancelJobRun",
                                ],
                                [application_arn, f"{application_arn}/jobruns/*"],
                            ),
                            cdk.Aws.NO_VALUE,
                        ),
                        cdk.Fn.condition_if(
                            with_emr.logical_id,
                            _allow(
                                "PassTheBronzeJobRole",
                                ["iam:PassRole"],
                                [bronze_role.attr_arn],
                                Condition={"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}},
                            ),
                            cdk.Aws.NO_VALUE,
                        ),
                    ),
                )
            ],
        )
        # Settings only: the cycle hands dbt its Athena profile from these (dbt_project/profiles.yml).
        environment = {
            "LAKEHOUSE_LAKE": lake_uri,
            "LAKEHOUSE_DBT_TARGET": "athena",
            "LAKEHOUSE_AWS_REGION": region,
            "LAKEHOUSE_ATHENA_WORK_GROUP": name,
            "LAKEHOUSE_ATHENA_RESULTS_URI": results_uri,
            "LAKEHOUSE_ATHENA_DATA_URI": data_uri,
            "LAKEHOUSE_ATHENA_SCHEMA": schema,
            "LAKEHOUSE_ALERT_SNS_TOPIC_ARN": topic.ref,
            "LAKEHOUSE_BRONZE_ON": bronze_on.value_as_string,
            "LAKEHOUSE_EMR_SERVERLESS_APPLICATION_ID": cdk.Fn.condition_if(
                with_emr.logical_id, application.ref, ""
            ).to_string(),
            "LAKEHOUSE_EMR_SERVERLESS_JOB_ROLE_ARN": cdk.Fn.condition_if(
                with_emr.logical_id, bronze_role.attr_arn, ""
            ).to_string(),
        }
        task = ecs.CfnTaskDefinition(
            self,
            "CycleTask",
            family=f"{name}-cycle",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu="2048",
            memory="8192",
            runtime_platform=ecs.CfnTaskDefinition.RuntimePlatformProperty(
                cpu_architecture="ARM64", operating_system_family="LINUX"
            ),
            execution_role_arn=execution_role.attr_arn,
            task_role_arn=cycle_role.attr_arn,
            container_definitions=[
                ecs.CfnTaskDefinition.ContainerDefinitionProperty(
                    name="cycle",
                    image=f"{repository.attr_repository_uri}:{image_tag.value_as_string}",
                    essential=True,
                    command=["lakehouse", "run", "--json-logs"],
                    environment=[
                        ecs.CfnTaskDefinition.KeyValuePairProperty(name=key, value=value)
                        for key, value in environment.items()
                    ],
                    log_configuration=ecs.CfnTaskDefinition.LogConfigurationProperty(
                        log_driver="awslogs",
                        options={
                            "awslogs-group": cycle_log_group.log_group_name or "",
                            "awslogs-region": region,
                            "awslogs-stream-prefix": "cycle",
                        },
                    ),
                )
            ],
        )
        scheduler_role = iam.CfnRole(
            self,
            "SchedulerRole",
            role_name=f"{name}-scheduler",
            description="EventBridge Scheduler: start the cycle task, nothing else",
            assume_role_policy_document=_service_trust("scheduler.amazonaws.com"),
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="start-cycles",
                    policy_document=_doc(
                        _allow(
                            "RunTheCycleTask",
                            ["ecs:RunTask"],
                            [f"arn:{partition}:ecs:{region}:{account}:task-definition/{name}-cycle:*"],
                            Condition={"ArnEquals": {"ecs:cluster": cluster.attr_arn}},
                        ),
                        _allow(
                            "PassTheTaskRoles",
                            ["iam:PassRole"],
                            [execution_role.attr_arn, cycle_role.attr_arn],
                            Condition={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                        ),
                    ),
                )
            ],
        )
        scheduler.CfnSchedule(
            self,
            "Schedule",
            name=f"{name}-cycle",
            description="One lakehouse cycle (bronze, gates, silver, gold) per tick",
            schedule_expression=schedule_expression.value_as_string,
            schedule_expression_timezone="UTC",
            state=schedule_state.value_as_string,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=cluster.attr_arn,
                role_arn=scheduler_role.attr_arn,
                # The cycle retries its own steps; a missed tick is caught up by the next cycle.
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=0, maximum_event_age_in_seconds=300
                ),
                ecs_parameters=scheduler.CfnSchedule.EcsParametersProperty(
                    task_definition_arn=task.ref,
                    launch_type="FARGATE",
                    task_count=1,
                    network_configuration=scheduler.CfnSchedule.NetworkConfigurationProperty(
                        awsvpc_configuration=scheduler.CfnSchedule.AwsVpcConfigurationProperty(
                            subnets=vpc.select_subnets(subnet_type=ec2.SubnetType.PUBLIC).subnet_ids,
                            security_groups=[security_group.attr_group_id],
                            assign_public_ip="ENABLED",
                        )
                    ),
                ),
            ),
        )

        # ---- dashboards (QuickSight on Athena) ---------------------------------------------------------
        dashboard_databases = [f"{schema}_{layer}" for layer in DASHBOARD_LAYERS]
        dashboards_role = iam.CfnRole(
            self,
            "DashboardsRole",
            role_name=f"{name}-dashboards",
            description="QuickSight: query silver and gold through the work group, read-only",
            assume_role_policy_document=_service_trust("quicksight.amazonaws.com", account_condition=False),
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="read-gold",
                    policy_document=_doc(
                        _allow("QueryInTheWorkGroup", athena_actions, [work_group_arn]),
                        _allow("BrowseTheDataCatalog", data_catalog_actions, [data_catalog_arn]),
                        _allow(
                            "ReadTheCatalogue",
                            ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"],
                            glue_resources(dashboard_databases),
                        ),
                        _allow(
                            "ReadTablesWriteResults",
                            ["s3:GetObject"],
                            objects(*(f"{ATHENA_DATA}{db}/" for db in dashboard_databases)),
                        ),
                        _allow(
                            "WriteQueryResults",
                            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                            objects(ATHENA_RESULTS),
                        ),
                        list_bucket(
                            "ListItsPrefixes", ATHENA_RESULTS, *(f"{ATHENA_DATA}{db}/" for db in dashboard_databases)
                        ),
                        _allow("FindTheBucket", ["s3:GetBucketLocation"], [bucket_arn]),
                    ),
                )
            ],
        )

        # ---- outputs: what `lakehouse infra outputs` turns into lakehouse.toml -------------------------
        def output(key: str, value: str, description: str, condition: cdk.CfnCondition | None = None) -> None:
            # Construct ids share one namespace with the parameters (BronzeOn); the template's output is `key`.
            cdk.CfnOutput(self, f"Output{key}", value=value, description=description, condition=condition)
            self.node.find_child(f"Output{key}").override_logical_id(key)

        output("LakeUri", lake_uri, "lake: the lake root")
        output("AwsRegion", region, "aws_region")
        output("KinesisStream", stream.ref, "kinesis_stream: lakehouse produce --sink kinesis")
        output("FirehoseStream", direct_name, "firehose_stream: lakehouse produce --sink firehose, IoT Core")
        output("FirehoseFromKinesisStream", from_kinesis_name, "the delivery stream reading the Kinesis stream")
        output("AthenaWorkGroup", name, "athena_work_group")
        output("AthenaResultsUri", results_uri, "athena_results_uri: query results (enforced by the work group)")
        output("AthenaDataUri", data_uri, "athena_data_uri: where dbt-athena writes tables")
        output("AthenaSchema", schema, "athena_schema: base Glue database name (<schema>_silver, ...)")
        output("AlertTopicArn", topic.ref, "alert_sns_topic_arn")
        output("BronzeOn", bronze_on.value_as_string, "bronze_on: emr-serverless or local")
        output("EmrServerlessApplicationId", application.ref, "emr_serverless_application_id", with_emr)
        output("EmrServerlessJobRoleArn", bronze_role.attr_arn, "emr_serverless_job_role_arn", with_emr)
        output("LakeBucket", bucket.bucket_name, "the lake bucket (kept when the stack is deleted)")
        output("ProducerRoleArn", producer_role.attr_arn, "role for producers")
        output("DashboardsRoleArn", dashboards_role.attr_arn, "role for QuickSight (lakehouse quicksight deploy)")
        output("CycleImageRepositoryUri", repository.attr_repository_uri, "push the cycle image here")


def build_app(config: StackConfig, outdir: str | None = None) -> cdk.App:
    """A CDK app holding the lakehouse stack. Synthesized without the CDK bootstrap stack (the template
    has no assets), so ``aws cloudformation deploy`` takes it as it is."""
    app = cdk.App(
        outdir=outdir,
        analytics_reporting=False,
        context={"aws:cdk:enable-path-metadata": False, "aws:cdk:disable-version-reporting": True},
    )
    LakehouseStack(app, config, synthesizer=cdk.BootstraplessSynthesizer())
    return app
