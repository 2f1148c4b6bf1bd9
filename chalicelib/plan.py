"""The plan: a pure function from (desired, actual) to an ordered list of changes.

No AWS here. ``plan_converge`` is what PUT applies, what ``plan`` returns and what
GET reports as drift; ``plan_delete`` is what DELETE applies. ``preconditions``
raises the errors that must stop a write before the first call is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from chalicelib import records
from chalicelib.config import Settings
from chalicelib.errors import Conflict, Forbidden, InvalidSpec, MissingManagedPolicy
from chalicelib.policies import (
    AUTOMATION_POLICY_NAME,
    INSTANCE_POLICY_NAME,
    automation_role_policy,
    default_log_bucket,
    instance_role_policy,
    managed_policy_arn,
    same_document,
    trust_policy,
)
from chalicelib.spec import Attachment, Spec
from chalicelib.state import ActualState, ProfileState, RoleState, Target


class Phase(IntEnum):
    """Dependency order of apply: make before break, record before attach, detach before forgetting.

    Changes of one phase run in parallel, one IAM entity at a time. LOCK holds only the creation
    of the instance role: IAM creates a name once, so that first write is the lock that keeps two
    racing owners from splitting a set between them. When none of the set's names exists, the
    service sends it alongside the search of the set's path (the claim, see ``release_claim``).
    """

    LOCK = 0
    CREATE = 1
    CONFIGURE = 2
    PRUNE = 3
    ATTACH = 4
    DETACH = 5
    RELEASE = 6
    UNLINK = 7
    STRIP = 8
    DELETE_ROLE = 9
    DELETE_PROFILE = 10
    SEAL = 11


@dataclass(frozen=True)
class Change:
    action: str  # the IAM operation, in snake case
    resource: str
    phase: Phase
    reason: str  # what kind of difference this repairs
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def render(self) -> dict[str, str]:
        return {"action": self.action, "resource": self.resource}


@dataclass(frozen=True)
class Named:
    name: str
    arn: str


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    instance_role: Named | None = None
    automation_role: Named | None = None
    instance_profile: Named | None = None
    attachments: tuple[Attachment, ...] = ()
    warnings: tuple[str, ...] = ()


def _ordered(changes: Iterable[Change]) -> tuple[Change, ...]:
    return tuple(sorted(changes, key=lambda c: c.phase))  # stable: keeps order within a phase


def set_resources(set_name: str, actual: ActualState) -> tuple[list[RoleState], list[ProfileState]]:
    """The roles and profiles tagged as this set's, whoever owns it."""
    roles = [r for r in actual.roles.values() if r.tags.get(records.SET_TAG) == set_name]
    profiles = [p for p in actual.profiles.values() if p.tags.get(records.SET_TAG) == set_name]
    return roles, profiles


def preconditions(spec: Spec, target: Target, settings: Settings, actual: ActualState) -> None:
    """Raise before any write when the spec cannot be applied to this account."""
    conflicts: list[str] = []
    for kind, found in (
        ("role", actual.role(spec.instance_role_name)),
        ("role", actual.role(spec.automation_role_name)),
        ("instance profile", actual.profile(spec.instance_role_name)),
    ):
        if found is None:
            continue
        owned = records.ownership(found.tags, spec.name, spec.owner)
        if owned == "other":
            conflicts.append(f"{kind} {found.name} belongs to {records.describe_owner(found.tags)}")
        elif owned == "unowned" and not spec.adopt:
            conflicts.append(
                f"{kind} {found.name} exists and is not managed by this service; set adopt to take it over"
            )
    roles, profiles = set_resources(spec.name, actual)
    for res in [*roles, *profiles]:
        if records.ownership(res.tags, spec.name, spec.owner) == "other":
            conflicts.append(f"set {spec.name} is owned by {res.tags.get(records.OWNER_TAG)!r}, not {spec.owner!r}")
            break
    if conflicts:
        raise Conflict("; ".join(dict.fromkeys(conflicts)))

    missing = sorted(
        {
            a.policy
            for a in spec.attachments
            if managed_policy_arn(target.partition, a.policy) not in actual.existing_policies
        }
    )
    if missing:
        raise MissingManagedPolicy(
            f"attachments: managed policy {', '.join(missing)} does not exist in account {target.account_id} "
            f"(partition {target.partition}); remove it from attachments"
        )

    unknown, ineligible = [], []
    for i, att in enumerate(spec.attachments):
        principal = actual.principals.get((att.principal_type, att.principal_name))
        if principal is None or principal.path is None:
            where = f"attachments[{i}].principal_name"
            unknown.append(
                f"{where}: no {att.principal_type} named {att.principal_name} in account {target.account_id}"
            )
        elif att.principal_type == "role" and principal.path.startswith(settings.path_prefix):
            ineligible.append(
                f"role {att.principal_name} is a role of a prerequisite set and can never receive attachments"
            )
        elif not any(principal.path.startswith(p) for p in settings.eligible_principal_paths):
            ineligible.append(f"{att.principal_type} {att.principal_name} (path {principal.path})")
    if unknown:
        raise InvalidSpec(unknown)
    if ineligible:
        allowed = ",".join(settings.eligible_principal_paths) or "unset (nobody)"
        raise Forbidden(
            f"attachments: not eligible for Marketplace policies: {'; '.join(ineligible)}. "
            f"ELIGIBLE_PRINCIPAL_PATHS is {allowed}; the deployer must add an IAM path prefix that covers the principal"
        )


