"""The rendered documents against the seed procedure, and semantic comparison."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chalicelib import policies

SEED = (Path(__file__).parents[1] / "fixtures" / "prerequisite-steps.txt").read_text()
ACCOUNT = "123456789012"
INSTANCE_ARN = f"arn:aws:iam::{ACCOUNT}:role/MyInstanceRole"


def seed_document(label: str) -> dict:
    """The JSON printed after ``label:`` in the seed, with its placeholders filled."""
    text = SEED.split(f"{label}:", 2)[-1].strip().splitlines()[0].strip()
    if not text.startswith("{"):  # the seed's automation policy lacks its opening brace
        text = "{ " + text
    text = text.replace("<account-id>", ACCOUNT).replace("{{ Instance Profile }}", INSTANCE_ARN)
    return json.loads(text)


def statements_by_first_action(doc: dict) -> dict[str, dict]:
    return {s["Action"][0] if isinstance(s["Action"], list) else s["Action"]: s for s in doc["Statement"]}


@pytest.mark.parametrize(
    ("label", "rendered"),
    [
        ("InstanceRolePermissionsPolicy", policies.instance_role_policy("aws", f"ssmlogbucket-us-east-1-{ACCOUNT}")),
        ("AutomationRolePermissionsPolicy", policies.automation_role_policy(INSTANCE_ARN)),
        ("InstanceRoleTrustPolicy", policies.trust_policy()),
        ("AutomationRoleTrustPolicy", policies.trust_policy()),
    ],
)
def test_rendered_matches_seed_field_by_field(label: str, rendered: dict) -> None:
    seed = seed_document(label)
    assert rendered["Version"] == seed["Version"] == "2012-10-17"
    assert len(rendered["Statement"]) == len(seed["Statement"])
    ours, theirs = statements_by_first_action(rendered), statements_by_first_action(seed)
    assert ours.keys() == theirs.keys()
    for key, stmt in theirs.items():
        for field in ("Effect", "Action", "Resource", "Principal"):
            assert ours[key].get(field) == stmt.get(field), (label, key, field)


def test_seed_automation_policy_really_lacks_its_brace() -> None:
    raw = SEED.split("AutomationRolePermissionsPolicy:", 2)[-1].strip()
    assert raw.startswith('"Version"')


def test_log_bucket_rendered_for_partition_and_region() -> None:
    doc = policies.instance_role_policy("aws-cn", policies.default_log_bucket("cn-north-1", ACCOUNT))
    s3 = next(s for s in doc["Statement"] if "s3:GetObject" in s["Action"])
    assert s3["Resource"] == f"arn:aws-cn:s3:::ssmlogbucket-cn-north-1-{ACCOUNT}/*"


def test_pass_role_only_on_instance_role() -> None:
    doc = policies.automation_role_policy("arn:aws-us-gov:iam::1:role/p/X")
    pass_role = [s for s in doc["Statement"] if s["Action"] == ["iam:PassRole"]]
    assert pass_role == [
        {"Action": ["iam:PassRole"], "Resource": ["arn:aws-us-gov:iam::1:role/p/X"], "Effect": "Allow"}
    ]


def test_managed_policy_arn_uses_partition() -> None:
    assert (
        policies.managed_policy_arn("aws-cn", "AWSMarketplaceRead-only")
        == "arn:aws-cn:iam::aws:policy/AWSMarketplaceRead-only"
    )


def test_trust_policy_is_a_fresh_copy() -> None:
    doc = policies.trust_policy()
    doc["Statement"].clear()
    assert policies.trust_policy()["Statement"]


def test_semantic_equality_ignores_order_and_shape() -> None:
    a = policies.automation_role_policy(INSTANCE_ARN)
    b = json.loads(json.dumps(a))
    b["Statement"].reverse()
    b["Statement"][1]["Action"].reverse()
    b["Statement"][0]["Resource"] = INSTANCE_ARN  # string instead of one-element list
    b["Statement"][2]["Action"] = "SSM:*"  # action names ignore case
    assert policies.same_document(a, b)
    assert policies.same_document(json.dumps(a), a)


def test_trust_principal_list_order_and_string_form() -> None:
    one = {
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
    }
    two = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}
        ],
    }
    assert policies.same_document(one, two)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["Statement"][0]["Action"].append("ssm:SendCommand"),
        lambda d: d["Statement"][3].update(Resource="arn:aws:s3:::other/*"),
        lambda d: d["Statement"][2].update(Effect="Deny"),
        lambda d: d["Statement"].pop(),
        lambda d: d["Statement"][0].update(Condition={"Bool": {"aws:SecureTransport": "true"}}),
        lambda d: d.update(Version="2008-10-17"),
    ],
)
def test_semantic_difference_is_seen(mutate) -> None:
    a = policies.instance_role_policy("aws", "bucket")
    b = json.loads(json.dumps(a))
    mutate(b)
    assert not policies.same_document(a, b)


def test_condition_values_compare_as_sets() -> None:
    base = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"k": ["a", "b"]}}}
        ],
    }
    other = json.loads(json.dumps(base))
    other["Statement"][0]["Condition"]["StringEquals"]["k"] = ["b", "a"]
    assert policies.same_document(base, other)


def test_no_placeholder_left_in_any_document() -> None:
    docs = [
        policies.instance_role_policy("aws", "b"),
        policies.automation_role_policy(INSTANCE_ARN),
        policies.trust_policy(),
    ]
    assert not re.search(r"\{\{|<account-id>", json.dumps(docs))
