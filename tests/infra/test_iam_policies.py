"""A spec of every IAM policy in the template: no action is a wildcard, no data action (S3, Kinesis,
Firehose, Glue) has a `*` resource, each role reaches only its own prefixes, streams and databases, each
service role trusts only its service, and the bucket refuses requests without TLS."""

from __future__ import annotations

from typing import Any

import pytest

BUCKET = "arn:aws:s3:::LAKE"
SCHEMA = "lakehouse_dev"
DATA_SERVICES = ("s3", "kinesis", "firehose", "glue")

# What each component's role may reach in the lake bucket: object prefixes it reads or writes, and the
# prefixes of those it may write. Everything else in the bucket is out of its reach.
S3_SPEC = {
    "ProducerRole": {"reach": {"lake/landing/readings/"}, "write": {"lake/landing/readings/"}},
    "FirehoseRole": {
        "reach": {"lake/landing/readings/", "lake/quarantine/_firehose/"},
        "write": {"lake/landing/readings/", "lake/quarantine/_firehose/"},
    },
    "BronzeJobRole": {
        "reach": {
            "lake/landing/",
            "jobs/",
            "lake/bronze/",
            "lake/quarantine/",
            "lake/_checkpoints/",
            "lake/_manifests/",
            "logs/emr/",
        },
        "write": {"lake/bronze/", "lake/quarantine/", "lake/_checkpoints/", "lake/_manifests/", "logs/emr/"},
    },
    "CycleRunnerRole": {
        "reach": {
            "lake/bronze/",
            "lake/quarantine/",
            "lake/_manifests/",
            "lake/_secrets/",
            "lake/ops/",
            "lake/gx/",
            "lake/_locks/",
            "athena/results/",
            "athena/tables/",
        },
        "write": {"lake/ops/", "lake/gx/", "lake/_locks/", "athena/results/", "athena/tables/"},
    },
    "DashboardsRole": {
        "reach": {"athena/results/", f"athena/tables/{SCHEMA}_silver/", f"athena/tables/{SCHEMA}_gold/"},
        "write": {"athena/results/"},
    },
    "IotRuleRole": {"reach": set(), "write": set()},
    "SchedulerRole": {"reach": set(), "write": set()},
    "CycleExecutionRole": {"reach": set(), "write": set()},
}
SERVICE_OF_ROLE = {
    "FirehoseRole": "firehose.amazonaws.com",
    "BronzeJobRole": "emr-serverless.amazonaws.com",
    "CycleRunnerRole": "ecs-tasks.amazonaws.com",
    "CycleExecutionRole": "ecs-tasks.amazonaws.com",
    "SchedulerRole": "scheduler.amazonaws.com",
    "IotRuleRole": "iot.amazonaws.com",
    "DashboardsRole": "quicksight.amazonaws.com",
}
WRITE_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


# The two ways to deploy (parameter BronzeOn) and the template's conditions in each.
VARIANTS = {
    "emr-serverless": {"WithEmrServerless": True, "BronzeInTheCycle": False},
    "local": {"WithEmrServerless": False, "BronzeInTheCycle": True},
}
LOCAL_BRONZE = {"lake/landing/", "lake/bronze/", "lake/quarantine/", "lake/_checkpoints/", "lake/_manifests/"}


def render(value: Any, conditions: dict[str, bool]) -> Any:
    """A template value as deployed with ``conditions``: Ref/GetAtt become placeholders, Join joins, Fn::If
    takes the branch its condition selects (AWS::NoValue drops the element)."""
    if isinstance(value, dict):
        if "Fn::If" in value:
            name, if_true, if_false = value["Fn::If"]
            return render(if_true if conditions[name] else if_false, conditions)
        if "Ref" in value:
            return {"Lake": "LAKE", "AWS::Partition": "aws", "AWS::Region": "REGION", "AWS::AccountId": "ACCOUNT"}.get(
                value["Ref"], f"${{{value['Ref']}}}"
            )
        if "Fn::GetAtt" in value:
            name, attribute = value["Fn::GetAtt"]
            return BUCKET if (name, attribute) == ("Lake", "Arn") else f"${{{name}.{attribute}}}"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(render(p, conditions)) for p in parts)
        return {k: render(v, conditions) for k, v in value.items()}
    if isinstance(value, list):
        return [r for r in (render(v, conditions) for v in value) if r != "${AWS::NoValue}"]
    return value