def _tag_changes(
    resource: str, kind: str, desired: Mapping[str, str], actual: Mapping[str, str], ident: Mapping[str, str]
) -> list[Change]:
    out = []
    changed = {k: v for k, v in desired.items() if actual.get(k) != v}
    if changed:
        tags = [{"Key": k, "Value": v} for k, v in sorted(changed.items())]
        out.append(Change(f"tag_{kind}", resource, Phase.CONFIGURE, "tags", {**ident, "Tags": tags}))
    # aws: tags belong to AWS and cannot be removed by anyone.
    removed = sorted(k for k in set(actual) - set(desired) if not k.lower().startswith("aws:"))
    if removed:
        out.append(Change(f"untag_{kind}", resource, Phase.RELEASE, "tags", {**ident, "TagKeys": removed}))
    return out


def _role_changes(
    name: str,
    path: str,
    policy_name: str,
    policy: Any,
    tags: Mapping[str, str],
    boundary: str | None,
    actual: RoleState | None,
    create_phase: Phase,
) -> list[Change]:
    res = f"role/{name}"
    ident = {"RoleName": actual.name if actual else name}
    put_policy = Change(
        "put_role_policy",
        f"{res}/inline/{policy_name}",
        Phase.CONFIGURE,
        "document",
        {**ident, "PolicyName": policy_name, "PolicyDocument": policy},
    )
    trust = trust_policy()
    if actual is None:
        params: dict[str, Any] = {
            "RoleName": name,
            "Path": path,
            "AssumeRolePolicyDocument": trust,
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        }
        if boundary:
            params["PermissionsBoundary"] = boundary
        return [Change("create_role", res, create_phase, "missing", params), put_policy]

    out = []
    if not same_document(actual.trust, trust):
        out.append(
            Change("update_assume_role_policy", res, Phase.CONFIGURE, "trust", {**ident, "PolicyDocument": trust})
        )
    if boundary and actual.boundary != boundary:
        out.append(
            Change(
                "put_role_permissions_boundary",
                res,
                Phase.CONFIGURE,
                "boundary",
                {**ident, "PermissionsBoundary": boundary},
            )
        )
    elif not boundary and actual.boundary:
        out.append(Change("delete_role_permissions_boundary", res, Phase.CONFIGURE, "boundary", dict(ident)))
    out += _tag_changes(res, "role", tags, actual.tags, ident)
    if policy_name not in actual.inline or not same_document(actual.inline[policy_name], policy):
        out.append(put_policy)
    for other in sorted(set(actual.inline) - {policy_name}):
        out.append(
            Change(
                "delete_role_policy",
                f"{res}/inline/{other}",
                Phase.PRUNE,
                "extra_inline_policy",
                {**ident, "PolicyName": other},
            )
        )
    for arn in actual.managed:
        out.append(
            Change(
                "detach_role_policy",
                f"{res}/managed/{arn}",
                Phase.PRUNE,
                "extra_managed_policy",
                {**ident, "PolicyArn": arn},
            )
        )
    return out


def _profile_changes(
    name: str, path: str, tags: Mapping[str, str], role_name: str, actual: ProfileState | None
) -> list[Change]:
    res = f"instance-profile/{name}"
    ident = {"InstanceProfileName": actual.name if actual else name}
    add = Change(
        "add_role_to_instance_profile",
        f"{res}/role/{role_name}",
        Phase.CONFIGURE,
        "profile_membership",
        {**ident, "RoleName": role_name},
    )
    if actual is None:
        tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        create = Change(
            "create_instance_profile",
            res,
            Phase.CREATE,
            "missing",
            {"InstanceProfileName": name, "Path": path, "Tags": tag_list},
        )
        return [create, add]
    out = _tag_changes(res, "instance_profile", tags, actual.tags, ident)
    for other in actual.roles:
        if other.lower() != role_name.lower():
            out.append(
                Change(
                    "remove_role_from_instance_profile",
                    f"{res}/role/{other}",
                    Phase.CONFIGURE,
                    "profile_membership",
                    {**ident, "RoleName": other},
                )
            )
    if role_name.lower() not in {r.lower() for r in actual.roles}:
        out.append(add)
    return out


