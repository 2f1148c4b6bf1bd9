"""Shared fixtures: in-process moto with the Marketplace policies, and IAM call counting."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

ACCOUNT = "123456789012"
REGION = "us-east-1"
# Credentials and region for every test; nothing may reach real AWS.
SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "ELIGIBLE_PRINCIPAL_PATHS": "/",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
os.environ.update(SAFE_ENV)
for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS"):
    os.environ.pop(var, None)

# A policy document that widens a role: what a careless hand adds.
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
WRITE_PREFIXES = ("Create", "Put", "Delete", "Attach", "Detach", "Add", "Remove", "Tag", "Untag", "Update")


@cache
def _moto_policy_data() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)


def load_marketplace_policies(account_id: str = ACCOUNT) -> None:
    """Load the Marketplace managed policies that moto ships, and only those.

    moto can load all ~1,300 AWS managed policies (MOTO_IAM_LOAD_MANAGED_POLICIES),
    which costs 1.7 s per test; the HTTP tests use that real switch instead.
    """
    from moto.iam.models import AWSManagedPolicy, iam_backends

    backend = iam_backends[account_id]["aws"]
    data = _moto_policy_data()
    for name in ("AWSMarketplaceFullAccess", "AWSMarketplaceRead-only"):
        policy = AWSManagedPolicy.from_data(name, account_id, REGION, data[name])
        backend.managed_policies[policy.arn] = policy


@dataclass
class CallLog:
    """IAM operations seen on the wire, recorded by a botocore event hook."""

    calls: list[str] = field(default_factory=list)

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if c.startswith(WRITE_PREFIXES)]

    @property
    def reads(self) -> list[str]:
        return [c for c in self.calls if not c.startswith(WRITE_PREFIXES)]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def moto_iam() -> Iterator[Any]:
    """An in-process moto IAM with the Marketplace policies; yields a boto3 IAM client."""
    import boto3
    from moto import mock_aws

    from chalicelib import aws

    with mock_aws():
        aws.reset_caches()
        load_marketplace_policies()
        yield boto3.client("iam")
    aws.reset_caches()


@pytest.fixture
def iam_calls(moto_iam: Any) -> CallLog:
    """Counts every call the service's IAM client makes."""
    from chalicelib import aws

    log = CallLog()
    aws.iam_client().meta.events.register("before-call.iam", log)
    return log


def iam_snapshot(iam: Any) -> dict[str, Any]:
    """Everything IAM holds that the service could have touched, in a comparable form."""
    from chalicelib.policies import canonical

    roles = {}
    for r in iam.list_roles()["Roles"]:
        name = r["RoleName"]
        full = iam.get_role(RoleName=name)["Role"]
        roles[name] = {
            "path": r["Path"],
            "trust": canonical(full["AssumeRolePolicyDocument"]),
            "tags": {t["Key"]: t["Value"] for t in full.get("Tags", [])},
            "boundary": (full.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            "inline": {
                p: canonical(iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"])
                for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
            },
            "managed": sorted(
                p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            ),
        }
    profiles = {
        p["InstanceProfileName"]: {
            "path": p["Path"],
            "roles": [x["RoleName"] for x in p["Roles"]],
            "tags": iam.get_instance_profile(InstanceProfileName=p["InstanceProfileName"])["InstanceProfile"].get(
                "Tags", []
            ),
        }
        for p in iam.list_instance_profiles()["InstanceProfiles"]
    }
    users = {
        u["UserName"]: sorted(
            p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=u["UserName"])["AttachedPolicies"]
        )
        for u in iam.list_users()["Users"]
    }
    groups = {
        g["GroupName"]: sorted(
            p["PolicyArn"] for p in iam.list_attached_group_policies(GroupName=g["GroupName"])["AttachedPolicies"]
        )
        for g in iam.list_groups()["Groups"]
    }
    return {"roles": roles, "profiles": profiles, "users": users, "groups": groups}


@pytest.fixture
def captured_logs() -> Iterator[Any]:
    """Everything the service logs, at DEBUG, while the test runs."""
    import io

    from chalicelib.log import logger

    buf = io.StringIO()
    handler = logger.registered_handler
    old_stream, old_level = handler.setStream(buf), logger.log_level
    logger.setLevel("DEBUG")
    yield buf
    handler.setStream(old_stream)
    logger.setLevel(old_level)
