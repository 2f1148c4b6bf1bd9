"""AWS clients and the identity of the account the service runs in.

Clients honour the standard ``AWS_ENDPOINT_URL*`` variables: that is how local mode
and the tests point them at moto. Throttling is retried by botocore's ``standard``
retry mode; nothing here retries by hand.
"""

from __future__ import annotations

import os
import threading
from functools import cache, lru_cache
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.state import Target

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=10,
)

_lock = threading.Lock()


@cache
def _client(service: str) -> Any:
    # boto3's default session is not thread-safe for client creation.
    with _lock:
        return boto3.session.Session().client(service, config=CLIENT_CONFIG)


def iam_client() -> Any:
    return _client("iam")


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@lru_cache(maxsize=1)
def _own_identity() -> tuple[str, str]:
    # The account and partition do not change within a Lambda container.
    ident = _client("sts").get_caller_identity()
    return ident["Account"], ident["Arn"].split(":")[1]


def own_target() -> Target:
    account, partition = _own_identity()
    return Target(account_id=account, partition=partition, region=region())


def reset_caches() -> None:
    """Forget clients and identity (tests switch endpoints and accounts)."""
    _client.cache_clear()
    _own_identity.cache_clear()
