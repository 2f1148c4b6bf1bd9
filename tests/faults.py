"""Fault injection on the service's IAM client through botocore's event hooks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse

from tests.conftest import WRITE_PREFIXES


class Crash(Exception):
    """Stands for the process dying right after IAM accepted a write."""


def error_response(code: str, status: int = 400) -> tuple[AWSResponse, dict[str, Any]]:
    http = AWSResponse("https://iam.amazonaws.com/", status, {}, None)
    return http, {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }


class CrashAfterWrite:
    """Raise :class:`Crash` after the k-th successful write (1-based)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.writes = 0
        self._lock = threading.Lock()  # writes of different entities run in parallel

    def __call__(self, model: Any, http_response: Any, **_: Any) -> None:
        if model.name.startswith(WRITE_PREFIXES) and http_response.status_code < 300:
            with self._lock:
                self.writes += 1
                crash = self.writes == self.k
            if crash:
                raise Crash(f"crash after write {self.k} ({model.name})")


class FailCalls:
    """Answer chosen operations with an error before they reach IAM, ``times`` times each."""

    def __init__(self, operation: str, code: str, times: int = 1, status: int = 400) -> None:
        self.operation, self.code, self.times, self.status = operation, code, times, status
        self.seen = 0

    def __call__(self, model: Any, **_: Any) -> Any:
        if model.name == self.operation and self.seen < self.times:
            self.seen += 1
            return error_response(self.code, self.status)
        return None


def install(client: Any, event: str, handler: Callable[..., Any]) -> Callable[[], None]:
    client.meta.events.register(event, handler)
    return lambda: client.meta.events.unregister(event, handler)
