"""Races, bounded: 16 threads at a time on the core, against one moto server over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib import aws
from chalicelib import custom_resource as cfn
from chalicelib.config import Settings
from chalicelib.errors import Conflict, OutOfTime
from chalicelib.service import Service
from chalicelib.spec import parse_rest_body
from tests.cfn import Context, ResponseEndpoint, event
from tests.e2e.servers import LocalServers

THREADS = 16


@pytest.fixture
def on_moto_server(servers: LocalServers, iam: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    servers.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", servers.moto_url)
    aws.reset_caches()
    yield iam
    aws.reset_caches()


def race(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run the jobs at once; each gives its result or the exception it raised."""

    def guarded(job: Callable[[], Any]) -> Any:
        try:
            return job()
        except Exception as err:
            return err

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(guarded, jobs))


def roles_of(iam: Any, prefix: str) -> list[dict]:
    return iam.list_roles(PathPrefix=prefix)["Roles"]


def test_same_set_sixteen_times(on_moto_server: Any) -> None:
    iam = on_moto_server
    body = {"tags": {"team": "images"}}
    outcomes = race([lambda: Service(Settings()).converge(parse_rest_body("demo", body, "rest"))] * THREADS)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(e, Conflict | OutOfTime) for e in errors), errors
    assert len(errors) < THREADS
    # The winners converged it; a last run has nothing left to do and nothing is duplicated.
    assert Service(Settings()).converge(parse_rest_body("demo", body, "rest")).plan.changes == ()
    assert sorted(r["RoleName"] for r in roles_of(iam, "/mib-prereqs/")) == ["demo-AutomationRole", "demo-InstanceRole"]
    profiles = iam.list_instance_profiles(PathPrefix="/mib-prereqs/")["InstanceProfiles"]
    assert [[r["RoleName"] for r in p["Roles"]] for p in profiles] == [["demo-InstanceRole"]]


def test_sixteen_sets_at_once(on_moto_server: Any) -> None:
    iam = on_moto_server
    outcomes = race(
        [lambda i=i: Service(Settings()).converge(parse_rest_body(f"s{i}", {}, "rest")) for i in range(THREADS)]
    )
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert len(roles_of(iam, "/mib-prereqs/")) == 2 * THREADS
    assert len(iam.list_instance_profiles(PathPrefix="/mib-prereqs/")["InstanceProfiles"]) == THREADS
    assert all(Service(Settings()).show(f"s{i}").plan.changes == () for i in range(THREADS))


def test_sixteen_stacks_at_once(on_moto_server: Any) -> None:
    endpoint = ResponseEndpoint()
    try:
        stacks = [f"arn:aws:cloudformation:us-east-1:123456789012:stack/s{i}/id{i}" for i in range(THREADS)]
        answers = race(
            [
                lambda s=s, i=i: cfn.handle(
                    event("Create", endpoint.url, {"SetName": f"set{i}"}, stack=s),
                    Context(),
                    lambda caller: Service(Settings(), caller),
                )
                for i, s in enumerate(stacks)
            ]
        )
        assert [a["Status"] for a in answers] == ["SUCCESS"] * THREADS
        assert len(endpoint.received) == THREADS
    finally:
        endpoint.stop()


def test_owners_racing_for_the_same_names_leave_one_owner(on_moto_server: Any) -> None:
    """Two stacks, a REST caller and an adopting caller want the same role names at once."""
    iam = on_moto_server
    endpoint = ResponseEndpoint()
    stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/{}/id"
    names = {"instance_role_name": "x-InstanceRole", "automation_role_name": "x-AutomationRole"}
    try:
        jobs = [
            lambda: cfn.handle(
                event("Create", endpoint.url, {"SetName": "x"}, stack=stack.format("a")),
                Context(),
                lambda c: Service(Settings(), c),
            ),
            lambda: cfn.handle(
                event("Create", endpoint.url, {"SetName": "x"}, stack=stack.format("b")),
                Context(),
                lambda c: Service(Settings(), c),
            ),
            lambda: Service(Settings()).converge(parse_rest_body("x", {}, "rest")),
            lambda: Service(Settings()).converge(parse_rest_body("y", {**names, "adopt": True}, "rest")),
        ]
        race(jobs)
    finally:
        endpoint.stop()
    owners = set()
    for name in ("x-InstanceRole", "x-AutomationRole"):
        try:
            tags = {t["Key"]: t["Value"] for t in iam.get_role(RoleName=name)["Role"].get("Tags", [])}
        except iam.exceptions.NoSuchEntityException:
            continue
        owners.add((tags.get("mib-prereqs:set"), tags.get("mib-prereqs:owner")))
    profile_owner = {
        (t["Key"], t["Value"])
        for p in iam.list_instance_profiles()["InstanceProfiles"]
        for t in iam.get_instance_profile(InstanceProfileName=p["InstanceProfileName"])["InstanceProfile"].get(
            "Tags", []
        )
        if t["Key"] in ("mib-prereqs:set", "mib-prereqs:owner")
    }
    assert len(owners) == 1, owners  # one owner for the names, never a set split between owners
    ((set_name, owner),) = owners
    assert profile_owner <= {("mib-prereqs:set", set_name), ("mib-prereqs:owner", owner)}
