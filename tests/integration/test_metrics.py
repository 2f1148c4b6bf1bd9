"""Powertools EMF metrics, per front end, as CloudWatch would read them from the logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from app import app, custom_resource
from tests.cfn import Context, ResponseEndpoint, event
from tests.conftest import ALLOW_ALL


def emf_blobs(text: str) -> list[dict[str, Any]]:
    blobs = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def figures(blob: dict[str, Any]) -> dict[str, Any]:
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "MibPrereqs"
    names = [m["Name"] for m in directive["Metrics"]]
    values = {n: sum(blob[n]) if isinstance(blob[n], list) else blob[n] for n in names}
    return {"dims": directive["Dimensions"][0], **values, **{d: blob[d] for d in directive["Dimensions"][0]}}


@pytest.fixture
def client(moto_iam: Any) -> Any:
    with Client(app, stage_name="dev") as c:  # the local stage turns metrics off
        yield c


def put(client: Any, body: dict) -> Any:
    return client.http.put("/prerequisites/demo", headers={"content-type": "application/json"}, body=json.dumps(body))


def test_rest_converge_then_drift_then_conflict(client: Any, moto_iam: Any, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert put(client, {}).status_code == 201
    [created] = [figures(b) for b in emf_blobs(capsys.readouterr().out)]
    assert created["front_end"] == "rest" and created["service"] == "mib-prereqs"
    assert (created["Converges"], created["ChangesApplied"], created["DriftFound"], created["Failures"]) == (1, 6, 0, 0)

    moto_iam.put_role_policy(RoleName="demo-InstanceRole", PolicyName="x", PolicyDocument=ALLOW_ALL)
    client.http.get("/prerequisites/demo")
    [shown] = [figures(b) for b in emf_blobs(capsys.readouterr().out)]
    assert (shown["DriftFound"], shown["ChangesApplied"], shown["Converges"]) == (1, 0, 0)

    moto_iam.create_role(RoleName="other-InstanceRole", AssumeRolePolicyDocument="{}")
    resp = client.http.put("/prerequisites/other", headers={"content-type": "application/json"}, body="{}")
    assert resp.status_code == 409
    blobs = [figures(b) for b in emf_blobs(capsys.readouterr().out)]
    assert blobs[0]["Conflicts"] == 1 and blobs[0]["Failures"] == 1
    assert blobs[1]["kind"] == "Conflict" and blobs[1]["Failures"] == 1
    assert blobs[1]["dims"] == ["service", "front_end", "kind"]


def test_custom_resource_metrics(moto_iam: Any, capsys: pytest.CaptureFixture) -> None:
    endpoint = ResponseEndpoint()
    try:
        capsys.readouterr()
        custom_resource(event("Create", endpoint.url, {"SetName": "demo"}), Context())
        [blob] = [figures(b) for b in emf_blobs(capsys.readouterr().out)]
        assert blob["front_end"] == "custom_resource"
        assert (blob["Converges"], blob["ChangesApplied"]) == (1, 6)
        custom_resource(event("Create", endpoint.url, {"SetName": "-bad"}), Context())
        blobs = [figures(b) for b in emf_blobs(capsys.readouterr().out)]
        assert [b.get("kind") for b in blobs] == [None, "InvalidSpec"]
    finally:
        endpoint.stop()
