"""The CloudFormation custom resource ``Custom::MarketplaceImageBuildPrerequisites``.

Thin over the same core as the REST API. The protocol rules it keeps (DESIGN.md section 4):
exactly one response per event, before the Lambda's deadline; a deterministic, never-empty
PhysicalResourceId; replacement only when the role names, set or account change, with the
old roles removed by CloudFormation's own Delete of the old id; the ResponseURL is a
credential and never logged.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import metrics
from chalicelib.errors import InvalidSpec, PrereqError, SetNotFound
from chalicelib.log import logger
from chalicelib.policies import default_log_bucket
from chalicelib.service import Result, Service
from chalicelib.spec import Spec, build_spec, validate_set_name
from chalicelib.spec import unknown as spec_unknown

FRONT_END = "custom_resource"
ID_PREFIX = "mib-prereqs"
FAILED_ID_PREFIX = "mib-prereqs-failed"
# CloudFormation's own keys, and a free-form key stacks bump to force a re-run.
IGNORED_PROPERTIES = ("ServiceToken", "ServiceTimeout", "Version")
PROPERTY_FIELDS = {
    "InstanceRoleName": "instance_role_name",
    "AutomationRoleName": "automation_role_name",
    "LogBucket": "log_bucket",
    "PermissionsBoundary": "permissions_boundary",
    "Attachments": "attachments",
    "Tags": "tags",
    "Adopt": "adopt",
}
ITEM_FIELDS = {"Policy": "policy", "PrincipalType": "principal_type", "PrincipalName": "principal_name"}
STACK_ID = re.compile(r"arn:(aws[a-z-]*):cloudformation:([a-z0-9-]+):(\d{12}):stack/[^/]+/.+")
MAX_BODY = 4096
MAX_REASON = 512
WATCHDOG_MARGIN_SECONDS = 5.0  # answer FAILED this long before the Lambda's deadline
CORE_MARGIN_SECONDS = 10.0  # the core stops starting IAM calls this long before it
SEND_ATTEMPTS = 3


@dataclass(frozen=True)
class Stack:
    partition: str
    region: str
    account_id: str

    @classmethod
    def parse(cls, stack_id: object) -> Stack:
        match = STACK_ID.fullmatch(stack_id) if isinstance(stack_id, str) else None
        if not match:
            raise InvalidSpec(["StackId: must be a CloudFormation stack ARN"])
        return cls(*match.groups())


def _cfn_name(problem: str) -> str:
    """Say a REST field's problem with the CloudFormation property names."""
    where, sep, rule = problem.partition(": ")
    for prop, field in {**PROPERTY_FIELDS, **ITEM_FIELDS}.items():
        where = re.sub(rf"(^|\.){field}\b", rf"\g<1>{prop}", where)
    return where + sep + rule


def _flag(props: Mapping[str, Any], key: str) -> bool:
    value = props.get(key, "false")
    if value not in ("true", "false"):
        raise InvalidSpec([f'{key}: must be "true" or "false"'])
    return value == "true"


def _list_of_objects(props: Mapping[str, Any], key: str, fields: Mapping[str, str]) -> list[dict[str, Any]] | None:
    value = props.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
        raise InvalidSpec([f"{key}: must be a list of objects with {', '.join(fields)}"])
    out = []
    for i, item in enumerate(value):
        unknown = sorted(set(item) - set(fields))
        if unknown:
            raise InvalidSpec([spec_unknown(k, f"{key}[{i}]", "property", prefix=f"{key}[{i}].") for k in unknown])
        out.append({fields[k]: v for k, v in item.items()})
    return out


