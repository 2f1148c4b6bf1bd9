"""Every IAM call of the service, in one place.

Reads return the values of :mod:`chalicelib.state`; writes execute one planned
:class:`~chalicelib.plan.Change`. IAM's eventual consistency (an entity just
created and not yet visible, ``DeleteConflict`` while a detach propagates) is
retried here with a bounded backoff inside the request's deadline; throttling is
left to botocore's ``standard`` retry mode.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from chalicelib.errors import Conflict, Forbidden, OutOfTime, Throttled
from chalicelib.plan import Change
from chalicelib.state import PrincipalState, ProfileState, RoleState

THROTTLE_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
# Deleting or detaching what is already gone is success: the goal is reached.
GONE_IS_DONE = {
    "delete_role",
    "delete_instance_profile",
    "delete_role_policy",
    "detach_role_policy",
    "detach_user_policy",
    "detach_group_policy",
    "remove_role_from_instance_profile",
}
# A write that names an entity created moments ago may not see it yet.
MAY_LAG = {
    "put_role_policy",
    "add_role_to_instance_profile",
    "tag_role",
    "tag_instance_profile",
    "update_assume_role_policy",
    "put_role_permissions_boundary",
    "attach_user_policy",
    "attach_group_policy",
    "attach_role_policy",
}
_DOCUMENT_PARAMS = ("AssumeRolePolicyDocument", "PolicyDocument")
MAX_ATTEMPTS = 8


def error_code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


class Deadline:
    """The time budget of one request."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def check(self) -> None:
        if self.remaining() <= 0:
            raise OutOfTime("the request ran out of time; the changes made so far are kept, repeat it to finish")


def _document(value: Any) -> Any:
    # boto3 decodes policy documents; a raw or URL-encoded string is tolerated too.
    if isinstance(value, str):
        return json.loads(unquote(value))
    return value