def listify(value: Any) -> list:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def roles(of_type, variant) -> dict[str, dict[str, Any]]:
    conditions = VARIANTS[variant]
    return {
        name: render(role["Properties"], conditions)
        for name, role in of_type("AWS::IAM::Role").items()
        if conditions.get(role.get("Condition"), True)
    }


@pytest.fixture(scope="module")
def statements(roles, of_type, variant) -> list[tuple[str, dict]]:
    """(owner, statement) for every identity policy statement in the template: inline role policies, and
    any AWS::IAM::Policy / ManagedPolicy (none today; they are read so that one added later is checked)."""
    found = []
    for name, role in roles.items():
        for policy in role.get("Policies", []):
            found += [(name, s) for s in policy["PolicyDocument"]["Statement"]]
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, policy in of_type(kind).items():
            document = render(policy["Properties"], VARIANTS[variant])["PolicyDocument"]
            found += [(name, s) for s in document["Statement"]]
    return found


@pytest.fixture(scope="module")
def spec(variant) -> dict[str, dict[str, set[str]]]:
    """S3_SPEC as deployed: with BronzeOn=local there is no bronze job role, and the cycle runner lands
    bronze itself."""
    if variant == "emr-serverless":
        return S3_SPEC
    runner = S3_SPEC["CycleRunnerRole"]
    local = {k: v for k, v in S3_SPEC.items() if k != "BronzeJobRole"}
    local["CycleRunnerRole"] = {
        "reach": runner["reach"] | LOCAL_BRONZE,
        "write": runner["write"] | (LOCAL_BRONZE - {"lake/landing/"}),
    }
    return local


def test_every_component_has_its_own_role(roles, spec):
    assert set(roles) == set(spec)
    assert (set(SERVICE_OF_ROLE) | {"ProducerRole"}) & set(spec) == set(roles)


def test_no_statement_allows_a_wildcard_action(statements):
    for owner, statement in statements:
        assert statement["Effect"] == "Allow"
        for action in listify(statement["Action"]):
            assert "*" not in action, f"{owner} {statement.get('Sid')}: {action}"


def test_no_data_action_has_a_star_resource(statements):
    for owner, statement in statements:
        services = {action.split(":")[0] for action in listify(statement["Action"])}
        if services & set(DATA_SERVICES):
            for resource in listify(statement["Resource"]):
                assert resource != "*" and not resource.endswith(":::*"), f"{owner} {statement.get('Sid')}"
                assert not resource.startswith("arn:aws:s3:::*")


def test_the_only_star_resource_is_ecrs_registry_token(statements):
    stars = [(o, s["Action"]) for o, s in statements if "*" in listify(s["Resource"])]
    assert stars == [("CycleExecutionRole", ["ecr:GetAuthorizationToken"])]


def _s3_object_prefixes(statements, owner: str, actions: set[str] | None = None) -> set[str]:
    prefixes = set()
    for name, statement in statements:
        if name != owner:
            continue
        s3_actions = {a for a in listify(statement["Action"]) if a.startswith("s3:")}
        if not s3_actions or (actions is not None and not s3_actions & actions):
            continue
        for resource in listify(statement["Resource"]):
            if resource.startswith(BUCKET + "/"):
                key = resource.removeprefix(BUCKET + "/")
                assert key.endswith("/*") and "*" not in key[:-1], f"{owner}: {resource}"
                prefixes.add(key[:-1])
            else:
                assert resource == BUCKET, f"{owner}: {resource} is not the lake bucket"
    return prefixes


def test_each_role_reaches_only_its_own_prefixes_of_the_lake(statements, spec):
    for role, expected in spec.items():
        assert _s3_object_prefixes(statements, role) == expected["reach"], role
        assert _s3_object_prefixes(statements, role, WRITE_ACTIONS) == expected["write"], role
        # Listing the bucket is limited to the same prefixes; any other bucket-level action is a lookup.
        listed: set[str] = set()
        for name, statement in statements:
            if name != role or statement["Resource"] != [BUCKET]:
                continue
            if "s3:ListBucket" in statement["Action"]:
                listed.update(p.removesuffix("*") for p in statement["Condition"]["StringLike"]["s3:prefix"])
            else:
                assert set(statement["Action"]) <= {"s3:GetBucketLocation", "s3:ListBucketMultipartUploads"}
        assert listed == expected["reach"], role


