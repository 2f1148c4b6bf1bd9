"""Read the actual state of a set: only what its plan needs, nothing twice."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from chalicelib import records
from chalicelib.config import Settings
from chalicelib.iam import IamGateway
from chalicelib.policies import default_log_bucket, managed_policy_arn
from chalicelib.spec import Attachment, Spec, default_role_names
from chalicelib.state import ActualState, ProfileState, RoleState, Target

T = TypeVar("T")


# Reads in flight at once (IAM answers reads of different entities independently).
PARALLEL_READS = 4


def _parallel(reads: list[Callable[[], T]]) -> list[T]:
    """Independent reads at once (a few at a time); their results in order."""
    if len(reads) <= 1:
        return [read() for read in reads]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_READS, len(reads))) as pool:
        return list(pool.map(lambda read: read(), reads))


def _each(fn: Callable[[str], T | None], names: Iterable[str]) -> list[T]:
    """``fn`` over distinct names (IAM names ignore case), in parallel; the ones that exist."""
    distinct = list({n.lower(): n for n in names}.values())
    return [f for f in _parallel([partial(fn, n) for n in distinct]) if f is not None]


def _roles(gw: IamGateway, names: Iterable[str], known: dict[str, RoleState] | None = None) -> dict[str, RoleState]:
    found = dict(known or {})
    for role in _each(gw.role, [n for n in names if n.lower() not in found]):
        found[role.name.lower()] = role
    return found


def _profiles(gw: IamGateway, names: Iterable[str]) -> dict[str, ProfileState]:
    return {p.name.lower(): p for p in _each(gw.profile, names)}


def _declared_elsewhere(gw: IamGateway, settings: Settings, set_name: str) -> frozenset[Attachment]:
    """Attachments recorded by the other sets of the account (one role per set holds the record)."""
    own_path = settings.set_path(set_name)
    seen_paths: set[str] = set()
    declared: set[Attachment] = set()
    for name, path in gw.roles_under(settings.path_prefix):
        if path == own_path or path in seen_paths:
            continue
        seen_paths.add(path)
        declared |= records.recorded_attachments(gw.role_tags(name))
    return frozenset(declared)


def _complete(
    gw: IamGateway,
    settings: Settings,
    target: Target,
    set_name: str,
    roles: dict[str, RoleState],
    profiles: dict[str, ProfileState],
    desired: Iterable[Attachment],
    check_policies: bool = True,
    known: ActualState | None = None,
) -> ActualState:
    """Add the attachment facts: principals, policies that exist, other sets' declarations.

    Facts already in ``known`` are not read again.
    """
    desired = set(desired)
    recorded: set[Attachment] = set()
    for role in roles.values():
        if role.tags.get(records.SET_TAG) == set_name:
            recorded |= records.recorded_attachments(role.tags)
    known = known or ActualState()
    keys = {(a.principal_type, a.principal_name) for a in desired | recorded}
    unread = sorted(keys - set(known.principals))
    policies = {managed_policy_arn(target.partition, a.policy) for a in desired} if check_policies else set()
    unchecked = sorted(policies - known.existing_policies)
    found = _parallel(  # principals and policies together: each is independent of the others
        [partial(gw.principal, *key) for key in unread] + [partial(gw.policy_exists, arn) for arn in unchecked]
    )
    principals = {key: known.principals[key] for key in keys if key in known.principals}
    principals.update(zip(unread, found[: len(unread)], strict=True))
    existing = known.existing_policies | {arn for arn, ok in zip(unchecked, found[len(unread) :], strict=True) if ok}
    elsewhere = _declared_elsewhere(gw, settings, set_name) if recorded - desired else frozenset()
    return ActualState(roles, profiles, principals, existing, elsewhere)


def _settled(spec: Spec, target: Target, roles: dict[str, RoleState]) -> bool:
    """Both roles carry the digest of this very spec: the last converge to it finished.

    A converge that renames writes that digest last, after the old roles are gone, so a
    run that died half-way is never taken for settled.
    """
    bucket = spec.log_bucket or default_log_bucket(target.region, target.account_id)
    want = records.digest(spec, bucket)
    found = [roles.get(n.lower()) for n in (spec.instance_role_name, spec.automation_role_name)]
    return all(
        r is not None
        and records.ownership(r.tags, spec.name, spec.owner) == "ours"
        and r.tags.get(records.DIGEST_TAG) == want
        for r in found
    )


def read_named(gw: IamGateway, spec: Spec, target: Target, settings: Settings) -> tuple[ActualState, bool]:
    """The names the spec asks for and the facts of its attachments; and whether the set is settled.

    Settled, this is all a converge needs (the no-op costs 9 reads); otherwise :func:`read_path`
    finds what else the set holds.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        named_roles = pool.submit(_roles, gw, [spec.instance_role_name, spec.automation_role_name])
        named_profile = pool.submit(_profiles, gw, [spec.instance_role_name])
    roles, profiles = named_roles.result(), named_profile.result()
    actual = _complete(gw, settings, target, spec.name, roles, profiles, spec.attachments)
    return actual, _settled(spec, target, roles)


