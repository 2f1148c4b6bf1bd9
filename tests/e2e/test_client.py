"""The CLI against `chalice local` + moto, and the client's signing and retries on a capture server."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib.client import ApiError, PrereqsClient, main, sign
from tests.conftest import ALLOW_ALL


def cli(api: str, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*args, "--endpoint", api], out, err)
    return code, out.getvalue(), err.getvalue()


def test_life_cycle_through_the_cli(api: str, iam: Any, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"tags": {"team": "images"}}))

    code, out, _ = cli(api, "plan", "demo", "--file", str(spec))
    assert code == 0 and "+ create_role" in out and "role/demo-InstanceRole" in out
    assert iam.list_roles()["Roles"] == []

    code, out, _ = cli(api, "apply", "demo", "--file", str(spec))
    assert code == 0 and out.startswith("created set demo in account 123456789012")
    code, out, _ = cli(api, "apply", "demo", "--file", str(spec))
    assert code == 0 and "nothing changed" in out

    assert cli(api, "show", "demo", "--check")[0] == 0
    iam.put_role_policy(RoleName="demo-InstanceRole", PolicyName="widen", PolicyDocument=ALLOW_ALL)
    code, out, _ = cli(api, "show", "demo", "--check")
    assert code == 2
    assert (
        "in sync           no" in out
        and "extra_inline_policy  - delete_role_policy  role/demo-InstanceRole/inline/widen" in out
    )

    code, out, _ = cli(api, "apply", "demo", "--file", str(spec))
    assert code == 0 and "- delete_role_policy" in out
    code, out, _ = cli(api, "list")
    assert code == 0 and "demo" in out and "1 set(s)" in out
    code, out, _ = cli(api, "show", "demo", "--json")
    assert json.loads(out)["in_sync"] is True

    code, out, _ = cli(api, "delete", "demo")
    assert code == 0 and "- delete_role" in out
    code, _, err = cli(api, "show", "demo")
    assert code == 1 and "404 NotFoundError" in err


def test_cli_errors(api: str) -> None:
    code, _, err = cli(api, "apply", "bad_name")
    assert code == 1 and "400 BadRequestError: name: must match" in err
    with pytest.raises(SystemExit):
        main(["show"])  # a set name is required
    code, _, err = cli("http://127.0.0.1:9", "list")  # nothing listens there
    assert code == 1 and err.startswith("error:")


class Capture:
    """A stand-in API: answers scripted statuses and records what it received."""

    def __init__(self, script: list[tuple[int, dict, dict]]) -> None:
        self.script, self.seen = script, []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                capture.seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
                status, headers, body = capture.script.pop(0)
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _answer

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def capture() -> Iterator[Any]:
    servers: list[Capture] = []

    def make(*script: tuple[int, dict, dict]) -> Capture:
        servers.append(Capture(list(script)))
        return servers[-1]

    yield make
    for s in servers:
        s.server.shutdown()
        s.server.server_close()


def test_requests_are_signed_for_execute_api(capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    api = capture((200, {}, {"account_id": "1", "sets": []}))
    PrereqsClient(api.url, region="eu-west-1").list(account="123456789012")
    method, path, headers, _ = api.seen[0]
    assert (method, path) == ("GET", "/prerequisites?account_id=123456789012")
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in auth and "X-Amz-Date" in headers


def test_throttled_and_unavailable_are_retried_after_retry_after(capture) -> None:
    waits: list[float] = []
    api = capture(
        (429, {"Retry-After": "3"}, {"Code": "TooManyRequestsError", "Message": "slow down"}),
        (503, {"Retry-After": "1"}, {"Code": "ServiceUnavailableError", "Message": "repeat"}),
        (200, {}, {"account_id": "1", "sets": []}),
    )
    body = PrereqsClient(api.url, sleep=waits.append).list()
    assert body == {"account_id": "1", "sets": []} and waits == [3.0, 1.0]


def test_retries_are_bounded(capture) -> None:
    api = capture(*[(503, {"Retry-After": "0"}, {"Code": "ServiceUnavailableError", "Message": "m"})] * 4)
    with pytest.raises(ApiError) as err:
        PrereqsClient(api.url, attempts=4, sleep=lambda _: None).show("demo")
    assert err.value.status == 503 and len(api.seen) == 4


@pytest.mark.parametrize(
    ("action", "mark"),
    [("create_role", "+"), ("detach_user_policy", "-"), ("untag_role", "-"), ("update_assume_role_policy", "~")],
)
def test_change_signs(action: str, mark: str) -> None:
    assert sign(action) == mark
