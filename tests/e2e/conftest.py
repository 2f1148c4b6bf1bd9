"""One moto server and one `chalice local` for all the end-to-end tests, reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.e2e.servers import LocalServers


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServers]:
    s = LocalServers(tmp_path_factory.mktemp("servers"))
    yield s
    s.stop()


@pytest.fixture
def api(servers: LocalServers) -> str:
    servers.reset()
    return servers.api_url


@pytest.fixture
def iam(servers: LocalServers) -> Any:
    return boto3.client(
        "iam",
        endpoint_url=servers.moto_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