def _attach_change(att: Attachment, partition: str, attach: bool) -> Change:
    arn = managed_policy_arn(partition, att.policy)
    ident = {"user": "UserName", "group": "GroupName", "role": "RoleName"}[att.principal_type]
    verb = "attach" if attach else "detach"
    return Change(
        f"{verb}_{att.principal_type}_policy",
        f"{att.principal_type}/{att.principal_name}/managed/{att.policy}",
        Phase.ATTACH if attach else Phase.DETACH,
        "attachment",
        {ident: att.principal_name, "PolicyArn": arn},
    )


def _is_attached(att: Attachment, partition: str, actual: ActualState) -> bool:
    principal = actual.principals.get((att.principal_type, att.principal_name))
    return principal is not None and managed_policy_arn(partition, att.policy) in principal.attached


def _release_attachments(released: Iterable[Attachment], partition: str, actual: ActualState) -> list[Change]:
    """Detach what this set no longer declares, unless another set still declares it."""
    return [
        _attach_change(att, partition, attach=False)
        for att in sorted(released)
        if att not in actual.declared_elsewhere and _is_attached(att, partition, actual)
    ]


def _teardown(roles: Iterable[RoleState], profiles: Iterable[ProfileState]) -> list[Change]:
    """Delete in IAM's required order: unlink, strip policies, delete role, delete profile."""
    out = []
    for p in profiles:
        ident = {"InstanceProfileName": p.name}
        for role_name in p.roles:
            out.append(
                Change(
                    "remove_role_from_instance_profile",
                    f"instance-profile/{p.name}/role/{role_name}",
                    Phase.UNLINK,
                    "obsolete",
                    {**ident, "RoleName": role_name},
                )
            )
        out.append(
            Change("delete_instance_profile", f"instance-profile/{p.name}", Phase.DELETE_PROFILE, "obsolete", ident)
        )
    for r in roles:
        ident = {"RoleName": r.name}
        for arn in r.managed:
            out.append(
                Change(
                    "detach_role_policy",
                    f"role/{r.name}/managed/{arn}",
                    Phase.STRIP,
                    "obsolete",
                    {**ident, "PolicyArn": arn},
                )
            )
        for name in sorted(r.inline):
            out.append(
                Change(
                    "delete_role_policy",
                    f"role/{r.name}/inline/{name}",
                    Phase.STRIP,
                    "obsolete",
                    {**ident, "PolicyName": name},
                )
            )
        out.append(Change("delete_role", f"role/{r.name}", Phase.DELETE_ROLE, "obsolete", ident))
    return out


def _sealed_last(changes: list[Change], log_bucket: str, spec: Spec) -> list[Change]:
    """Hold the digest back until the old roles are gone: it is what marks a set as settled."""
    out = []
    for c in changes:
        tags = c.params.get("Tags")
        if c.action in ("create_role", "tag_role") and tags:
            kept = [t for t in tags if t["Key"] != records.DIGEST_TAG]
            if c.action == "tag_role" and not kept:
                continue
            c = Change(c.action, c.resource, c.phase, c.reason, {**c.params, "Tags": kept})
        out.append(c)
    seal = [{"Key": records.DIGEST_TAG, "Value": records.digest(spec, log_bucket)}]
    for name in (spec.instance_role_name, spec.automation_role_name):
        out.append(Change("tag_role", f"role/{name}", Phase.SEAL, "tags", {"RoleName": name, "Tags": seal}))
    return out


