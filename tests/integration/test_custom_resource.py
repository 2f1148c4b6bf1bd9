"""The custom-resource protocol, with responses received on a real 127.0.0.1 HTTP endpoint."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from app import custom_resource
from chalicelib import aws
from chalicelib import custom_resource as cfn
from chalicelib.config import Settings
from chalicelib.service import Service
from tests.cfn import ATTRIBUTES, SECRET_QUERY, STACK_A, STACK_B, Context, ResponseEndpoint, event
from tests.conftest import ACCOUNT, CallLog, iam_snapshot

SET = {"SetName": "demo"}
ID = f"mib-prereqs/{ACCOUNT}/demo/demo-InstanceRole/demo-AutomationRole"
RENAMED = {"SetName": "demo", "InstanceRoleName": "demo-NextInstance"}
RENAMED_ID = f"mib-prereqs/{ACCOUNT}/demo/demo-NextInstance/demo-AutomationRole"


@pytest.fixture
def endpoint() -> Iterator[ResponseEndpoint]:
    e = ResponseEndpoint()
    yield e
    e.stop()


@pytest.fixture
def run(moto_iam: Any, endpoint: ResponseEndpoint):
    """Send one event through the Lambda entry point; return the response CloudFormation received."""

    def send(request_type: str, props: dict | None = None, **kw: Any) -> dict[str, Any]:
        before = len(endpoint.received)
        custom_resource(event(request_type, endpoint.url, props, **kw), Context())
        assert len(endpoint.received) == before + 1, "exactly one response per event"
        return endpoint.last()

    return send


def names(iam: Any) -> list[str]:
    return sorted(r["RoleName"] for r in iam.list_roles()["Roles"])


def passrole_target(iam: Any) -> list[str]:
    doc = iam.get_role_policy(RoleName="demo-AutomationRole", PolicyName="AutomationRolePermissionsPolicy")
    return next(s["Resource"] for s in doc["PolicyDocument"]["Statement"] if s["Action"] == ["iam:PassRole"])


def in_sync() -> bool:
    return not Service(Settings()).show("demo", owner=STACK_A).plan.changes


def test_create_answers_success_with_the_six_attributes(run, moto_iam: Any, endpoint: ResponseEndpoint) -> None:
    resp = run("Create", SET)
    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert resp["PhysicalResourceId"] == ID
    assert sorted(resp["Data"]) == sorted(ATTRIBUTES)
    assert resp["Data"]["InstanceRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/mib-prereqs/demo/demo-InstanceRole"
    assert resp["Data"]["InstanceProfileName"] == "demo-InstanceRole"
    assert (resp["StackId"], resp["LogicalResourceId"]) == (STACK_A, "Prerequisites")
    assert endpoint.headers[-1].get("Content-Type", "") == ""  # what a presigned S3 PUT expects
    tags = {t["Key"]: t["Value"] for t in moto_iam.get_role(RoleName="demo-InstanceRole")["Role"]["Tags"]}
    assert tags["mib-prereqs:owner"] == STACK_A
    doc = moto_iam.get_role_policy(RoleName="demo-InstanceRole", PolicyName="InstanceRolePermissionsPolicy")
    assert f"arn:aws:s3:::ssmlogbucket-eu-west-1-{ACCOUNT}/*" in json.dumps(doc["PolicyDocument"])  # the stack's region


def test_replayed_create_converges_and_answers_the_same(run, moto_iam: Any, iam_calls: CallLog) -> None:
    first = run("Create", SET)
    iam_calls.clear()
    second = run("Create", SET)
    assert (second["Status"], second["PhysicalResourceId"], second["Data"]) == ("SUCCESS", ID, first["Data"])
    assert iam_calls.writes == []


def test_update_in_place_keeps_the_id(run, moto_iam: Any) -> None:
    run("Create", SET)
    resp = run("Update", {**SET, "Tags": [{"Key": "team", "Value": "images"}]}, physical=ID, old=SET)
    assert (resp["Status"], resp["PhysicalResourceId"]) == ("SUCCESS", ID)
    tags = {t["Key"]: t["Value"] for t in moto_iam.get_role(RoleName="demo-AutomationRole")["Role"]["Tags"]}
    assert tags["team"] == "images"


def test_rename_is_a_replacement_and_old_delete_keeps_what_is_used(run, moto_iam: Any) -> None:
    run("Create", SET)
    resp = run("Update", RENAMED, physical=ID, old=SET)
    assert (resp["Status"], resp["PhysicalResourceId"]) == ("SUCCESS", RENAMED_ID)
    # The old roles stay until CloudFormation deletes the old id.
    assert names(moto_iam) == ["demo-AutomationRole", "demo-InstanceRole", "demo-NextInstance"]
    assert passrole_target(moto_iam) == [resp["Data"]["InstanceRoleArn"]]

    cleanup = run("Delete", SET, physical=ID)
    assert (cleanup["Status"], cleanup["PhysicalResourceId"]) == ("SUCCESS", ID)
    assert names(moto_iam) == ["demo-AutomationRole", "demo-NextInstance"]
    profiles = [p["InstanceProfileName"] for p in moto_iam.list_instance_profiles()["InstanceProfiles"]]
    assert profiles == ["demo-NextInstance"]
    assert in_sync()


def test_rollback_update_converges_back(run, moto_iam: Any) -> None:
    run("Create", SET)
    run("Update", RENAMED, physical=ID, old=SET)
    rollback = run("Update", SET, physical=RENAMED_ID, old=RENAMED)  # properties swapped
    assert (rollback["Status"], rollback["PhysicalResourceId"]) == ("SUCCESS", ID)
    assert passrole_target(moto_iam) == [rollback["Data"]["InstanceRoleArn"]]
    cleanup = run("Delete", RENAMED, physical=RENAMED_ID)  # CloudFormation removes the new resource
    assert cleanup["Status"] == "SUCCESS"
    assert names(moto_iam) == ["demo-AutomationRole", "demo-InstanceRole"]
    assert in_sync()


def test_delete_removes_everything_and_a_replay_succeeds(run, moto_iam: Any) -> None:
    moto_iam.create_user(UserName="alice")
    props = {
        **SET,
        "Attachments": [{"Policy": "AWSMarketplaceRead-only", "PrincipalType": "user", "PrincipalName": "alice"}],
    }
    assert run("Create", props)["Status"] == "SUCCESS"
    assert moto_iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"]
    assert run("Delete", props, physical=ID)["Status"] == "SUCCESS"
    assert names(moto_iam) == [] and moto_iam.list_instance_profiles()["InstanceProfiles"] == []
    assert moto_iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []
    replay = run("Delete", props, physical=ID)
    assert (replay["Status"], replay["PhysicalResourceId"]) == ("SUCCESS", ID)


def test_retain_on_delete_leaves_the_resources(run, moto_iam: Any) -> None:
    props = {**SET, "RetainOnDelete": "true"}
    run("Create", props)
    assert run("Delete", props, physical=ID)["Status"] == "SUCCESS"
    assert names(moto_iam) == ["demo-AutomationRole", "demo-InstanceRole"]


def test_delete_after_failed_create_touches_nothing(run, moto_iam: Any) -> None:
    moto_iam.create_role(RoleName="demo-InstanceRole", AssumeRolePolicyDocument="{}")  # someone else's
    failed = run("Create", SET)
    assert failed["Status"] == "FAILED" and "set adopt" in failed["Reason"].replace("Adopt", "adopt")
    assert failed["PhysicalResourceId"].startswith("mib-prereqs-failed/")
    before = iam_snapshot(moto_iam)
    deleted = run("Delete", SET, physical=failed["PhysicalResourceId"])
    assert (deleted["Status"], deleted["PhysicalResourceId"]) == ("SUCCESS", failed["PhysicalResourceId"])
    assert iam_snapshot(moto_iam) == before


@pytest.mark.parametrize(
    ("props", "reason"),
    [
        ({}, "SetName: required"),
        ({"SetName": "-bad"}, "SetName: must match"),
        ({**SET, "Adopt": "yes"}, 'Adopt: must be "true" or "false"'),
        ({**SET, "RetainOnDelete": "True"}, 'RetainOnDelete: must be "true" or "false"'),
        ({**SET, "Colour": "blue"}, "Colour: unknown property"),
        ({**SET, "LogBucket": "Bad_Bucket"}, "LogBucket: must follow S3 bucket naming rules"),
        ({**SET, "InstanceRoleName": "bad name"}, "InstanceRoleName: must match"),
        (
            {**SET, "Attachments": [{"Policy": "AdministratorAccess", "PrincipalType": "user", "PrincipalName": "a"}]},
            "Attachments[0].Policy: must be one of",
        ),
        (
            {**SET, "Attachments": [{"Policy": "AWSMarketplaceRead-only", "Kind": "user"}]},
            "Attachments[0].Kind: unknown property",
        ),
        ({**SET, "Attachments": "x"}, "Attachments: must be a list of objects"),
        ({**SET, "Tags": [{"Key": "aws:x", "Value": "1"}]}, "Tags.aws:x: keys starting with aws: are reserved"),
        ({**SET, "Tags": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}, "Tags: duplicate Key"),
    ],
)
def test_bad_properties_fail_naming_the_property(run, moto_iam: Any, props: dict, reason: str) -> None:
    resp = run("Create", props)
    assert resp["Status"] == "FAILED"
    assert reason in resp["Reason"]
    assert resp["PhysicalResourceId"]
    assert names(moto_iam) == []


def test_failed_update_keeps_the_old_id(run) -> None:
    run("Create", SET)
    resp = run("Update", {**SET, "Adopt": "maybe"}, physical=ID, old=SET)
    assert (resp["Status"], resp["PhysicalResourceId"]) == ("FAILED", ID)


def test_service_keys_are_not_part_of_the_spec(run) -> None:
    resp = run("Create", {**SET, "ServiceTimeout": "300", "Version": "7"})
    assert resp["Status"] == "SUCCESS" and resp["PhysicalResourceId"] == ID


def test_another_stack_can_neither_change_nor_delete(run, moto_iam: Any) -> None:
    run("Create", SET)
    before = iam_snapshot(moto_iam)
    create_b = run("Create", SET, stack=STACK_B)
    assert create_b["Status"] == "FAILED" and "belongs to set 'demo' of owner" in create_b["Reason"]
    delete_b = run("Delete", SET, physical=ID, stack=STACK_B)
    assert delete_b["Status"] == "FAILED" and "owned by" in delete_b["Reason"]
    assert iam_snapshot(moto_iam) == before


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"StackId": "not-an-arn"}, "StackId: must be a CloudFormation stack ARN"),
        ({"RequestType": "Upsert"}, "RequestType: must be Create, Update or Delete"),
        ({"ResourceProperties": "x"}, "ResourceProperties: must be an object"),
    ],
)
def test_malformed_events_still_get_one_answer(moto_iam: Any, endpoint: ResponseEndpoint, change, fragment) -> None:
    custom_resource({**event("Create", endpoint.url, SET), **change}, Context())
    assert len(endpoint.received) == 1
    assert endpoint.last()["Status"] == "FAILED" and fragment in endpoint.last()["Reason"]
    assert endpoint.last()["PhysicalResourceId"]


def test_event_without_response_url_is_logged_not_answered(moto_iam: Any) -> None:
    assert cfn.handle({"RequestType": "Create"}, Context(), lambda caller: Service(Settings(), caller)) is None
    assert cfn.handle("junk", Context(), lambda caller: Service(Settings(), caller)) is None


def test_reason_is_short_single_line_and_body_small(moto_iam: Any, endpoint: ResponseEndpoint) -> None:
    props = {**SET, **{f"Bad{i}\n\x07": "x" * 300 for i in range(40)}}
    custom_resource(event("Create", endpoint.url, props), Context())
    resp = endpoint.last()
    assert resp["Status"] == "FAILED"
    assert len(resp["Reason"]) <= cfn.MAX_REASON
    assert not any(ord(c) < 32 for c in resp["Reason"])
    assert len(json.dumps(resp).encode()) <= cfn.MAX_BODY


def test_unexpected_error_fails_without_a_stack_trace(run, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(Service, "converge", boom)
    resp = run("Create", SET)
    assert resp["Status"] == "FAILED" and "internal error" in resp["Reason"]
    assert "secret detail" not in resp["Reason"] and "Traceback" not in resp["Reason"]


def test_response_url_never_appears_in_logs(run, captured_logs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run("Create", SET)
    run("Create", {**SET, "Adopt": "x"})
    monkeypatch.setattr(Service, "delete", lambda *a, **k: 1 / 0)  # the exception path logs too
    run("Delete", SET, physical=ID)
    logs = captured_logs.getvalue()
    assert "ZeroDivisionError" in logs
    assert '"RequestType":"Create"' in logs and '"LogicalResourceId":"Prerequisites"' in logs
    assert "5ecret5ignature" not in logs and "X-Amz-Credential" not in logs and "cfn-response" not in logs
    assert SECRET_QUERY not in logs


def test_response_put_is_retried_on_server_errors(moto_iam: Any, endpoint: ResponseEndpoint) -> None:
    endpoint.fail_next = [503, 500]
    custom_resource(event("Create", endpoint.url, SET), Context())
    assert endpoint.last()["Status"] == "SUCCESS"


def test_response_put_is_not_retried_on_client_errors(moto_iam: Any, endpoint: ResponseEndpoint) -> None:
    endpoint.fail_next = [403, 200]
    custom_resource(event("Create", endpoint.url, SET), Context())
    assert endpoint.received == []
    assert endpoint.fail_next == [200]  # exactly one attempt


@pytest.fixture
def silent_iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An IAM endpoint on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    aws.reset_caches()
    yield server.getsockname()
    stop.set()
    thread.join()
    for s in held:
        s.close()
    server.close()
    aws.reset_caches()


def test_watchdog_answers_before_the_deadline_when_iam_hangs(silent_iam, endpoint: ResponseEndpoint) -> None:
    deadline = 8.0
    started = time.monotonic()
    custom_resource(event("Create", endpoint.url, SET), Context(deadline))
    elapsed = time.monotonic() - started
    assert elapsed < deadline
    resp = endpoint.last()
    assert resp["Status"] == "FAILED" and "timed out" in resp["Reason"]
    assert resp["PhysicalResourceId"].startswith("mib-prereqs-failed/")


def test_a_broken_setting_still_gets_an_answer_at_once(moto_iam: Any, endpoint: ResponseEndpoint, monkeypatch) -> None:
    monkeypatch.setenv("MIB_PATH_PREFIX", "no-slashes")  # Settings.from_env refuses it
    started = time.monotonic()
    custom_resource(event("Create", endpoint.url, SET), Context())
    assert time.monotonic() - started < 5  # not the watchdog, minutes later
    resp = endpoint.last()
    assert resp["Status"] == "FAILED" and "internal error" in resp["Reason"]
