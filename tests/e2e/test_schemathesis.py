"""Schemathesis against `chalice local` + moto, driven by the OpenAPI description (bounded examples).

For every operation: no 5xx, every response as described (status, content type, body schema),
every 4xx in the error shape, and nothing created in IAM by a rejected request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.servers import LocalServers

DOC_PATH = Path(__file__).resolve().parents[2] / "chalicelib" / "openapi.json"
DOC = json.loads(DOC_PATH.read_text())
schema = schemathesis.openapi.from_path(DOC_PATH)


def iam_state(servers: LocalServers) -> tuple[list[str], list[str]]:
    iam = boto3.client(
        "iam",
        endpoint_url=servers.moto_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"])
    profiles = sorted(p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"])
    return roles, profiles


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_matches_its_description(case: Any, servers: LocalServers) -> None:
    if case.method.lower() not in DOC["paths"][case.path]:
        return  # unexpected-method probes test `chalice local`'s HTTP server, not this API (API Gateway answers those)
    before = iam_state(servers)
    response = case.call(base_url=servers.api_url, timeout=60)
    assert response.status_code < 500, response.text
    case.validate_response(
        response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
    )
    if response.status_code >= 400:
        assert set(response.json()) == {"Code", "Message"}
        assert iam_state(servers) == before, f"a rejected {case.method} {case.formatted_path} changed IAM"