class IamGateway:
    def __init__(self, client: Any, deadline: Deadline) -> None:
        self.client = client
        self.deadline = deadline
        self.retries = 0  # eventual-consistency retries, for the Retries metric
        self._lock = threading.Lock()

    def _call(self, operation: str, **params: Any) -> Any:
        self.deadline.check()
        try:
            return getattr(self.client, operation)(**params)
        except ClientError as err:
            code = error_code(err)
            if code in THROTTLE_CODES:
                raise Throttled(f"IAM is throttling {operation}; retry later") from err
            if code in DENIED_CODES:
                raise Forbidden(
                    f"IAM denied {operation} to the service: {err.response['Error'].get('Message', '')}"
                ) from err
            raise

    def _get(self, operation: str, **params: Any) -> Any | None:
        """A read whose NoSuchEntity means 'absent'."""
        try:
            return self._call(operation, **params)
        except ClientError as err:
            if error_code(err) == "NoSuchEntity":
                return None
            raise

    def _pages(self, operation: str, key: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        while True:
            page = self._call(operation, **params)
            items += page.get(key, [])
            if not page.get("IsTruncated"):
                return items
            params["Marker"] = page["Marker"]

    # ---- reads ----------------------------------------------------------

    def _under(self, operation: str, key: str, name_key: str, path_prefix: str) -> list[tuple[str, str]]:
        # The prefix is checked again here: an emulator that ignores PathPrefix (moto does, for
        # instance profiles) must not make the service read every profile of the account.
        items = self._pages(operation, key, PathPrefix=path_prefix)
        return [(i[name_key], i["Path"]) for i in items if i["Path"].startswith(path_prefix)]

    def roles_under(self, path_prefix: str) -> list[tuple[str, str]]:
        return self._under("list_roles", "Roles", "RoleName", path_prefix)

    def profiles_under(self, path_prefix: str) -> list[tuple[str, str]]:
        return self._under("list_instance_profiles", "InstanceProfiles", "InstanceProfileName", path_prefix)

    def role_tags(self, name: str) -> dict[str, str]:
        tags = self._pages("list_role_tags", "Tags", RoleName=name)
        return {t["Key"]: t["Value"] for t in tags}

    def role(self, name: str) -> RoleState | None:
        """The whole role: trust, tags, boundary, inline documents, managed attachments."""
        found = self._get("get_role", RoleName=name)
        if found is None:
            return None
        role = found["Role"]
        name = role["RoleName"]

        def inline_documents() -> dict[str, Any]:
            names = self._pages("list_role_policies", "PolicyNames", RoleName=name)
            with ThreadPoolExecutor(max_workers=max(1, min(4, len(names)))) as pool:
                docs = pool.map(lambda p: self._get("get_role_policy", RoleName=name, PolicyName=p), names)
                return {p: _document(d["PolicyDocument"]) for p, d in zip(names, docs, strict=True) if d is not None}

        with ThreadPoolExecutor(max_workers=2) as pool:  # the two lists are independent
            inline_future = pool.submit(inline_documents)
            managed = self._pages("list_attached_role_policies", "AttachedPolicies", RoleName=name)
            inline = inline_future.result()
        return RoleState(
            name=name,
            arn=role["Arn"],
            path=role["Path"],
            trust=_document(role.get("AssumeRolePolicyDocument", {})),
            tags={t["Key"]: t["Value"] for t in role.get("Tags", [])},
            boundary=(role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            inline=inline,
            managed=tuple(sorted(p["PolicyArn"] for p in managed)),
        )

    def profile(self, name: str) -> ProfileState | None:
        found = self._get("get_instance_profile", InstanceProfileName=name)
        if found is None:
            return None
        p = found["InstanceProfile"]
        return ProfileState(
            name=p["InstanceProfileName"],
            arn=p["Arn"],
            path=p["Path"],
            roles=tuple(r["RoleName"] for r in p.get("Roles", [])),
            tags={t["Key"]: t["Value"] for t in p.get("Tags", [])},
        )

    def principal(self, principal_type: str, name: str) -> PrincipalState:
        kind = principal_type.capitalize()
        found = self._get(
            f"get_{principal_type}", **{f"{kind}Name": name, **({"MaxItems": 1} if kind == "Group" else {})}
        )
        if found is None:
            return PrincipalState(principal_type, name, None, None, frozenset())
        entity = found[kind]
        attached = self._pages(f"list_attached_{principal_type}_policies", "AttachedPolicies", **{f"{kind}Name": name})
        return PrincipalState(
            principal_type, name, entity["Arn"], entity["Path"], frozenset(p["PolicyArn"] for p in attached)
        )

    def policy_exists(self, arn: str) -> bool:
        return self._get("get_policy", PolicyArn=arn) is not None

    # ---- writes ---------------------------------------------------------

    def execute(self, change: Change) -> None:
        params = {k: json.dumps(v) if k in _DOCUMENT_PARAMS else v for k, v in change.params.items()}
        delay = 0.2
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._call(change.action, **params)
                return
            except ClientError as err:
                code = error_code(err)
                if code == "NoSuchEntity" and change.action in GONE_IS_DONE:
                    return
                if code == "EntityAlreadyExists":
                    raise Conflict(
                        f"{change.resource} was created by a concurrent request; repeat the request"
                    ) from err
                if code == "LimitExceeded" and change.action == "add_role_to_instance_profile":
                    raise Conflict(
                        f"{change.resource}: the profile got another role concurrently; repeat the request"
                    ) from err
                lagging = (code == "NoSuchEntity" and change.action in MAY_LAG) or code == "DeleteConflict"
                if not lagging:
                    raise
                if attempt == MAX_ATTEMPTS - 1:
                    raise Conflict(
                        f"{change.resource}: IAM still answers {code} after {MAX_ATTEMPTS} attempts"
                    ) from err
                if self.deadline.remaining() < delay:
                    raise OutOfTime(f"{change.resource}: IAM answers {code}; repeat the request to finish") from err
            with self._lock:
                self.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
