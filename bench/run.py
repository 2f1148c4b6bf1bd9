"""`make bench`: what the service costs, each figure beside its baseline, in one table.

    python -m bench.run            # full: medians of several runs
    python -m bench.run --quick    # what `make test` runs: one run each, small sizes

Counting API calls uses a botocore event hook; times are medians, compared as ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto import mock_aws

from bench import rollout_sim
from chalicelib import aws
from chalicelib.config import Settings
from chalicelib.service import Service
from chalicelib.spec import parse_rest_body
from tests.conftest import WRITE_PREFIXES, load_marketplace_policies

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# terraform plan of the same resources: per role GetRole, ListRolePolicies, GetRolePolicy,
# ListAttachedRolePolicies; the two role-policy resources GetRolePolicy again; GetInstanceProfile.
TERRAFORM_PLAN_READS = 11
# What an IAM call costs over the wire, injected by a botocore hook: moto answers in microseconds.
LATENCY = 0.1


@dataclass
class Row:
    figure: str
    measured: str
    target: str
    baseline: str
    ratio: str
    met: bool


class Calls:
    """A botocore hook pair: the name and the span of every IAM call; optionally a delay on each."""

    def __init__(self, delay: float = 0.0) -> None:
        self.names: list[str] = []
        self.spans: list[tuple[float, float]] = []
        self.delay = delay
        self._started = threading.local()
        self._lock = threading.Lock()

    def attach(self, client: Any) -> Callable[[], None]:
        client.meta.events.register("before-call.iam", self.before)
        client.meta.events.register("after-call.iam", self.after)

        def detach() -> None:
            client.meta.events.unregister("before-call.iam", self.before)
            client.meta.events.unregister("after-call.iam", self.after)

        return detach

    def before(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.names.append(model.name)
        self._started.at = time.monotonic()
        if self.delay:
            time.sleep(self.delay)

    def after(self, **_: Any) -> None:
        with self._lock:
            self.spans.append((self._started.at, time.monotonic()))

    @property
    def writes(self) -> int:
        return sum(n.startswith(WRITE_PREFIXES) for n in self.names)

    @property
    def reads(self) -> int:
        return len(self.names) - self.writes

    def critical_path(self) -> int:
        """The longest chain of calls each sent after the previous one answered: the round trips."""
        depth: list[tuple[float, int]] = []  # (end, depth) of the calls seen so far
        for start, end in sorted(self.spans):
            depth.append((end, 1 + max((d for e, d in depth if e <= start), default=0)))
        return max((d for _, d in depth), default=0)


def _converge(name: str = "bench") -> None:
    Service(Settings()).converge(parse_rest_body(name, {}, "rest"))


def calls_and_latency(quick: bool) -> list[Row]:
    rollout_sim.offline_env()
    runs = 1 if quick else 5
    with mock_aws():
        aws.reset_caches()
        load_marketplace_policies()
        aws.own_target()  # the account id is cached per container; a warm container is measured
        calls = Calls()
        detach = calls.attach(aws.iam_client())
        _converge()
        writes = calls.writes
        calls.names.clear()
        _converge()
        noop_reads, noop_writes = calls.reads, calls.writes
        detach()

        rounds, walls, unloaded = [], [], []
        for i in range(runs):
            started = time.monotonic()
            _converge(f"unloaded{i}")
            unloaded.append(time.monotonic() - started)
            slow = Calls(LATENCY)
            detach = slow.attach(aws.iam_client())
            started = time.monotonic()
            _converge(f"lat{i}")
            walls.append(time.monotonic() - started)
            detach()
            rounds.append(slow.critical_path())
            sequential = len(slow.names)
    depth, wall, cpu = statistics.median(rounds), statistics.median(walls), statistics.median(unloaded)
    return [
        Row("IAM writes, fresh set", str(writes), "6", "6 (the seed's API steps)", f"{writes / 6:.2f}", writes == 6),
        Row("IAM writes, converged set", str(noop_writes), "0", "0", "-", noop_writes == 0),
        Row(
            "IAM reads, converged set",
            str(noop_reads),
            "<= 9",
            f"{TERRAFORM_PLAN_READS} (terraform plan)",
            f"{noop_reads / TERRAFORM_PLAN_READS:.2f}",
            noop_reads <= 9,
        ),
        Row(
            "round trips, fresh create (100 ms/call)",
            f"{depth:g} ({wall * 1000:.0f} ms, {cpu * 1000:.0f} ms without latency)",
            "<= 4",
            f"{sequential} (one call at a time)",
            f"{depth / sequential:.2f}",
            depth <= 4,
        ),
    ]


PROBE = r"""
import json, os, sys, time, urllib.request
mode, url = sys.argv[1], sys.argv[2]
event = json.loads(os.environ["BENCH_EVENT"])
if mode == "service":
    import app
    class Ctx:
        def get_remaining_time_in_millis(self): return 300000
    app.custom_resource(event, Ctx())
