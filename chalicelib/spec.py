"""The validated, immutable description of one prerequisite set.

Every front end builds a :class:`Spec` here before any AWS call; a violation is an
:class:`~chalicelib.errors.InvalidSpec` whose message names the field and the rule.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import InvalidSpec

MARKETPLACE_POLICIES = (
    "AWSMarketplaceFullAccess",
    "AWSMarketplaceRead-only",
    "AWSMarketplaceImageBuildFullAccess",
)
PRINCIPAL_TYPES = ("user", "group", "role")
RESERVED_TAG_PREFIX = "mib-prereqs:"
# IAM allows 50 tags per role; the service keeps up to 8 of its own plus one per attachment.
MAX_TAGS = 50
RESERVED_TAGS = 8
MAX_ATTACHMENTS = 20

SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
GROUP_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
ACCOUNT_ID = re.compile(r"\d{12}")
POLICY_ARN = re.compile(
    r"arn:(aws|aws-cn|aws-us-gov):iam::(aws|\d{12}):policy/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,128}",
    re.ASCII,
)
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
BUCKET_BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
PRINCIPAL_NAME_RULE = {
    "user": (ROLE_NAME, r"[\w+=,.@-]{1,64}"),
    "role": (ROLE_NAME, r"[\w+=,.@-]{1,64}"),
    "group": (GROUP_NAME, r"[\w+=,.@-]{1,128}"),
}
BODY_FIELDS = (
    "instance_role_name",
    "automation_role_name",
    "log_bucket",
    "permissions_boundary",
    "attachments",
    "tags",
    "account_id",
    "adopt",
)


@dataclass(frozen=True, order=True)
class Attachment:
    policy: str
    principal_type: str
    principal_name: str


@dataclass(frozen=True)
class Spec:
    name: str
    owner: str
    instance_role_name: str
    automation_role_name: str
    log_bucket: str | None = None  # None: ssmlogbucket-<region>-<account>
    permissions_boundary: str | None = None
    attachments: tuple[Attachment, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    account_id: str | None = None  # None: the service's own account
    adopt: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)


def unknown(key: str, parent: str, what: str, prefix: str = "") -> str:
    """'key: unknown field', or, for a key that cannot stand as a name, the parent with the key quoted."""
    if re.fullmatch(r"[A-Za-z_][\w-]{0,63}", key):
        return f"{prefix}{key}: unknown {what}"
    return f"{parent}: unknown {what} {key[:64]!r}"


def default_role_names(set_name: str) -> tuple[str, str]:
    return f"{set_name}-InstanceRole", f"{set_name}-AutomationRole"


def validate_set_name(name: object) -> str:
    if not isinstance(name, str) or not SET_NAME.fullmatch(name):
        raise InvalidSpec([f"name: must match {SET_NAME.pattern}"])
    return name


def validate_account_id(value: object, field_name: str = "account_id") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not ACCOUNT_ID.fullmatch(value):
        raise InvalidSpec([f"{field_name}: must be a string of 12 digits"])
    return value


def parse_rest_body(name: str, body: object, owner: str) -> Spec:
    """Build a Spec from the JSON body of PUT or plan (every field optional)."""
    set_name = validate_set_name(name)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidSpec(["body: must be a JSON object"])
    problems = [unknown(key, "body", "field") for key in body if key not in BODY_FIELDS]
    return build_spec(set_name, owner, body, problems)


def build_spec(set_name: str, owner: str, fields: Mapping[str, Any], problems: list[str]) -> Spec:
    """Validate the normalised fields (REST names) shared by both front ends."""
    default_instance, default_automation = default_role_names(set_name)
    warnings: list[str] = []

    def check(key: str, fn: Any, *args: Any) -> Any:
        value = fields.get(key)
        if value is None:
            return None
        try:
            return fn(key, value, *args)
        except InvalidSpec as err:
            problems.extend(err.problems)
            return None

    instance = check("instance_role_name", _role_name) or default_instance
    automation = check("automation_role_name", _role_name) or default_automation
    if instance.lower() == automation.lower():
        problems.append("automation_role_name: must differ from instance_role_name (IAM names ignore case)")
    if "Instance" not in instance:
        warnings.append(
            f"instance_role_name {instance!r} lacks the word 'Instance': AWSMarketplaceImageBuildFullAccess "
            "only allows iam:PassRole on role/*Instance*"
        )
    if "Automation" not in automation:
        warnings.append(
            f"automation_role_name {automation!r} lacks the word 'Automation': AWSMarketplaceImageBuildFullAccess "
            "only allows iam:PassRole on role/*Automation*"
        )
    log_bucket = check("log_bucket", _bucket)
    boundary = check("permissions_boundary", _policy_arn)
    attachments = check("attachments", _attachments) or ()
    tags = check("tags", _tags) or ()
    account_id = check("account_id", lambda k, v: validate_account_id(v, k))
    adopt = check("adopt", _bool) or False
    if len(tags) + len(attachments) + RESERVED_TAGS > MAX_TAGS:
        problems.append(
            f"tags: at most {MAX_TAGS - RESERVED_TAGS - len(attachments)} tags with {len(attachments)} "
            f"attachments (IAM allows {MAX_TAGS} per role; the service keeps {RESERVED_TAGS} plus one per attachment)"
        )
    if any(a.policy == "AWSMarketplaceImageBuildFullAccess" for a in attachments):
        warnings.append("AWSMarketplaceImageBuildFullAccess is deprecated by AWS and may be missing from an account")
    if problems:
        raise InvalidSpec(problems)
    return Spec(
        name=set_name,
        owner=owner,
        instance_role_name=instance,
        automation_role_name=automation,
        log_bucket=log_bucket,
        permissions_boundary=boundary,
        attachments=attachments,
        tags=tags,
        account_id=account_id,
        adopt=adopt,
        warnings=tuple(warnings),
    )


def _role_name(key: str, value: object) -> str:
    if not isinstance(value, str) or not ROLE_NAME.fullmatch(value):
        raise InvalidSpec([f"{key}: must match {ROLE_NAME.pattern} (IAM role name rules)"])
    return value


def _bucket(key: str, value: object) -> str:
    rule = (
        f"{key}: must follow S3 bucket naming rules (3-63 characters of a-z, 0-9, '.' and '-', "
        "starting and ending with a letter or digit, no '..', not an IP address, no reserved prefix or suffix)"
    )
    if (
        not isinstance(value, str)
        or not BUCKET.fullmatch(value)
        or ".." in value
        or IP_ADDRESS.fullmatch(value)
        or value.startswith(BUCKET_BAD_PREFIXES)
        or value.endswith(BUCKET_BAD_SUFFIXES)
    ):
        raise InvalidSpec([rule])
    return value


def _policy_arn(key: str, value: object) -> str:
    if not isinstance(value, str) or not POLICY_ARN.fullmatch(value):
        raise InvalidSpec([f"{key}: must be an IAM policy ARN (arn:<partition>:iam::<account>|aws:policy/<name>)"])
    return value


def _bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidSpec([f"{key}: must be a boolean (true or false)"])
    return value


def _attachments(key: str, value: object) -> tuple[Attachment, ...]:
    if not isinstance(value, list):
        raise InvalidSpec([f"{key}: must be a list of objects"])
    problems: list[str] = []
    if len(value) > MAX_ATTACHMENTS:
        problems.append(f"{key}: at most {MAX_ATTACHMENTS} attachments")
    seen: set[Attachment] = set()
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object with policy, principal_type and principal_name")
            continue
        extra = sorted(set(item) - {"policy", "principal_type", "principal_name"})
        problems.extend(unknown(k, where, "field", prefix=f"{where}.") for k in extra)
        policy, ptype, pname = item.get("policy"), item.get("principal_type"), item.get("principal_name")
        if policy not in MARKETPLACE_POLICIES:
            problems.append(f"{where}.policy: must be one of {', '.join(MARKETPLACE_POLICIES)}")
        if ptype not in PRINCIPAL_TYPES:
            problems.append(f"{where}.principal_type: must be one of user, group, role")
        else:
            regex, text = PRINCIPAL_NAME_RULE[ptype]
            if not isinstance(pname, str) or not regex.fullmatch(pname):
                problems.append(f"{where}.principal_name: must match {text} (IAM {ptype} name rules)")
        if problems:
            continue
        att = Attachment(policy, ptype, pname)
        if att in seen:
            problems.append(f"{where}: duplicate attachment")
        seen.add(att)
    if problems:
        raise InvalidSpec(problems)
    return tuple(sorted(seen))


def _tag_chars_ok(text: str) -> bool:
    return all(unicodedata.category(ch)[0] in "LZN" or ch in "_.:/=+-@" for ch in text)


def _tags(key: str, value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise InvalidSpec([f"{key}: must be an object of string keys to string values"])
    problems: list[str] = []
    lowered: set[str] = set()
    for k, v in value.items():
        where = f"{key}.{k}" if k.isprintable() else f"{key}.{k[:64]!r}"  # a line break must not split it
        if not 1 <= len(k) <= 128 or not _tag_chars_ok(k):
            problems.append(f"{where}: key must be 1-128 letters, digits, spaces or _.:/=+-@")
        elif k.lower().startswith("aws:"):
            problems.append(f"{where}: keys starting with aws: are reserved by AWS")
        elif k.lower().startswith(RESERVED_TAG_PREFIX):
            problems.append(f"{where}: keys starting with {RESERVED_TAG_PREFIX} are reserved by this service")
        elif k.lower() in lowered:
            problems.append(f"{where}: duplicate key (IAM tag keys ignore case)")
        lowered.add(k.lower())
        if not isinstance(v, str) or len(v) > 256 or not _tag_chars_ok(v):
            problems.append(f"{where}: value must be a string of 0-256 letters, digits, spaces or _.:/=+-@")
    if problems:
        raise InvalidSpec(problems)
    return tuple(sorted(value.items()))
