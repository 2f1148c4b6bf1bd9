"""The README's commands themselves: `make run` serves and stops on Ctrl-C; `make demo` walks the life cycle."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.e2e.servers import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_make_run_serves_and_ctrl_c_stops_both() -> None:
    port, moto_port = free_port(), free_port()
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}", f"MOTO_PORT={moto_port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", proc, seconds=90)
        resp = requests.put(f"http://127.0.0.1:{port}/prerequisites/demo", json={}, timeout=30)
        assert resp.status_code == 201
        assert resp.json()["account_id"] == "123456789012"  # moto's account: not real AWS
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
    assert f"mib-prereqs API:     http://127.0.0.1:{port}" in out
    deadline = time.monotonic() + 10
    while (port_open(port) or port_open(moto_port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not port_open(port) and not port_open(moto_port)


def test_make_demo_walks_the_life_cycle() -> None:
    out = subprocess.run(
        ["make", "--no-print-directory", "demo", f"PORT={free_port()}", f"MOTO_PORT={free_port()}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    for step in (
        "1. plan",
        "2. apply",
        "3. apply again",
        "4. someone widens",
        "5. show --check",
        "6. apply: repair",
        "7. show --check",
        "8. delete",
        "Demo done",
    ):
        assert step in text
    assert "(exit 2)" in text and "Already in shape: nothing changed." in text