else:
    import boto3
    iam = boto3.client("iam")
    boto3.client("sts").get_caller_identity()
    for name in ("demo-InstanceRole", "demo-AutomationRole"):
        iam.get_role(RoleName=name)
        for p in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.get_role_policy(RoleName=name, PolicyName=p)
        iam.list_attached_role_policies(RoleName=name)
    iam.get_instance_profile(InstanceProfileName="demo-InstanceRole")
    body = json.dumps({"Status": "SUCCESS", "PhysicalResourceId": "x", "StackId": event["StackId"],
                       "RequestId": event["RequestId"], "LogicalResourceId": "L", "Data": {}}).encode()
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""}))
"""


def build_package(out: Path) -> Path:
    """`make package`: the zip a deployment uploads, with its bytecode."""
    subprocess.run(["make", "-s", "package", f"OUT={out}"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    return out / "deployment.zip"


def cold_start(quick: bool, package: Path) -> Row:
    """A fresh process answering one replayed Create, against bare boto3 doing the same reads and PUT.

    The service runs from the extracted deployment zip with bytecode writes off, as in /var/task;
    boto3 comes from the environment in both, as the Lambda runtime provides it.
    """
    from tests.cfn import ResponseEndpoint, event
    from tests.e2e.servers import LocalServers

    runs = 1 if quick else 9
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "task"
        with zipfile.ZipFile(package) as zf:
            zf.extractall(tree)
        servers = LocalServers(Path(tmp))
        endpoint = ResponseEndpoint()
        try:
            env = {
                **servers.env,
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": str(tree),
            }
            e = event(
                "Create",
                endpoint.url,
                {"SetName": "demo"},
                stack="arn:aws:cloudformation:us-east-1:123456789012:stack/bench/1",
            )
            env["BENCH_EVENT"] = json.dumps(e)
            probe = [str(BIN / "python"), "-c", PROBE]
            subprocess.run([*probe, "service", endpoint.url], env=env, cwd=tree, check=True, timeout=120)  # creates it

            def timed(mode: str) -> float:
                started = time.monotonic()
                subprocess.run([*probe, mode, endpoint.url], env=env, cwd=tree, check=True, timeout=120)
                return time.monotonic() - started

            service, bare = [], []
            for _ in range(runs):  # interleaved: a noisy moment hits both alike
                service.append(timed("service"))
                bare.append(timed("bare"))
        finally:
            endpoint.stop()
            servers.stop()
    ratio = statistics.median(service) / statistics.median(bare)
    return Row(
        "cold start + no-op Create",
        f"{statistics.median(service) * 1000:.0f} ms",
        "<= 1.3x bare",
        f"{statistics.median(bare) * 1000:.0f} ms (bare boto3)",
        f"{ratio:.2f}",
        ratio <= 1.3,
    )


def package_size(package: Path) -> Row:
    size = package.stat().st_size
    limit = 3 * 1024 * 1024
    return Row(
        "package zip (boto3 not vendored)",
        f"{size / 1e6:.2f} MB",
        "< 3 MB",
        "3 MB",
        f"{size / limit:.2f}",
        size < limit,
    )


def scale(quick: bool) -> Row:
    """n concurrent Create events through one hub on moto, each AWS call delayed like the latency figure.

    Without the delay moto answers in microseconds and the run is pure CPU of one process (the
    GIL): that measures the emulator, not a hub waiting on IAM as the real one does.
    """
    small, large = (4, 16) if quick else (25, 100)

    def wall(n: int) -> float:
        results = rollout_sim.simulate(
            accounts=n, concurrency=n, flaky_every=0, out=io.StringIO(), latency=LATENCY, phases=("Create",)
        )
        assert all(r.failed == 0 for r in results), [r.failures for r in results]
        return results[0].seconds

    t_small, t_large = wall(small), wall(large)
    growth = t_large / t_small
    return Row(
        f"hub wall time, {large} vs {small} concurrent events (100 ms/call)",
        f"{t_large:.2f} s",
        f"< {large // small}x",
        f"{t_small:.2f} s",
        f"{growth:.2f}",
        growth < large / small,
    )


def table(rows: list[Row]) -> str:
    head = ("figure", "measured", "target", "baseline", "ratio", "met")
    cells = [head] + [(r.figure, r.measured, r.target, r.baseline, r.ratio, "yes" if r.met else "NO") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(quick: bool) -> list[Row]:
    from chalicelib.log import logger

    logger.setLevel("ERROR")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    rows = calls_and_latency(quick)
    with tempfile.TemporaryDirectory() as tmp:
        package = build_package(Path(tmp) / "package")
        rows.append(cold_start(quick, package))
        rows.append(package_size(package))
    rows.append(scale(quick))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run each, small sizes (make test)")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
