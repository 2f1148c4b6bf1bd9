"""A SigV4-signed client and command line for the mib-prereqs REST API.

    python -m chalicelib.client plan|apply|show|list|delete [SET] [--file spec.json] [--account ID]

Credentials come from botocore's usual chain (environment, profiles, SSO, instance roles);
requests are signed for ``execute-api``. 429 and 503 are retried after their ``Retry-After``.
Exit codes: 0 ok, 1 error, 2 drift found (``show --check``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TextIO

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
RETRY_STATUSES = (429, 503)
MAX_RETRY_AFTER = 30.0


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{status} {code}: {message}")


class PrereqsClient:
    """Calls the API with the caller's AWS credentials, signed with SigV4."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        region: str | None = None,
        profile: str | None = None,
        timeout: float = 60.0,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import botocore.session  # imported here: the Lambda never builds a client

        self.endpoint = endpoint.rstrip("/")
        session = botocore.session.Session(profile=profile)
        self.region = region or session.get_config_variable("region") or "us-east-1"
        self.credentials = session.get_credentials()
        self.timeout = timeout
        self.attempts = attempts
        self._sleep = sleep

    def _signed(self, method: str, url: str, data: bytes | None) -> dict[str, str]:
        headers = {"content-type": "application/json"} if data is not None else {}
        if self.credentials is None:  # e.g. `make run` without any AWS setup: chalice local does not check
            return headers
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())

    def request(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> tuple[int, Any]:
        url = self.endpoint + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(1, self.attempts + 1):
            # Signed anew on each attempt: the signature carries the time.
            req = urllib.request.Request(url, data=data, method=method, headers=self._signed(method, url, data))
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return resp.status, json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as err:
                payload = err.read()
                if err.code in RETRY_STATUSES and attempt < self.attempts:
                    wait = float(err.headers.get("Retry-After") or 2**attempt)
                    self._sleep(min(wait, MAX_RETRY_AFTER))
                    continue
                try:
                    parsed = json.loads(payload)
                    raise ApiError(err.code, parsed.get("Code", "Error"), parsed.get("Message", "")) from None
                except (ValueError, AttributeError):
                    raise ApiError(err.code, "Error", payload.decode(errors="replace")[:500]) from None
        raise AssertionError("unreachable")

    def _account(self, account: str | None) -> dict[str, str] | None:
        return {"account_id": account} if account else None

    def apply(self, name: str, spec: dict[str, Any]) -> tuple[int, Any]:
        return self.request("PUT", f"/prerequisites/{urllib.parse.quote(name)}", spec)

    def plan(self, name: str, spec: dict[str, Any]) -> Any:
        return self.request("POST", f"/prerequisites/{urllib.parse.quote(name)}/plan", spec)[1]

    def show(self, name: str, account: str | None = None) -> Any:
        return self.request("GET", f"/prerequisites/{urllib.parse.quote(name)}", query=self._account(account))[1]

    def list(self, account: str | None = None) -> Any:
        return self.request("GET", "/prerequisites", query=self._account(account))[1]

    def delete(self, name: str, account: str | None = None) -> Any:
        return self.request("DELETE", f"/prerequisites/{urllib.parse.quote(name)}", query=self._account(account))[1]


# ---- rendering ---------------------------------------------------------------

_ADDS = ("create", "put", "add", "attach", "tag")
_REMOVES = ("delete", "remove", "detach", "untag")


def sign(action: str) -> str:
    if action.startswith(_REMOVES):
        return "-"
    if action.startswith(_ADDS):
        return "+"
    return "~"


def render_changes(changes: list[dict[str, str]], out: TextIO, none: str = "No changes.") -> None:
    if not changes:
        print(none, file=out)
    width = max((len(c["action"]) for c in changes), default=0)
    for c in changes:
        print(f"{sign(c['action'])} {c['action']:<{width}}  {c['resource']}", file=out)


def render_set(body: dict[str, Any], out: TextIO) -> None:
    rows = [("set", f"{body['name']}  (account {body['account_id']}, owner {body['owner']})")]
    for key, label in (
        ("instance_role", "instance role"),
        ("instance_profile", "instance profile"),
        ("automation_role", "automation role"),
    ):
        item = body.get(key)
        rows.append((label, f"{item['name']}  {item['arn']}" if item else "-"))
    for a in body.get("attachments", []):
        rows.append(("attachment", f"{a['policy']} -> {a['principal_type']}/{a['principal_name']}"))
    if "in_sync" in body:
        rows.append(("in sync", "yes" if body["in_sync"] else "no"))
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}", file=out)
    for w in body.get("warnings", []):
        print(f"warning: {w}", file=out)
    if body.get("drift"):
        print("drift:", file=out)
        kind_w = max(len(d["kind"]) for d in body["drift"])
        for d in body["drift"]:
            print(f"  {d['kind']:<{kind_w}}  {sign(d['action'])} {d['action']}  {d['resource']}", file=out)


def render_list(body: dict[str, Any], out: TextIO) -> None:
    print(f"account {body['account_id']}: {len(body['sets'])} set(s)", file=out)
    for s in body["sets"]:
        print(f"  {s['name']:<32}  roles: {', '.join(s['roles']) or '-'}", file=out)


# ---- command line ------------------------------------------------------------


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if args.file:
        with open(args.file) as f:
            spec = json.load(f)
    if args.account:
        spec["account_id"] = args.account
    return spec


def main(argv: list[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.client", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["plan", "apply", "show", "list", "delete"])
    parser.add_argument("set", nargs="?", help="the set's name (all commands but list)")
    parser.add_argument("--file", help="JSON body of PUT/plan (apply, plan)")
    parser.add_argument("--account", help="target account id")
    parser.add_argument("--check", action="store_true", help="show: exit 2 when the set has drifted")
    parser.add_argument("--json", action="store_true", help="print the raw JSON response")
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("MIB_PREREQS_ENDPOINT", DEFAULT_ENDPOINT),
        help="API base URL (env MIB_PREREQS_ENDPOINT)",
    )
    parser.add_argument("--region", help="region for signing (default: your AWS config)")
    parser.add_argument("--profile", help="AWS profile (default: the usual chain)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP attempt")
    args = parser.parse_args(argv)
    if args.command != "list" and not args.set:
        parser.error(f"{args.command} needs the set's name")
    try:
        client = PrereqsClient(args.endpoint, args.region, args.profile, args.timeout)
        if args.command == "list":
            body = client.list(args.account)
        elif args.command == "show":
            body = client.show(args.set, args.account)
        elif args.command == "delete":
            body = client.delete(args.set, args.account)
        elif args.command == "plan":
            body = client.plan(args.set, _spec(args))
        else:
            status, body = client.apply(args.set, _spec(args))
    except ApiError as e:
        print(f"error: {e}", file=err)
        return 1
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=err)
        return 1
    if args.json:
        print(json.dumps(body, indent=2), file=out)
    elif args.command == "list":
        render_list(body, out)
    elif args.command == "show":
        render_set(body, out)
    elif args.command == "plan":
        print(f"plan for set {body['name']} in account {body['account_id']}:", file=out)
        render_changes(body["changes"], out)
    elif args.command == "apply":
        print(
            f"{'created' if status == 201 else 'converged'} set {body['name']} in account {body['account_id']}:",
            file=out,
        )
        render_changes(body["changes"], out, none="Already in shape: nothing changed.")
    else:
        print(f"deleted set {args.set}:", file=out)
        render_changes(body["changes"], out)
    if args.command == "show" and args.check and not body.get("in_sync", True):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
