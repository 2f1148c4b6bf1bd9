"""The REST contract through Chalice's test client: statuses, bodies, error shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import aws
from tests.faults import FailCalls, install

JSON = {"content-type": "application/json"}
RESPONSE_FIELDS = {
    "name",
    "account_id",
    "owner",
    "instance_role",
    "instance_profile",
    "automation_role",
    "attachments",
    "changes",
    "warnings",
}


@pytest.fixture
def client(moto_iam: Any) -> Iterator[Client]:
    with Client(app, stage_name="local") as c:
        yield c


def put(client: Client, name: str, body: Any, raw: bytes | None = None):
    return client.http.put(f"/prerequisites/{name}", headers=JSON, body=raw if raw is not None else json.dumps(body))


def assert_error(resp: Any, status: int, code: str, *fragments: str) -> None:
    assert resp.status_code == status, resp.body
    assert set(resp.json_body) == {"Code", "Message"}
    assert resp.json_body["Code"] == code
    for fragment in fragments:
        assert fragment in resp.json_body["Message"]


def test_health(client: Client) -> None:
    resp = client.http.get("/health")
    assert (resp.status_code, resp.json_body) == (200, {"status": "ok"})


def test_put_creates_then_converges(client: Client) -> None:
    first = put(client, "demo", {"tags": {"team": "x"}})
    assert first.status_code == 201
    assert set(first.json_body) == RESPONSE_FIELDS
    assert first.json_body["instance_role"] == {
        "name": "demo-InstanceRole",
        "arn": "arn:aws:iam::123456789012:role/mib-prereqs/demo/demo-InstanceRole",
    }
    assert {"action": "create_role", "resource": "role/demo-InstanceRole"} in first.json_body["changes"]
    again = put(client, "demo", {"tags": {"team": "x"}})
    assert again.status_code == 200 and again.json_body["changes"] == []


def test_plan_returns_changes_and_writes_nothing(client: Client, moto_iam: Any) -> None:
    resp = client.http.post("/prerequisites/demo/plan", headers=JSON, body="{}")
    assert resp.status_code == 200
    assert len(resp.json_body["changes"]) == 6
    assert moto_iam.list_roles()["Roles"] == []


def test_get_reports_drift(client: Client, moto_iam: Any) -> None:
    put(client, "demo", {})
    in_sync = client.http.get("/prerequisites/demo").json_body
    assert set(in_sync) == RESPONSE_FIELDS | {"in_sync", "drift"}
    assert in_sync["in_sync"] is True and in_sync["drift"] == []
    moto_iam.attach_role_policy(
        RoleName="demo-AutomationRole", PolicyArn="arn:aws:iam::aws:policy/AWSMarketplaceFullAccess"
    )
    drifted = client.http.get("/prerequisites/demo").json_body
    assert drifted["in_sync"] is False
    assert drifted["drift"] == [
        {
            "kind": "extra_managed_policy",
            "action": "detach_role_policy",
            "resource": "role/demo-AutomationRole/managed/arn:aws:iam::aws:policy/AWSMarketplaceFullAccess",
        }
    ]


def test_list_and_delete(client: Client) -> None:
    put(client, "demo", {})
    listed = client.http.get("/prerequisites").json_body
    assert [s["name"] for s in listed["sets"]] == ["demo"]
    deleted = client.http.delete("/prerequisites/demo")
    assert deleted.status_code == 200
    assert {"action": "delete_role", "resource": "role/demo-InstanceRole"} in deleted.json_body["changes"]
    assert_error(client.http.get("/prerequisites/demo"), 404, "NotFoundError", "no prerequisite set named demo")
    assert_error(client.http.delete("/prerequisites/demo"), 404, "NotFoundError")


@pytest.mark.parametrize(
    ("name", "body", "raw", "fragment"),
    [
        ("demo", None, b"{not json", "body: must be valid JSON"),
        ("demo", None, b"x" * (64 * 1024 + 1), "body: at most 65536 bytes"),
        ("demo", [], None, "body: must be a JSON object"),
        ("-bad", {}, None, "name: must match"),
        ("demo", {"log_bucket": "UPPER"}, None, "log_bucket: must follow S3 bucket naming rules"),
        (
            "demo",
            {"attachments": [{"policy": "AdministratorAccess", "principal_type": "user", "principal_name": "a"}]},
            None,
            "attachments[0].policy: must be one of",
        ),
        ("demo", {"surprise": 1}, None, "surprise: unknown field"),
    ],
)
def test_bad_input_is_400_naming_the_field(client: Client, moto_iam: Any, name, body, raw, fragment) -> None:
    assert_error(put(client, name, body, raw), 400, "BadRequestError", fragment)
    assert moto_iam.list_roles()["Roles"] == []


@pytest.mark.parametrize("path", ["/prerequisites/demo?account_id=12", "/prerequisites?account_id=abc"])
def test_bad_query_is_400(client: Client, path: str) -> None:
    assert_error(client.http.get(path), 400, "BadRequestError", "account_id: must be a string of 12 digits")


def test_unknown_principal_is_400(client: Client) -> None:
    body = {
        "attachments": [{"policy": "AWSMarketplaceFullAccess", "principal_type": "user", "principal_name": "ghost"}]
    }
    assert_error(put(client, "demo", body), 400, "BadRequestError", "no user named ghost")


def test_unreachable_account_is_403(client: Client) -> None:
    install(aws.sts_client(), "before-call.sts.AssumeRole", FailCalls("AssumeRole", "AccessDenied", 100, 403))
    assert_error(put(client, "demo", {"account_id": "111122223333"}), 403, "ForbiddenError", "cannot be reached")
    assert_error(client.http.get("/prerequisites/demo?account_id=111122223333"), 403, "ForbiddenError")


def test_ineligible_principal_is_403(client: Client, moto_iam: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    moto_iam.create_user(UserName="alice", Path="/people/")
    body = {
        "attachments": [{"policy": "AWSMarketplaceFullAccess", "principal_type": "user", "principal_name": "alice"}]
    }
    monkeypatch.delenv("ELIGIBLE_PRINCIPAL_PATHS")  # unset, as the dev stage leaves it: nobody
    with Client(app, stage_name="dev") as dev:
        assert_error(put(dev, "demo", body), 403, "ForbiddenError", "ELIGIBLE_PRINCIPAL_PATHS is unset (nobody)")


def test_conflict_is_409(client: Client, moto_iam: Any) -> None:
    moto_iam.create_role(RoleName="demo-InstanceRole", AssumeRolePolicyDocument="{}")
    assert_error(put(client, "demo", {}), 409, "ConflictError", "set adopt")
    assert put(client, "demo", {"adopt": True}).status_code == 201


def test_missing_managed_policy_is_422(client: Client, moto_iam: Any) -> None:
    moto_iam.create_user(UserName="alice")
    body = {
        "attachments": [
            {"policy": "AWSMarketplaceImageBuildFullAccess", "principal_type": "user", "principal_name": "alice"}
        ]
    }
    assert_error(put(client, "demo", body), 422, "UnprocessableEntityError", "AWSMarketplaceImageBuildFullAccess")


def test_throttled_is_429_with_retry_after(client: Client) -> None:
    install(aws.iam_client(), "before-call.iam", FailCalls("ListRoles", "Throttling", times=10))
    resp = put(client, "demo", {})
    assert_error(resp, 429, "TooManyRequestsError", "throttling")
    assert int(resp.headers["Retry-After"]) > 0


def test_out_of_time_is_503_with_retry_after(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUEST_BUDGET_SECONDS", "0")
    resp = put(client, "demo", {})
    assert_error(resp, 503, "ServiceUnavailableError", "repeat it to finish")
    assert int(resp.headers["Retry-After"]) > 0


def test_unexpected_error_is_500_with_request_id_and_no_trace(client: Client) -> None:
    install(aws.iam_client(), "before-call.iam", FailCalls("ListRoles", "ServiceFailure", times=10, status=500))
    resp = put(client, "demo", {})
    assert_error(resp, 500, "InternalServerError", "request id ")
    assert "Traceback" not in resp.body.decode() and "ServiceFailure" not in resp.body.decode()


def test_every_route_but_health_requires_iam_auth() -> None:
    routes = {(path, method): entry for path, methods in app.routes.items() for method, entry in methods.items()}
    assert routes[("/health", "GET")].authorizer is None
    others = [entry for key, entry in routes.items() if key[0] != "/health"]
    assert len(others) == 6  # the five of the contract and /openapi.json
    assert all(type(e.authorizer).__name__ == "IAMAuthorizer" for e in others)


def test_a_broken_setting_is_a_500_with_a_request_id(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUEST_BUDGET_SECONDS", "soon")  # not a number
    assert_error(put(client, "demo", {}), 500, "InternalServerError", "request id ")
