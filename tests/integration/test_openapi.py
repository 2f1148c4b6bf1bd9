"""The OpenAPI description matches the routes and the bodies the service really speaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from openapi_spec_validator import validate

from app import app
from chalicelib.spec import BODY_FIELDS, MARKETPLACE_POLICIES, PRINCIPAL_TYPES

DOC = json.loads((Path(__file__).resolve().parents[2] / "chalicelib" / "openapi.json").read_text())
SCHEMAS = DOC["components"]["schemas"]


def test_document_is_valid_openapi_3() -> None:
    validate(DOC)


def test_every_route_is_described_and_nothing_else() -> None:
    routes = {(path, method.lower()) for path, methods in app.routes.items() for method in methods}
    described = {(path, m) for path, ops in DOC["paths"].items() for m in ops if m != "parameters"}
    assert routes == described


def test_only_health_is_unsigned() -> None:
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            if method != "parameters":
                assert (op.get("security", DOC["security"]) == []) == (path == "/health"), (path, method)


def test_request_body_fields_match_the_parser() -> None:
    assert set(SCHEMAS["Spec"]["properties"]) == set(BODY_FIELDS)
    attachment = SCHEMAS["Attachment"]["properties"]
    assert attachment["policy"]["enum"] == list(MARKETPLACE_POLICIES)
    assert attachment["principal_type"]["enum"] == list(PRINCIPAL_TYPES)


def required(name: str) -> set[str]:
    schema = SCHEMAS[name]
    if "allOf" in schema:
        return set().union(
            *(required(p["$ref"].rsplit("/", 1)[1]) if "$ref" in p else set(p["required"]) for p in schema["allOf"])
        )
    return set(schema["required"])


@pytest.fixture
def client(moto_iam: Any) -> Any:
    with Client(app, stage_name="local") as c:
        yield c


def test_real_responses_have_exactly_the_described_fields(client: Any) -> None:
    put = client.http.put("/prerequisites/demo", headers={"content-type": "application/json"}, body="{}")
    assert set(put.json_body) == required("SetResponse")
    assert set(put.json_body["changes"][0]) == set(SCHEMAS["Change"]["required"])
    shown = client.http.get("/prerequisites/demo").json_body
    assert set(shown) == required("ShowResponse")
    listed = client.http.get("/prerequisites").json_body
    assert set(listed) == required("SetList")
    assert set(listed["sets"][0]) == set(SCHEMAS["SetList"]["properties"]["sets"]["items"]["required"])
    error = client.http.get("/prerequisites/nothing").json_body
    assert set(error) == required("Error")


def test_every_response_example_has_the_described_fields() -> None:
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            for status, response in op["responses"].items():
                content = response.get("content", {}).get("application/json", {})
                if "example" in content and "$ref" in content.get("schema", {}):
                    schema = content["schema"]["$ref"].rsplit("/", 1)[1]
                    assert required(schema) <= set(content["example"]), (path, method, status)


def test_served_at_openapi_json(client: Any) -> None:
    resp = client.http.get("/openapi.json")
    assert resp.status_code == 200
    assert resp.json_body == DOC
