"""Fault injection at every write of a create, an update and a delete.

For each write k and each fault (the process dies right after it, IAM throttles it, IAM fails
it, the connection resets): the faulted run fails cleanly, the next run reaches exactly the
state an undisturbed run reaches, DELETE then leaves nothing behind, and nothing outside the
set is ever touched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from moto import mock_aws

from chalicelib import aws
from chalicelib.config import Settings
from chalicelib.errors import PrereqError, SetNotFound
from chalicelib.service import Service
from chalicelib.spec import parse_rest_body
from tests.conftest import WRITE_PREFIXES, iam_snapshot, load_marketplace_policies
from tests.faults import Crash, error_response, install

FULL = "arn:aws:iam::aws:policy/AWSMarketplaceFullAccess"
BEFORE = {"attachments": [{"policy": "AWSMarketplaceFullAccess", "principal_type": "user", "principal_name": "alice"}]}
AFTER = {
    "instance_role_name": "demo-NextInstance",
    "tags": {"team": "images"},
    "attachments": [{"policy": "AWSMarketplaceRead-only", "principal_type": "group", "principal_name": "viewers"}],
}


class FaultAtWrite:
    """Applies one fault to the k-th write call of the service's IAM client.

    Writes of different entities run in parallel threads: the k-th is marked by its thread,
    so the crash follows exactly that call.
    """

    def __init__(self, k: int, fault: str) -> None:
        self.k, self.fault, self.writes = k, fault, 0
        self.victim: int | None = None
        self._lock = threading.Lock()

    def before(self, model: Any, **_: Any) -> Any:
        if not model.name.startswith(WRITE_PREFIXES):
            return None
        with self._lock:
            self.writes += 1
            if self.writes != self.k:
                return None
            self.victim = threading.get_ident()
        if self.fault == "throttled":
            return error_response("Throttling", 400)
        if self.fault == "service_failure":
            return error_response("ServiceFailure", 500)
        if self.fault == "connection_reset":
            raise ConnectionClosedError(endpoint_url="https://iam.amazonaws.com/")
        return None

    def after(self, model: Any, **_: Any) -> None:
        if self.fault != "crash" or not model.name.startswith(WRITE_PREFIXES):
            return
        with self._lock:
            if self.victim != threading.get_ident():
                return
            self.victim = None
        raise Crash(f"crash after write {self.k} ({model.name})")


@pytest.fixture(scope="module")
def world() -> Iterator[Any]:
    """One moto for the module, reset between cases (a fresh mock per case costs too much)."""
    mock = mock_aws()
    mock.start()
    aws.reset_caches()

    def fresh() -> Any:
        mock.reset()
        aws.reset_caches()
        load_marketplace_policies()
        iam = boto3.client("iam")
        iam.create_user(UserName="alice", Path="/builders/")
        iam.create_group(GroupName="viewers", Path="/builders/")
        iam.create_role(RoleName="unrelated-Instance", AssumeRolePolicyDocument="{}")  # must never change
        iam.attach_user_policy(UserName="alice", PolicyArn="arn:aws:iam::aws:policy/AWSMarketplaceRead-only")
        return iam

    yield fresh
    mock.stop()
    aws.reset_caches()


def service() -> Service:
    return Service(Settings(eligible_principal_paths=("/builders/",)))


def run(op: str) -> None:
    svc = service()
    if op == "delete":
        svc.delete("demo", "rest")
    else:
        svc.converge(parse_rest_body("demo", AFTER if op == "update" else BEFORE, "rest"))


def prepare(op: str) -> None:
    if op in ("update", "delete"):
        service().converge(parse_rest_body("demo", BEFORE, "rest"))
    if op == "delete":
        service().converge(parse_rest_body("demo", AFTER, "rest"))


def count_writes(op: str, world: Callable[[], Any]) -> tuple[int, dict, dict]:
    iam = world()
    clean = iam_snapshot(iam)
    prepare(op)
    counter = FaultAtWrite(0, "none")
    remove = install(aws.iam_client(), "before-call.iam", counter.before)
    run(op)
    remove()
    return counter.writes, clean, iam_snapshot(iam)


FAULTS = ("crash", "throttled", "service_failure", "connection_reset")


@pytest.mark.parametrize("op", ["create", "update", "delete"])
def test_every_write_of_every_operation_survives_every_fault(op: str, world: Callable[[], Any]) -> None:
    total, clean, reference = count_writes(op, world)
    assert total >= 6
    covered = 0
    for k in range(1, total + 1):
        for fault in FAULTS:
            iam = world()
            prepare(op)
            injector = FaultAtWrite(k, fault)
            client = aws.iam_client()
            removers = [
                install(client, "before-call.iam", injector.before),
                install(client, "after-call.iam", injector.after),
            ]
            with pytest.raises((Crash, PrereqError, ClientError, ConnectionClosedError)):
                run(op)
            for remove in removers:
                remove()
            try:
                run(op)  # the next run finishes the job
            except SetNotFound:
                assert op == "delete"  # the fault came after the last delete: nothing was left to do
            assert iam_snapshot(iam) == reference, f"{op}: {fault} at write {k}"
            if op != "delete":
                service().delete("demo", "rest")
            assert iam_snapshot(iam) == clean, f"{op}: delete after {fault} at write {k} left something"
            covered += 1
    assert covered == total * len(FAULTS)
    print(f"{op}: {covered} injection points covered ({total} writes x {len(FAULTS)} faults)")