def read_path(
    gw: IamGateway, spec: Spec, target: Target, settings: Settings, known: ActualState, skip: Iterable[str] = ()
) -> ActualState:
    """``known`` plus what else the set holds under its path: old roles and profiles of a rename.

    ``skip``: names this request has just created, which the listing may or may not show.
    Returns ``known`` itself when the path holds nothing more.
    """
    path = settings.set_path(spec.name)
    with ThreadPoolExecutor(max_workers=2) as pool:
        in_path = pool.submit(gw.roles_under, path)
        profiles_in_path = pool.submit(gw.profiles_under, path)
    seen = {n.lower() for n in skip}
    more_roles = [n for n, _ in in_path.result() if n.lower() not in {*seen, *known.roles}]
    more_profiles = [n for n, _ in profiles_in_path.result() if n.lower() not in {*seen, *known.profiles}]
    if not more_roles and not more_profiles:
        return known
    roles = _roles(gw, more_roles, dict(known.roles))
    profiles = {**known.profiles, **_profiles(gw, more_profiles)}
    return _complete(gw, settings, target, spec.name, roles, profiles, spec.attachments, known=known)


def read_set(
    gw: IamGateway,
    set_name: str,
    target: Target,
    settings: Settings,
    owner: str,
    deleting: bool = False,
    extra_roles: Iterable[str] = (),
) -> tuple[Spec, ActualState]:
    """Find a set without its body: by its IAM path, else its default names; then its record.

    Returns the spec recorded on the set (what GET checks drift against) and its state;
    ``deleting`` also reads which of its attachments other sets still declare. ``extra_roles``
    (instance, automation) are looked up by name too: a replaced resource's adopted roles.
    """
    path = settings.set_path(set_name)
    roles = _roles(gw, [n for n, _ in gw.roles_under(path)])
    profile_names = [n for n, _ in gw.profiles_under(path)]
    if not roles and not profile_names:
        roles = {
            k: r for k, r in _roles(gw, default_role_names(set_name)).items() if r.tags.get(records.SET_TAG) == set_name
        }
    ours = [r for r in roles.values() if r.tags.get(records.SET_TAG) == set_name]
    record = next(
        (r.tags for r in sorted(ours, key=lambda r: r.tags.get(records.COMPONENT_TAG) != records.INSTANCE)), None
    )
    spec = records.spec_from_record(set_name, record, owner)
    # An adopted role keeps its own path; the record names it.
    extra_roles = list(extra_roles)
    roles = _roles(gw, [spec.instance_role_name, spec.automation_role_name, *extra_roles], roles)
    profiles = _profiles(gw, [*profile_names, spec.instance_role_name, *extra_roles[:1]])
    profiles = {k: p for k, p in profiles.items() if p.tags.get(records.SET_TAG) == set_name}
    roles = {k: r for k, r in roles.items() if r.tags.get(records.SET_TAG) == set_name}
    keep = () if deleting else spec.attachments
    return spec, _complete(gw, settings, target, set_name, roles, profiles, keep, check_policies=False)
