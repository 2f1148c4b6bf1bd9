"""CloudFormation stand-ins: events, a Lambda context, and a real HTTP endpoint for responses."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import ACCOUNT

STACK_A = f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/stack-a/11111111-2222-3333-4444-555555555555"
STACK_B = f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/stack-b/66666666-7777-8888-9999-000000000000"
# The Fn::GetAtt attributes of the contract (DESIGN.md section 4).
ATTRIBUTES = [
    "InstanceRoleArn",
    "InstanceRoleName",
    "InstanceProfileArn",
    "InstanceProfileName",
    "AutomationRoleArn",
    "AutomationRoleName",
]
SECRET_QUERY = "X-Amz-Signature=5ecret5ignature&X-Amz-Credential=AKIDEXAMPLE%2F20261204"


class ResponseEndpoint:
    """Stands in for the presigned S3 URL: records every PUT it receives."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_next: list[int] = []  # statuses to answer before accepting
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if endpoint.fail_next:
                    self.send_response(endpoint.fail_next.pop(0))
                    self.end_headers()
                    return
                endpoint.received.append(json.loads(body))
                endpoint.headers.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/cfn-response?{SECRET_QUERY}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def last(self) -> dict[str, Any]:
        assert self.received, "no response arrived"
        return self.received[-1]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Context:
    """The part of the Lambda context the handler reads."""

    def __init__(self, seconds: float = 300) -> None:
        self._deadline = time.monotonic() + seconds
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def event(
    request_type: str,
    url: str,
    props: dict[str, Any] | None = None,
    physical: str | None = None,
    old: dict[str, Any] | None = None,
    stack: str = STACK_A,
) -> dict[str, Any]:
    e: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:mib-prereqs-dev-custom_resource",
        "ResponseURL": url,
        "StackId": stack,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "Prerequisites",
        "ResourceType": "Custom::MarketplaceImageBuildPrerequisites",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:x", **(props or {})},
    }
    if physical is not None:
        e["PhysicalResourceId"] = physical
    if old is not None:
        e["OldResourceProperties"] = {"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:x", **old}
    return e