def plan_converge(
    spec: Spec, target: Target, settings: Settings, actual: ActualState, keep_obsolete: bool = False
) -> Plan:
    """Changes that bring the set to ``spec``; empty when it is already there.

    ``keep_obsolete`` leaves roles of the set that the spec no longer names: CloudFormation
    deletes a replaced resource with a Delete event of its own, after the update.
    """
    log_bucket = spec.log_bucket or default_log_bucket(target.region, target.account_id)
    path = settings.set_path(spec.name)
    inst_actual = actual.role(spec.instance_role_name)
    auto_actual = actual.role(spec.automation_role_name)
    prof_actual = actual.profile(spec.instance_role_name)
    inst_arn = inst_actual.arn if inst_actual else target.arn("role", path, spec.instance_role_name)
    auto_arn = auto_actual.arn if auto_actual else target.arn("role", path, spec.automation_role_name)
    prof_arn = prof_actual.arn if prof_actual else target.arn("instance-profile", path, spec.instance_role_name)

    changes: list[Change] = []
    changes += _role_changes(
        spec.instance_role_name,
        path,
        INSTANCE_POLICY_NAME,
        instance_role_policy(target.partition, log_bucket),
        records.role_tags(spec, records.INSTANCE, log_bucket),
        spec.permissions_boundary,
        inst_actual,
        Phase.LOCK,
    )
    changes += _role_changes(
        spec.automation_role_name,
        path,
        AUTOMATION_POLICY_NAME,
        automation_role_policy(inst_arn),
        records.role_tags(spec, records.AUTOMATION, log_bucket),
        spec.permissions_boundary,
        auto_actual,
        Phase.CREATE,
    )
    changes += _profile_changes(
        spec.instance_role_name,
        path,
        records.ownership_tags(spec, records.PROFILE),
        spec.instance_role_name,
        prof_actual,
    )

    changes += [
        _attach_change(a, target.partition, True)
        for a in spec.attachments
        if not _is_attached(a, target.partition, actual)
    ]
    roles, profiles = set_resources(spec.name, actual)
    recorded = set().union(*(records.recorded_attachments(r.tags) for r in roles))
    changes += _release_attachments(recorded - set(spec.attachments), target.partition, actual)

    if not keep_obsolete:
        keep = {spec.instance_role_name.lower(), spec.automation_role_name.lower()}
        teardown = _teardown(
            [r for r in roles if r.name.lower() not in keep],
            [p for p in profiles if p.name.lower() != spec.instance_role_name.lower()],
        )
        if teardown:
            changes = _sealed_last(changes, log_bucket, spec) + teardown
    return Plan(
        changes=_ordered(changes),
        instance_role=Named(spec.instance_role_name, inst_arn),
        automation_role=Named(spec.automation_role_name, auto_arn),
        instance_profile=Named(spec.instance_role_name, prof_arn),
        attachments=spec.attachments,
        warnings=spec.warnings,
    )


def release_claim(claim: Change) -> Change:
    """Undo the claim of a fresh instance role (see ``Phase.LOCK``): it is deleted while still bare."""
    ident = {"RoleName": claim.params["RoleName"]}
    return Change("delete_role", claim.resource, Phase.DELETE_ROLE, "conflict", ident)


def _names_in_use(roles: list[RoleState], leaving: set[str]) -> set[str]:
    """Role names that the live record of a role outside ``leaving`` still names.

    A record is live when every role it names that still exists carries the same digest:
    the roles a replaced CloudFormation resource leaves behind carry an older one.
    """
    by_name = {r.name.lower(): r for r in roles}
    in_use: set[str] = set()
    for r in roles:
        if r.name.lower() in leaving:
            continue
        named = {
            n.lower() for n in (r.tags.get(records.INSTANCE_ROLE_TAG), r.tags.get(records.AUTOMATION_ROLE_TAG)) if n
        }
        digest = r.tags.get(records.DIGEST_TAG)
        if all(n not in by_name or by_name[n].tags.get(records.DIGEST_TAG) == digest for n in named):
            in_use |= named
    return in_use


def plan_delete(
    set_name: str, owner: str, target: Target, actual: ActualState, only: tuple[str, str] | None = None
) -> Plan:
    """Changes that remove everything the set owns, and nothing else.

    With ``only`` (instance and automation role names of a replaced CloudFormation resource),
    remove just those roles and their profile, and only where the set no longer uses them.
    """
    roles, profiles = set_resources(set_name, actual)
    for res in [*roles, *profiles]:
        if records.ownership(res.tags, set_name, owner) == "other":
            raise Conflict(f"set {set_name} is owned by {res.tags.get(records.OWNER_TAG)!r}, not {owner!r}")
    keep_recorded: set[Attachment] = set()
    if only is not None:
        leaving = {n.lower() for n in only}
        leaving -= _names_in_use(roles, leaving)
        kept = [r for r in roles if r.name.lower() not in leaving]
        roles = [r for r in roles if r.name.lower() in leaving]
        profiles = [p for p in profiles if p.name.lower() == only[0].lower() and p.name.lower() in leaving]
        keep_recorded = set().union(*(records.recorded_attachments(r.tags) for r in kept))
    recorded = set().union(*(records.recorded_attachments(r.tags) for r in roles))
    changes = _release_attachments(recorded - keep_recorded, target.partition, actual) + _teardown(roles, profiles)

    def named(items: list, component: str) -> Named | None:
        found = [Named(i.name, i.arn) for i in items if i.tags.get(records.COMPONENT_TAG) == component]
        return found[0] if found else None

    return Plan(
        changes=_ordered(changes),
        instance_role=named(roles, records.INSTANCE),
        automation_role=named(roles, records.AUTOMATION),
        instance_profile=named(profiles, records.PROFILE),
        attachments=tuple(sorted(recorded)),
    )