def test_only_the_stacks_streams_are_reachable_and_only_by_who_uses_them(statements):
    reach: dict[str, set[str]] = {}
    for owner, statement in statements:
        for action in listify(statement["Action"]):
            if action.startswith(("kinesis:", "firehose:")):
                for resource in listify(statement["Resource"]):
                    reach.setdefault(owner, set()).add(resource)
    direct = "arn:aws:firehose:REGION:ACCOUNT:deliverystream/lakehouse-dev-readings"
    assert reach == {
        "ProducerRole": {"${Readings.Arn}", direct},
        "FirehoseRole": {"${Readings.Arn}"},
        "IotRuleRole": {direct},
    }


def test_glue_access_is_limited_to_the_stacks_databases_and_dashboards_only_read_silver_and_gold(statements):
    databases = {SCHEMA} | {f"{SCHEMA}_{layer}" for layer in ("bronze", "staging", "silver", "gold")}
    for owner, statement in statements:
        actions = listify(statement["Action"])
        if not any(a.startswith("glue:") for a in actions):
            continue
        for resource in listify(statement["Resource"]):
            kind, _, rest = resource.removeprefix("arn:aws:glue:REGION:ACCOUNT:").partition("/")
            assert kind in ("catalog", "database", "table"), resource
            if kind != "catalog":
                assert rest.split("/")[0].startswith(SCHEMA), resource
        if owner == "DashboardsRole":
            assert all(a.startswith("glue:Get") for a in actions)
            names = {r.split("/")[1] for r in statement["Resource"] if "/" in r}
            assert names == {f"{SCHEMA}_silver", f"{SCHEMA}_gold"}
        else:
            assert owner == "CycleRunnerRole"
            assert databases <= {r.split("/")[1] for r in statement["Resource"] if "/" in r}


def test_athena_and_emr_serverless_are_limited_to_the_stacks_work_group_and_application(statements):
    for owner, statement in statements:
        actions = listify(statement["Action"])
        if any(a.startswith("athena:") for a in actions):
            assert statement["Resource"] in (
                ["arn:aws:athena:REGION:ACCOUNT:workgroup/lakehouse-dev"],
                ["arn:aws:athena:REGION:ACCOUNT:datacatalog/AwsDataCatalog"],  # listing databases and tables
            ), owner
            if "datacatalog" in statement["Resource"][0]:
                assert all(a.startswith(("athena:Get", "athena:List")) for a in actions), owner
        if any(a.startswith("emr-serverless:") for a in actions):
            assert owner == "CycleRunnerRole"
            app = "arn:aws:emr-serverless:REGION:ACCOUNT:/applications/${BronzeApplication}"
            assert statement["Resource"] == [app, f"{app}/jobruns/*"]
        if "iam:PassRole" in actions:
            assert "iam:PassedToService" in statement["Condition"]["StringEquals"], owner


def test_each_service_role_trusts_only_its_service_on_behalf_of_this_account(roles):
    for name, service in SERVICE_OF_ROLE.items():
        if name not in roles:
            continue
        (trust,) = roles[name]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": service}
        assert trust["Action"] == "sts:AssumeRole"
        if service != "quicksight.amazonaws.com":  # QuickSight's service does not send aws:SourceAccount
            assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "ACCOUNT"}}
    (producer,) = roles["ProducerRole"]["AssumeRolePolicyDocument"]["Statement"]
    assert producer["Principal"] == {"AWS": "arn:aws:iam::ACCOUNT:root"}  # principals of this account only


def test_the_bucket_denies_every_request_without_tls(of_type):
    (policy,) = of_type("AWS::S3::BucketPolicy").values()
    properties = render(policy["Properties"], {})
    assert properties["Bucket"] == "LAKE"
    (statement,) = properties["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == {"AWS": "*"}
    assert statement["Action"] == "s3:*"  # a Deny: the wildcard is the safe direction
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(statement["Resource"]) == [BUCKET, BUCKET + "/*"]
