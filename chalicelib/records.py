"""Ownership tags, and the record of the applied spec kept in IAM tags.

The set's roles carry the spec they were last converged to (names, log bucket,
boundary, attachments, a digest of all of it and of the user tags). That makes a set
discoverable and checkable from IAM alone: GET and DELETE need no body and no
database, and a removed attachment is known even after the caller forgot it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Literal

from chalicelib.spec import RESERVED_TAG_PREFIX, Attachment, Spec, default_role_names

SET_TAG = RESERVED_TAG_PREFIX + "set"
OWNER_TAG = RESERVED_TAG_PREFIX + "owner"
COMPONENT_TAG = RESERVED_TAG_PREFIX + "component"
INSTANCE_ROLE_TAG = RESERVED_TAG_PREFIX + "instance-role"
AUTOMATION_ROLE_TAG = RESERVED_TAG_PREFIX + "automation-role"
LOG_BUCKET_TAG = RESERVED_TAG_PREFIX + "log-bucket"
BOUNDARY_TAG = RESERVED_TAG_PREFIX + "permissions-boundary"
DIGEST_TAG = RESERVED_TAG_PREFIX + "digest"
ATTACH_TAG_PREFIX = RESERVED_TAG_PREFIX + "attach:"

INSTANCE, AUTOMATION, PROFILE = "instance-role", "automation-role", "instance-profile"

Ownership = Literal["ours", "unowned", "other"]


def ownership(tags: Mapping[str, str], set_name: str, owner: str) -> Ownership:
    """Whose a resource is: this set and owner's, nobody's, or someone else's."""
    if SET_TAG not in tags and OWNER_TAG not in tags:
        return "unowned"
    if tags.get(SET_TAG) == set_name and tags.get(OWNER_TAG) == owner:
        return "ours"
    return "other"


def describe_owner(tags: Mapping[str, str]) -> str:
    return f"set {tags.get(SET_TAG, '?')!r} of owner {tags.get(OWNER_TAG, '?')!r}"


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith(RESERVED_TAG_PREFIX)}


# Tag values may not hold ',', which IAM names may; ':' never occurs in an IAM name.
def _attachment_value(att: Attachment) -> str:
    return f"{att.policy}/{att.principal_type}/{att.principal_name.replace(',', ':')}"


def _attachment_key(att: Attachment) -> str:
    digest = hashlib.sha256(_attachment_value(att).encode()).hexdigest()[:16]
    return ATTACH_TAG_PREFIX + digest


def recorded_attachments(tags: Mapping[str, str]) -> set[Attachment]:
    found = set()
    for key, value in tags.items():
        if key.startswith(ATTACH_TAG_PREFIX):
            parts = value.split("/", 2)
            if len(parts) == 3:
                found.add(Attachment(parts[0], parts[1], parts[2].replace(":", ",")))
    return found


def digest(spec: Spec, log_bucket: str) -> str:
    body = {
        "set": spec.name,
        "owner": spec.owner,
        "roles": [spec.instance_role_name, spec.automation_role_name],
        "log_bucket": log_bucket,
        "boundary": spec.permissions_boundary,
        "attachments": [_attachment_value(a) for a in spec.attachments],
        "tags": sorted(spec.tags),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def ownership_tags(spec: Spec, component: str) -> dict[str, str]:
    return {**spec.tag_map, SET_TAG: spec.name, OWNER_TAG: spec.owner, COMPONENT_TAG: component}


def role_tags(spec: Spec, component: str, log_bucket: str) -> dict[str, str]:
    """Every tag a role of the set should carry: the user's, ownership, and the record."""
    tags = ownership_tags(spec, component)
    tags[INSTANCE_ROLE_TAG] = spec.instance_role_name
    tags[AUTOMATION_ROLE_TAG] = spec.automation_role_name
    tags[LOG_BUCKET_TAG] = log_bucket
    if spec.permissions_boundary:
        tags[BOUNDARY_TAG] = spec.permissions_boundary
    tags[DIGEST_TAG] = digest(spec, log_bucket)
    for att in spec.attachments:
        tags[_attachment_key(att)] = _attachment_value(att)
    return tags


def spec_from_record(set_name: str, tags: Mapping[str, str] | None, fallback_owner: str) -> Spec:
    """The spec a set was last converged to, rebuilt from one of its roles' tags.

    Without a record (only an instance profile left), the defaults stand in.
    """
    instance, automation = default_role_names(set_name)
    if not tags:
        return Spec(name=set_name, owner=fallback_owner, instance_role_name=instance, automation_role_name=automation)
    return Spec(
        name=set_name,
        owner=tags.get(OWNER_TAG, fallback_owner),
        instance_role_name=tags.get(INSTANCE_ROLE_TAG, instance),
        automation_role_name=tags.get(AUTOMATION_ROLE_TAG, automation),
        log_bucket=tags.get(LOG_BUCKET_TAG),
        permissions_boundary=tags.get(BOUNDARY_TAG),
        attachments=tuple(sorted(recorded_attachments(tags))),
        tags=tuple(sorted(user_tags(tags).items())),
    )
