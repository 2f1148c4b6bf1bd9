"""AWS clients, the service's own identity, and the way into member accounts.

Clients honour the standard ``AWS_ENDPOINT_URL*`` variables: that is how local mode
and the tests point them at moto. Throttling is retried by botocore's ``standard``
retry mode; nothing here retries it by hand.
"""

from __future__ import annotations

import os
import re
import threading
import time
from functools import cache, lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.errors import AccountUnreachable, Throttled
from chalicelib.state import Target

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=10,
)
# Reuse assumed-role credentials until this close to their expiry.
CREDENTIAL_MARGIN_SECONDS = 300
ASSUME_DURATION_SECONDS = 3600
# A provisioner role created moments ago may not be assumable yet (IAM propagation).
ASSUME_ATTEMPTS = 3

_lock = threading.Lock()
_assumed: dict[tuple[str, str], tuple[float, Any]] = {}


@cache
def _session() -> boto3.session.Session:
    """One session for every client: a session loads botocore's data files, once is enough."""
    return boto3.session.Session()


@cache
def _client(service: str) -> Any:
    with _lock:  # a boto3 session is not thread-safe for client creation
        return _session().client(service, config=CLIENT_CONFIG)


def iam_client() -> Any:
    return _client("iam")


def sts_client() -> Any:
    return _client("sts")


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@lru_cache(maxsize=1)
def _own_identity() -> tuple[str, str]:
    # The account and partition do not change within a Lambda container.
    ident = sts_client().get_caller_identity()
    return ident["Account"], ident["Arn"].split(":")[1]


def own_target() -> Target:
    account, partition = _own_identity()
    return Target(account_id=account, partition=partition, region=region())


def session_name(caller: str) -> str:
    """An STS session name that says who asked: CloudTrail in the member account shows it."""
    name = re.sub(r"[^\w+=,.@-]", "-", caller, flags=re.ASCII)[:64]
    return name if len(name) >= 2 else "mib-prereqs"


def _assume(role_arn: str, account_id: str, session: str) -> dict[str, Any]:
    attempt = 1
    while True:
        try:
            return sts_client().assume_role(
                RoleArn=role_arn, RoleSessionName=session, DurationSeconds=ASSUME_DURATION_SECONDS
            )
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("Throttling", "ThrottlingException"):
                raise Throttled(f"STS is throttling AssumeRole of {role_arn}; retry later") from err
            if code != "AccessDenied" or attempt == ASSUME_ATTEMPTS:
                raise AccountUnreachable(
                    f"account_id: target account {account_id} cannot be reached: cannot assume {role_arn} "
                    f"({code}). Deploy templates/stackset-member.yaml there, trusting this service's role"
                ) from err
        time.sleep(0.25 * 2 ** (attempt - 1))
        attempt += 1


def member_iam_client(account_id: str, partition: str, role_name: str, caller: str) -> Any:
    """An IAM client in a member account, through its provisioner role; cached until near expiry."""
    session = session_name(caller)
    key = (account_id, session)
    with _lock:
        cached = _assumed.get(key)
    if cached and cached[0] - time.time() > CREDENTIAL_MARGIN_SECONDS:
        return cached[1]
    role_arn = f"arn:{partition}:iam::{account_id}:role/{role_name}"
    answer = _assume(role_arn, account_id, session)
    reached = answer["AssumedRoleUser"]["Arn"].split(":")[4]
    if reached != account_id:
        raise AccountUnreachable(f"account_id: assuming {role_arn} reached account {reached}, not {account_id}")
    creds = answer["Credentials"]
    with _lock:
        client = _session().client(
            "iam",
            config=CLIENT_CONFIG,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        _assumed[key] = (creds["Expiration"].timestamp(), client)
    return client


def reset_caches() -> None:
    """Forget clients, identity and assumed credentials (tests switch endpoints and accounts)."""
    _client.cache_clear()
    _session.cache_clear()
    _own_identity.cache_clear()
    with _lock:
        _assumed.clear()
