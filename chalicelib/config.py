"""Deployment settings, read from environment variables once per process."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_PATH = re.compile(r"^/(?:[\w+=,.@-]+/)+$")


@dataclass(frozen=True)
class Settings:
    # Every set lives under <path_prefix><set>/ so it can be found from IAM alone.
    path_prefix: str = "/mib-prereqs/"
    # IAM path prefixes of principals that may receive Marketplace attachments.
    eligible_principal_paths: tuple[str, ...] = ()
    # Wall-clock budget of one REST request, below API Gateway's 29 s.
    request_budget_seconds: float = 25.0
    # The role the service assumes in a member account (stackset-member.yaml creates it).
    provisioner_role_name: str = "mib-prereqs-provisioner"
    # When set, every role the service creates carries this permissions boundary.
    required_permissions_boundary: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        prefix = env.get("MIB_PATH_PREFIX", cls.path_prefix)
        if not _PATH.match(prefix):
            raise ValueError(f"MIB_PATH_PREFIX: {prefix!r} must be an IAM path such as /mib-prereqs/")
        eligible = tuple(p.strip() for p in env.get("ELIGIBLE_PRINCIPAL_PATHS", "").split(",") if p.strip())
        for path in eligible:
            if not path.startswith("/"):
                raise ValueError(f"ELIGIBLE_PRINCIPAL_PATHS: {path!r} must start with /")
        budget = float(env.get("REQUEST_BUDGET_SECONDS", cls.request_budget_seconds))
        provisioner = env.get("PROVISIONER_ROLE_NAME", cls.provisioner_role_name)
        if not re.fullmatch(r"[\w+=,.@-]{1,64}", provisioner, re.ASCII):
            raise ValueError(f"PROVISIONER_ROLE_NAME: {provisioner!r} is not an IAM role name")
        boundary = env.get("REQUIRED_PERMISSIONS_BOUNDARY") or None
        if boundary and not boundary.startswith("arn:"):
            raise ValueError(f"REQUIRED_PERMISSIONS_BOUNDARY: {boundary!r} must be a policy ARN")
        return cls(prefix, eligible, budget, provisioner, boundary)

    def set_path(self, set_name: str) -> str:
        return f"{self.path_prefix}{set_name}/"
