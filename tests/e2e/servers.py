"""Start a moto server and `chalice local` on free 127.0.0.1 ports, as `make run` does."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


class LocalServers:
    """moto (IAM + STS, AWS managed policies loaded) and the API, like `make run`."""

    def __init__(self, log_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.moto_url = f"http://127.0.0.1:{free_port()}"
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.api_log = log_dir / "chalice-local.log"
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": self.moto_url,
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            **(extra_env or {}),
        }
        self.env.pop("AWS_PROFILE", None)
        self._files = contextlib.ExitStack()
        moto_port = self.moto_url.rsplit(":", 1)[1]
        self._moto = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", moto_port],
            env=self.env,
            stdout=self._files.enter_context(open(log_dir / "moto.log", "wb")),
            stderr=subprocess.STDOUT,
        )
        self._api = subprocess.Popen(
            [
                str(BIN / "chalice"),
                "local",
                "--stage",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--no-autoreload",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._files.enter_context(open(self.api_log, "wb")),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_up(f"{self.moto_url}/moto-api/data.json", self._moto)
            wait_until_up(f"{self.api_url}/health", self._api)
        except Exception:
            self.stop()
            raise

    def reset(self) -> None:
        # Generous: a reset rebuilds every backend, and the machine may be busy.
        requests.post(f"{self.moto_url}/moto-api/reset", timeout=60).raise_for_status()

    def stop(self) -> None:
        for proc in (self._api, self._moto):
            proc.terminate()
        for proc in (self._api, self._moto):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._files.close()
