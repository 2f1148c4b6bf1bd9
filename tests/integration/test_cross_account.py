"""Cross-account targeting through the provisioner role; moto keeps separate state per account."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app, custom_resource
from chalicelib import aws
from chalicelib.config import Settings
from chalicelib.errors import AccountUnreachable
from chalicelib.service import Service
from chalicelib.spec import parse_rest_body
from tests.cfn import Context, ResponseEndpoint, event
from tests.conftest import ACCOUNT, CallLog, load_marketplace_policies
from tests.faults import install

MEMBER = "111111111111"
OTHER = "222222222222"


def account_iam(account_id: str) -> Any:
    """A client acting inside ``account_id`` (moto maps assumed credentials to their account)."""
    creds = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/test-admin", RoleSessionName="test-admin"
    )["Credentials"]
    return boto3.client(
        "iam",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


@pytest.fixture
def member(moto_iam: Any) -> Any:
    """A member account with its provisioner role and a builder user."""
    iam = account_iam(MEMBER)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
        ],
    }
    iam.create_role(RoleName="mib-prereqs-provisioner", AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_user(UserName="alice", Path="/builders/")
    load_marketplace_policies(MEMBER)
    return iam


@pytest.fixture
def assume_calls(moto_iam: Any) -> CallLog:
    log = CallLog()
    install(aws.sts_client(), "before-call.sts.AssumeRole", log)
    return log


def spec(body: dict | None = None) -> Any:
    return parse_rest_body("demo", {"account_id": MEMBER, **(body or {})}, "rest")


def test_member_account_is_changed_and_no_other(member: Any, moto_iam: Any, assume_calls: CallLog) -> None:
    service = Service(Settings(eligible_principal_paths=("/builders/",)), caller="rest-jane")
    attach = {"policy": "AWSMarketplaceFullAccess", "principal_type": "user", "principal_name": "alice"}
    result = service.converge(spec({"attachments": [attach]}))
    assert result.plan.instance_role.arn == f"arn:aws:iam::{MEMBER}:role/mib-prereqs/demo/demo-InstanceRole"
    assert [r["RoleName"] for r in member.list_roles(PathPrefix="/mib-prereqs/")["Roles"]]
    assert member.list_attached_user_policies(UserName="alice")["AttachedPolicies"]
    assert moto_iam.list_roles()["Roles"] == []  # the hub's own account is untouched
    assert account_iam(OTHER).list_roles()["Roles"] == []

    assert service.show("demo", MEMBER).plan.changes == ()
    assert [s["name"] for s in service.list_sets(MEMBER)["sets"]] == ["demo"]
    service.delete("demo", "rest", MEMBER)
    assert member.list_roles(PathPrefix="/mib-prereqs/")["Roles"] == []
    # One AssumeRole for five operations: credentials are cached until shortly before expiry.
    assert assume_calls.calls == ["AssumeRole"]


def test_session_name_identifies_the_caller(member: Any) -> None:
    seen: list[dict] = []
    install(aws.sts_client(), "provide-client-params.sts.AssumeRole", lambda params, **_: seen.append(dict(params)))
    Service(Settings(), caller="rest-jane@example").converge(spec())
    assert seen[0]["RoleSessionName"] == "rest-jane@example"
    assert seen[0]["RoleArn"] == f"arn:aws:iam::{MEMBER}:role/mib-prereqs-provisioner"


def test_account_actually_reached_is_checked(member: Any, moto_iam: Any) -> None:
    def elsewhere(parsed: dict, **_: Any) -> None:
        parsed["AssumedRoleUser"]["Arn"] = f"arn:aws:sts::{OTHER}:assumed-role/mib-prereqs-provisioner/x"

    install(aws.sts_client(), "after-call.sts.AssumeRole", elsewhere)
    with pytest.raises(AccountUnreachable, match=f"reached account {OTHER}, not {MEMBER}"):
        Service(Settings()).converge(spec())
    assert member.list_roles(PathPrefix="/mib-prereqs/")["Roles"] == []


def test_rest_query_and_body_target_the_member(member: Any) -> None:
    with Client(app, stage_name="local") as client:
        put = client.http.put(
            "/prerequisites/demo", headers={"content-type": "application/json"}, body=json.dumps({"account_id": MEMBER})
        )
        assert put.status_code == 201 and put.json_body["account_id"] == MEMBER
        got = client.http.get(f"/prerequisites/demo?account_id={MEMBER}")
        assert got.json_body["in_sync"] is True
        assert client.http.get("/prerequisites/demo").status_code == 404  # not in the hub's account
        assert client.http.delete(f"/prerequisites/demo?account_id={MEMBER}").status_code == 200


def test_member_stack_custom_resource_touches_only_its_account(member: Any, moto_iam: Any) -> None:
    endpoint = ResponseEndpoint()
    try:
        stack = f"arn:aws:cloudformation:eu-west-1:{MEMBER}:stack/member-prereqs/0000"
        custom_resource(event("Create", endpoint.url, {"SetName": "org"}, stack=stack), Context())
        resp = endpoint.last()
        assert resp["Status"] == "SUCCESS", resp["Reason"]
        assert resp["PhysicalResourceId"] == f"mib-prereqs/{MEMBER}/org/org-InstanceRole/org-AutomationRole"
        assert resp["Data"]["AutomationRoleArn"].startswith(f"arn:aws:iam::{MEMBER}:role/")
        assert moto_iam.list_roles()["Roles"] == []
        custom_resource(
            event("Delete", endpoint.url, {"SetName": "org"}, physical=resp["PhysicalResourceId"], stack=stack),
            Context(),
        )
        assert endpoint.last()["Status"] == "SUCCESS"
        assert member.list_roles(PathPrefix="/mib-prereqs/")["Roles"] == []
    finally:
        endpoint.stop()


def test_no_credentials_or_documents_in_info_logs(member: Any, captured_logs: Any) -> None:
    from chalicelib.log import logger

    logger.setLevel("INFO")
    seen: list[dict] = []
    install(aws.sts_client(), "after-call.sts.AssumeRole", lambda parsed, **_: seen.append(parsed["Credentials"]))
    with Client(app, stage_name="local") as client:
        body = {
            "account_id": MEMBER,
            "attachments": [
                {"policy": "AWSMarketplaceFullAccess", "principal_type": "user", "principal_name": "alice"}
            ],
        }
        assert (
            client.http.put(
                "/prerequisites/demo", headers={"content-type": "application/json"}, body=json.dumps(body)
            ).status_code
            == 201
        )
        assert client.http.get(f"/prerequisites/demo?account_id={MEMBER}").status_code == 200
    logs = captured_logs.getvalue()
    assert '"action":"create_role"' in logs  # it did log the changes
    [creds] = seen
    for secret in (creds["SecretAccessKey"], creds["SessionToken"], creds["AccessKeyId"]):
        assert secret not in logs
    assert "Statement" not in logs and "sts:AssumeRole" not in logs and "ssm:GetDocument" not in logs


def test_throttled_assume_role_is_throttled_not_unreachable(member: Any) -> None:
    from chalicelib.errors import Throttled
    from tests.faults import FailCalls

    install(aws.sts_client(), "before-call.sts.AssumeRole", FailCalls("AssumeRole", "Throttling", times=10))
    with pytest.raises(Throttled, match="STS is throttling AssumeRole"):
        Service(Settings()).converge(spec())
