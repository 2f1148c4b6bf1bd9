"""Simulate an organization rollout on moto: N member accounts through one hub.

Each member account gets its provisioner role, then StackSet-style custom-resource events
(Create, Update after a hub upgrade, Delete) go through the hub's handler with bounded
concurrency, the way StackSets' MaxConcurrentCount drives them. Responses arrive on a real
127.0.0.1 HTTP endpoint. Every ``flaky_every``-th account's provisioner role is "just
created": its first AssumeRole is denied, as IAM propagation does, and the hub retries.

    python -m bench.rollout_sim --accounts 50 --concurrency 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from chalicelib import aws
from chalicelib import custom_resource as cfn
from chalicelib.config import Settings
from chalicelib.log import logger
from chalicelib.service import Service
from tests.cfn import Context, ResponseEndpoint, event
from tests.faults import error_response

HUB_ACCOUNT = "123456789012"
PHASES = ("Create", "Update", "Delete")


@dataclass
class PhaseResult:
    phase: str
    accounts: int
    converged: int = 0
    failed: int = 0
    retried: int = 0
    seconds: float = 0.0
    api_calls: int = 0
    failures: list[str] = field(default_factory=list)


class CallCounter:
    """Counts every AWS API call of every client the hub creates (a botocore event hook).

    ``latency`` delays each call as a real endpoint would: moto answers in microseconds.
    """

    def __init__(self, latency: float = 0.0) -> None:
        self.calls: Counter[str] = Counter()
        self.latency = latency
        self._lock = threading.Lock()
        self._original = boto3.session.Session.client

    def __enter__(self) -> CallCounter:
        counter = self

        def client(session: Any, *args: Any, **kwargs: Any) -> Any:
            made = counter._original(session, *args, **kwargs)
            made.meta.events.register("before-call", counter.count)
            return made

        boto3.session.Session.client = client  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: Any) -> None:
        boto3.session.Session.client = self._original  # type: ignore[method-assign]

    def count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1
        if self.latency:
            time.sleep(self.latency)

    def total(self) -> int:
        with self._lock:
            return sum(self.calls.values())


class Propagation:
    """Denies the first AssumeRole into each flaky account, as a just-created role is."""

    def __init__(self, flaky: set[str]) -> None:
        self.pending = set(flaky)
        self.denied = 0
        self._lock = threading.Lock()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        if model.name != "AssumeRole":
            return None
        account = params.get("body", {}).get("RoleArn", "::::").split(":")[4]
        with self._lock:
            if account in self.pending:
                self.pending.discard(account)
                self.denied += 1
                return error_response("AccessDenied", 403)
        return None


def member_ids(n: int) -> list[str]:
    return [f"{200000000000 + i:012d}" for i in range(n)]


def prepare_members(accounts: list[str]) -> None:
    sts = boto3.client("sts")
    for account in accounts:
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/bootstrap", RoleSessionName="bootstrap")
        c = creds["Credentials"]
        iam = boto3.client(
            "iam",
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
        )
        iam.create_role(RoleName="mib-prereqs-provisioner", AssumeRolePolicyDocument=json.dumps({"Statement": []}))


def progress(phase: str, done: int, total: int, out: Any) -> None:
    width = 30
    filled = width * done // total if total else width
    out.write(f"\r{phase:<7} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    out.flush()


def run_phase(
    phase: str,
    accounts: list[str],
    concurrency: int,
    endpoint: ResponseEndpoint,
    counter: CallCounter,
    propagation: Propagation,
    out: Any,
) -> PhaseResult:
    result = PhaseResult(phase, len(accounts))
    props = {
        "SetName": "org",
        "Version": "2" if phase != "Create" else "1",
        "Tags": [{"Key": "rollout", "Value": phase}],
    }
    done = 0
    lock = threading.Lock()

    def one(account: str) -> dict[str, Any] | None:
        nonlocal done
        stack = f"arn:aws:cloudformation:us-east-1:{account}:stack/StackSet-mib-prereqs-member-{account}/sim"
        physical = f"mib-prereqs/{account}/org/org-InstanceRole/org-AutomationRole" if phase != "Create" else None
        e = event(phase, endpoint.url, props, physical=physical, stack=stack)
        sent = cfn.handle(e, Context(300), lambda caller: Service(Settings(), caller))
        with lock:
            done += 1
            progress(phase, done, len(accounts), out)
        return sent

    calls_before, denied_before = counter.total(), propagation.denied
    started = time.monotonic()
    progress(phase, 0, len(accounts), out)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(pool.map(one, accounts))
    result.seconds = time.monotonic() - started
    out.write("\n")
    for account, answer in zip(accounts, answers, strict=True):
        if answer and answer["Status"] == "SUCCESS":
            result.converged += 1
        else:
            result.failed += 1
            result.failures.append(f"{account}: {answer['Reason'] if answer else 'no answer'}")
    result.retried = propagation.denied - denied_before
    result.api_calls = counter.total() - calls_before
    return result


def offline_env() -> None:
    """Fake credentials and no endpoint override: nothing leaves the process."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="sim",
        AWS_SECRET_ACCESS_KEY="sim",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS"):
        os.environ.pop(var, None)


def simulate(
    accounts: int = 50,
    concurrency: int = 10,
    flaky_every: int = 10,
    out: Any = sys.stdout,
    latency: float = 0.0,
    phases: tuple[str, ...] = PHASES,
) -> list[PhaseResult]:
    """Run the phases through the hub; ``latency`` seconds are added to every AWS call it makes."""
    offline_env()
    members = member_ids(accounts)
    flaky = {a for i, a in enumerate(members) if flaky_every and i % flaky_every == 0}
    results = []
    with mock_aws():
        aws.reset_caches()
        prepare_members(members)
        endpoint = ResponseEndpoint()
        propagation = Propagation(flaky)
        try:
            with CallCounter(latency) as counter:
                aws.sts_client().meta.events.register("before-call.sts.AssumeRole", propagation)
                for phase in phases:
                    results.append(run_phase(phase, members, concurrency, endpoint, counter, propagation, out))
                    aws.reset_caches()  # a new Lambda container per phase: credentials are assumed again
                    aws.sts_client().meta.events.register("before-call.sts.AssumeRole", propagation)
        finally:
            endpoint.stop()
            aws.reset_caches()
    return results


def table(results: list[PhaseResult]) -> str:
    head = ("phase", "accounts", "converged", "failed", "retried", "wall time", "API calls")
    rows = [head] + [
        (
            r.phase,
            str(r.accounts),
            str(r.converged),
            str(r.failed),
            str(r.retried),
            f"{r.seconds:.2f} s",
            str(r.api_calls),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10, help="like the StackSet's MaxConcurrentCount")
    parser.add_argument(
        "--flaky-every", type=int, default=10, help="every k-th account's role is just created (0: none)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.accounts <= 500 or not 1 <= args.concurrency <= 100:
        parser.error("--accounts must be 1-500 and --concurrency 1-100")
    logger.setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL", "ERROR"))  # the table is the output
    print(f"Simulated organization: hub {HUB_ACCOUNT}, {args.accounts} member accounts, concurrency {args.concurrency}")
    results = simulate(args.accounts, args.concurrency, args.flaky_every)
    print()
    print(table(results))
    for r in results:
        for failure in r.failures[:5]:
            print(f"  {r.phase} failed: {failure}")
    return 0 if all(r.failed == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