def parse_properties(props: object, stack: Stack, owner: str) -> Spec:
    """The spec of a resource's properties (all values are strings); RetainOnDelete is checked too."""
    if not isinstance(props, dict):
        raise InvalidSpec(["ResourceProperties: must be an object"])
    known = {"SetName", "RetainOnDelete", *PROPERTY_FIELDS, *IGNORED_PROPERTIES}
    problems = [spec_unknown(k, "ResourceProperties", "property") for k in sorted(props) if k not in known]
    if "SetName" not in props:
        problems.append("SetName: required")
    if problems:
        raise InvalidSpec(problems)
    try:
        name = validate_set_name(props["SetName"])
    except InvalidSpec:
        raise InvalidSpec(["SetName: must match [A-Za-z0-9][A-Za-z0-9-]{0,31}"]) from None
    _flag(props, "RetainOnDelete")  # read on Delete; a bad value is refused at Create already
    fields: dict[str, Any] = {f: props[p] for p, f in PROPERTY_FIELDS.items() if p in props and p not in ("Adopt",)}
    fields["adopt"] = _flag(props, "Adopt")
    fields["attachments"] = _list_of_objects(props, "Attachments", ITEM_FIELDS)
    tags = _list_of_objects(props, "Tags", {"Key": "key", "Value": "value"})
    if tags is not None:
        keys = [t.get("key") for t in tags]
        if len(set(keys)) != len(keys):
            raise InvalidSpec(["Tags: duplicate Key"])
        fields["tags"] = {t.get("key"): t.get("value") for t in tags}
    fields["account_id"] = stack.account_id
    if fields.get("log_bucket") is None:  # the stack's region, not the hub's
        fields["log_bucket"] = default_log_bucket(stack.region, stack.account_id)
    try:
        return build_spec(name, owner, fields, [])
    except InvalidSpec as err:
        raise InvalidSpec([_cfn_name(p) for p in err.problems]) from None


def physical_id(spec: Spec) -> str:
    """Deterministic: what changes it (account, set, role names) is what forces a replacement."""
    return "/".join((ID_PREFIX, spec.account_id, spec.name, spec.instance_role_name, spec.automation_role_name))


def parse_physical_id(value: object) -> tuple[str, str, str, str] | None:
    """(account, set, instance role, automation role) of an id this service completed, else None."""
    if not isinstance(value, str):
        return None
    parts = value.split("/")
    if len(parts) != 5 or parts[0] != ID_PREFIX:
        return None
    return parts[1], parts[2], parts[3], parts[4]


def attributes(result: Result) -> dict[str, str]:
    plan = result.plan
    return {
        "InstanceRoleArn": plan.instance_role.arn,
        "InstanceRoleName": plan.instance_role.name,
        "InstanceProfileArn": plan.instance_profile.arn,
        "InstanceProfileName": plan.instance_profile.name,
        "AutomationRoleArn": plan.automation_role.arn,
        "AutomationRoleName": plan.automation_role.name,
    }


def clean_reason(text: str) -> str:
    """Short, one line, no control characters."""
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def put_response(url: str, body: bytes, timeout: float = 10.0) -> None:
    """PUT the response to the presigned URL, with a bounded retry. Never logs the URL."""
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                resp.read()
            return
        except urllib.error.HTTPError as err:
            if err.code < 500 or attempt == SEND_ATTEMPTS:
                logger.error("response rejected", extra={"http_status": err.code, "attempt": attempt})
                return
        except (urllib.error.URLError, OSError) as err:
            if attempt == SEND_ATTEMPTS:
                logger.error("response not delivered", extra={"error": type(err).__name__, "attempt": attempt})
                return
        time.sleep(0.5 * 2 ** (attempt - 1))


class Responder:
    """Sends exactly one response for an event, whoever asks first."""

    def __init__(self, event: Mapping[str, Any], send: Callable[[str, bytes], None]) -> None:
        self._event = event
        self._send = send
        self._lock = threading.Lock()
        self.sent: dict[str, Any] | None = None

    def respond(self, status: str, physical: str, reason: str = "", data: Mapping[str, str] | None = None) -> bool:
        with self._lock:
            if self.sent is not None:
                return False
            body = {
                "Status": status,
                "Reason": clean_reason(reason or status),
                "PhysicalResourceId": physical,
                "StackId": self._event.get("StackId", ""),
                "RequestId": self._event.get("RequestId", ""),
                "LogicalResourceId": self._event.get("LogicalResourceId", ""),
                "NoEcho": False,
                "Data": dict(data or {}),
            }
            raw = json.dumps(body).encode()
            if len(raw) > MAX_BODY:  # only the Reason can grow; Data is six short attributes
                body["Reason"] = body["Reason"][: max(0, len(body["Reason"]) - (len(raw) - MAX_BODY) - 3)] + "..."
                raw = json.dumps(body).encode()
            self.sent = body
        logger.info("responding", extra={"status": status, "physical_resource_id": physical})
        self._send(self._event["ResponseURL"], raw)
        return True


