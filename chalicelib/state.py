"""Plain values for the actual state of a set, as read from IAM."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.spec import Attachment


@dataclass(frozen=True)
class Target:
    """Where a set lives: account, partition and the region the request is served in."""

    account_id: str
    partition: str
    region: str

    def arn(self, kind: str, path: str, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:{kind}{path}{name}"


@dataclass(frozen=True)
class RoleState:
    name: str
    arn: str
    path: str
    trust: Any
    tags: Mapping[str, str]
    boundary: str | None
    inline: Mapping[str, Any]  # policy name -> document
    managed: tuple[str, ...]  # attached managed policy ARNs


@dataclass(frozen=True)
class ProfileState:
    name: str
    arn: str
    path: str
    roles: tuple[str, ...]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class PrincipalState:
    principal_type: str
    name: str
    arn: str | None  # None: no such principal
    path: str | None
    attached: frozenset[str]  # attached managed policy ARNs


@dataclass(frozen=True)
class ActualState:
    """What IAM holds for one set, plus the facts its plan depends on."""

    roles: Mapping[str, RoleState] = field(default_factory=dict)  # lower-case name -> role
    profiles: Mapping[str, ProfileState] = field(default_factory=dict)  # lower-case name -> profile
    principals: Mapping[tuple[str, str], PrincipalState] = field(default_factory=dict)
    existing_policies: frozenset[str] = frozenset()  # managed policy ARNs known to exist
    declared_elsewhere: frozenset[Attachment] = frozenset()  # attachments other sets still declare

    def role(self, name: str) -> RoleState | None:
        return self.roles.get(name.lower())

    def profile(self, name: str) -> ProfileState | None:
        return self.profiles.get(name.lower())

    @property
    def empty(self) -> bool:
        return not self.roles and not self.profiles
