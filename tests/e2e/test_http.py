"""End to end over real HTTP: `chalice local` in front of a moto server, both on 127.0.0.1."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import requests

from tests.e2e.servers import LocalServers

ALICE_FULL = {"policy": "AWSMarketplaceFullAccess", "principal_type": "user", "principal_name": "alice"}


def call(method: str, url: str, body: Any = None) -> requests.Response:
    return requests.request(method, url, json=body, timeout=30)


def test_health(api: str) -> None:
    assert call("GET", f"{api}/health").json() == {"status": "ok"}


def test_life_cycle(api: str, iam: Any, servers: LocalServers) -> None:
    iam.create_user(UserName="alice", Path="/builders/")
    body = {"attachments": [ALICE_FULL], "tags": {"team": "images"}}

    created = call("PUT", f"{api}/prerequisites/demo", body)
    assert created.status_code == 201, created.text
    arn = created.json()["instance_role"]["arn"]
    assert arn == "arn:aws:iam::123456789012:role/mib-prereqs/demo/demo-InstanceRole"
    attached = iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSMarketplaceFullAccess"]

    again = call("PUT", f"{api}/prerequisites/demo", body)
    assert (again.status_code, again.json()["changes"]) == (200, [])

    # Someone widens the instance role by hand.
    iam.put_role_policy(
        RoleName="demo-InstanceRole",
        PolicyName="widen",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    drift = call("GET", f"{api}/prerequisites/demo").json()
    assert drift["in_sync"] is False
    assert drift["drift"] == [
        {
            "kind": "extra_inline_policy",
            "action": "delete_role_policy",
            "resource": "role/demo-InstanceRole/inline/widen",
        }
    ]
    plan = call("POST", f"{api}/prerequisites/demo/plan", body).json()
    assert plan["changes"] == [{"action": "delete_role_policy", "resource": "role/demo-InstanceRole/inline/widen"}]
    assert "widen" in iam.list_role_policies(RoleName="demo-InstanceRole")["PolicyNames"]  # plan wrote nothing

    repaired = call("PUT", f"{api}/prerequisites/demo", body)
    assert repaired.status_code == 200 and repaired.json()["changes"] == plan["changes"]
    assert call("GET", f"{api}/prerequisites/demo").json()["in_sync"] is True

    assert [s["name"] for s in call("GET", f"{api}/prerequisites").json()["sets"]] == ["demo"]

    deleted = call("DELETE", f"{api}/prerequisites/demo")
    assert deleted.status_code == 200
    assert iam.list_roles(PathPrefix="/mib-prereqs/")["Roles"] == []
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []
    gone = call("GET", f"{api}/prerequisites/demo")
    assert gone.status_code == 404 and set(gone.json()) == {"Code", "Message"}

    log = servers.api_log.read_text()
    assert '"request_id"' in log and '"set":"demo"' in log and '"action":"delete_role"' in log


def test_deprecated_policy_missing_from_moto_is_422(api: str, iam: Any) -> None:
    iam.create_user(UserName="alice")
    body = {"attachments": [{**ALICE_FULL, "policy": "AWSMarketplaceImageBuildFullAccess"}]}
    resp = call("PUT", f"{api}/prerequisites/demo", body)
    assert resp.status_code == 422
    assert resp.json()["Code"] == "UnprocessableEntityError"
    assert "AWSMarketplaceImageBuildFullAccess" in resp.json()["Message"]
    assert iam.list_roles()["Roles"] == []


def test_bad_json_over_the_wire(api: str) -> None:
    resp = requests.put(
        f"{api}/prerequisites/demo", data=b"{oops", headers={"content-type": "application/json"}, timeout=10
    )
    assert resp.status_code == 400
    assert resp.json() == {"Code": "BadRequestError", "Message": "body: must be valid JSON"}


def curl_to_request(line: str, base: str) -> tuple[str, str, dict, bytes | None]:
    """Read one README `curl` line: method, URL, headers, body."""
    args = shlex.split(line)
    assert args[0] == "curl"
    method, url, headers, data = "GET", "", {}, None
    it = iter(args[1:])
    for arg in it:
        if arg == "-X":
            method = next(it)
        elif arg == "-H":
            key, value = next(it).split(":", 1)
            headers[key.strip()] = value.strip()
        elif arg == "-d":
            data = next(it).encode()
        elif not arg.startswith("-"):
            url = arg.replace("http://127.0.0.1:8000", base)
    return method, url, headers, data


def test_readme_walkthrough_runs_as_printed(api: str) -> None:
    """Each `$ curl` line of the README, against a fresh emulator, succeeds as the README says."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    steps = [line.strip()[2:] for line in readme.splitlines() if line.strip().startswith("$ curl")]
    assert len(steps) == 7
    statuses = []
    for step in steps:
        method, url, headers, data = curl_to_request(step, api)
        resp = requests.request(method, url, headers=headers, data=data, timeout=30)
        assert resp.status_code < 400, (step, resp.text)
        statuses.append((method, resp.status_code, len(resp.json().get("changes", []))))
    assert statuses[2:4] == [("PUT", 201, 6), ("PUT", 200, 0)]