def _failure_id(event: Mapping[str, Any]) -> str:
    existing = event.get("PhysicalResourceId")
    if event.get("RequestType") != "Create" and isinstance(existing, str) and existing:
        return existing
    return f"{FAILED_ID_PREFIX}/{event.get('RequestId') or 'unknown'}"


def _run(event: Mapping[str, Any], service: Service, responder: Responder, budget: float) -> Result | None:
    """Do what the event asks and answer it; returns what was applied, if anything."""
    kind = event.get("RequestType")
    stack_id = event.get("StackId")
    stack = Stack.parse(stack_id)
    if kind == "Delete":
        physical = event.get("PhysicalResourceId")
        parsed = parse_physical_id(physical)
        props = event.get("ResourceProperties") or {}
        if parsed is None or _flag(props, "RetainOnDelete"):
            responder.respond("SUCCESS", physical or _failure_id(event), "nothing to delete")
            return None
        account, name, instance, automation = parsed
        result = None
        with contextlib.suppress(SetNotFound):  # already gone is success
            result = service.delete(name, str(stack_id), account, budget=budget, only=(instance, automation))
        responder.respond("SUCCESS", str(physical))
        return result
    if kind not in ("Create", "Update"):
        raise InvalidSpec(["RequestType: must be Create, Update or Delete"])
    spec = parse_properties(event.get("ResourceProperties"), stack, str(stack_id))
    # An Update that keeps the id converges in place; one that changes it is a replacement,
    # whose old roles stay until CloudFormation deletes the old id.
    result = service.converge(spec, budget=budget, keep_obsolete=True)
    responder.respond("SUCCESS", physical_id(spec), data=attributes(result))
    return result


def handle(
    event: Any,
    context: Any,
    service_factory: Callable[[str], Service],
    send: Callable[[str, bytes], None] = put_response,
) -> dict[str, Any] | None:
    """Answer one CloudFormation event; returns the response body sent (for tests and logs)."""
    if not isinstance(event, dict) or not isinstance(event.get("ResponseURL"), str):
        logger.error("not a CloudFormation custom-resource event: no ResponseURL to answer")
        return None
    keys = {k: event.get(k) for k in ("RequestType", "StackId", "LogicalResourceId", "RequestId")}
    remaining = context.get_remaining_time_in_millis() / 1000 if context else 300.0
    responder = Responder(event, send)
    with logger.append_context_keys(**keys):
        logger.info("event received")

        def work() -> None:
            stack_name = str(event.get("StackId", "")).split("/")[1:2] or ["unknown"]
            service: Service | None = None
            try:  # a broken deployment setting fails here too, and still gets its answer
                service = service_factory(f"cfn-{stack_name[0]}")
                result = _run(event, service, responder, max(remaining - CORE_MARGIN_SECONDS, 1.0))
            except PrereqError as err:
                responder.respond("FAILED", _failure_id(event), str(err))
                retries = service.retries if service else 0
                metrics.emit(FRONT_END, failure=type(err).__name__, conflict=err.status == 409, retries=retries)
                return
            except Exception:
                logger.exception("unexpected error")
                reason = f"internal error; see the logs of request {event.get('RequestId')}"
                responder.respond("FAILED", _failure_id(event), reason)
                metrics.emit(FRONT_END, failure="Internal", retries=service.retries if service else 0)
                return
            changes = len(result.plan.changes) if result else 0
            converging = result is not None and event.get("RequestType") in ("Create", "Update")
            metrics.emit(
                FRONT_END,
                converged=converging,
                changes=changes,
                drift=converging and not result.created and changes > 0,
                retries=service.retries,
            )

        worker = threading.Thread(target=work, name="custom-resource", daemon=True)
        worker.start()
        worker.join(timeout=max(remaining - WATCHDOG_MARGIN_SECONDS, 0.1))
        if worker.is_alive():
            responder.respond(
                "FAILED",
                _failure_id(event),
                "timed out before the Lambda deadline; what was done is kept and the next attempt finishes it",
            )
    return responder.sent
