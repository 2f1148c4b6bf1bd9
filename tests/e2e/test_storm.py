"""A throttling storm on the wire: 30% of IAM calls throttled, every request still succeeds.

The throttles are injected under botocore's retry handler (``before-send``) on the service's
client, which talks to a moto server over HTTP: a throttled call never reaches moto, exactly
like a throttled call never reaches IAM.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from chalicelib import aws
from chalicelib.config import Settings
from chalicelib.service import Service
from chalicelib.spec import parse_rest_body
from tests.conftest import iam_snapshot
from tests.e2e.servers import LocalServers

THROTTLE = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
    b"<Message>Rate exceeded</Message></Error></ErrorResponse>"
)
BEFORE = {"attachments": [{"policy": "AWSMarketplaceFullAccess", "principal_type": "user", "principal_name": "alice"}]}
AFTER = {"instance_role_name": "demo-NextInstance", "tags": {"team": "images"}}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


class Storm:
    """Answers a share of the requests with Throttling before they are sent."""

    def __init__(self, share: float, seed: int) -> None:
        self.share, self.random, self.throttled, self.calls = share, random.Random(seed), 0, 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.calls += 1
        if self.random.random() >= self.share:
            return None
        self.throttled += 1
        return AWSResponse(request.url, 400, {}, _Raw(THROTTLE))


@pytest.fixture
def service_on_moto_server(servers: LocalServers, iam: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    servers.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", servers.moto_url)
    aws.reset_caches()
    iam.create_user(UserName="alice", Path="/builders/")
    yield iam
    aws.reset_caches()


def test_throttling_storm(service_on_moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.retries import standard

    # botocore's own backoff, scaled to milliseconds so the test stays short.
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.001)
    iam = service_on_moto_server
    clean = iam_snapshot(iam)
    storm = Storm(0.3, seed=7)
    aws.iam_client().meta.events.register_first("before-send.iam", storm)
    svc = Service(Settings(eligible_principal_paths=("/builders/",)))
    svc.converge(parse_rest_body("demo", BEFORE, "rest"))
    assert svc.converge(parse_rest_body("demo", BEFORE, "rest")).plan.changes == ()
    svc.converge(parse_rest_body("demo", AFTER, "rest"))
    assert svc.show("demo").plan.changes == ()
    svc.delete("demo", "rest")
    aws.iam_client().meta.events.unregister("before-send.iam", storm)
    assert iam_snapshot(iam) == clean
    assert storm.calls > 40 and storm.throttled >= 0.2 * storm.calls
