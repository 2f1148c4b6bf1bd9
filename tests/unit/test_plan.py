"""The plan is pure: (spec, actual) in, ordered changes out. No AWS here."""

from __future__ import annotations

import dataclasses

import pytest

from chalicelib import records
from chalicelib.config import Settings
from chalicelib.errors import Conflict, Forbidden, InvalidSpec, MissingManagedPolicy
from chalicelib.plan import Phase, plan_converge, plan_delete, preconditions
from chalicelib.policies import (
    AUTOMATION_POLICY_NAME,
    INSTANCE_POLICY_NAME,
    automation_role_policy,
    default_log_bucket,
    instance_role_policy,
    managed_policy_arn,
    trust_policy,
)
from chalicelib.spec import Attachment, parse_rest_body
from chalicelib.state import ActualState, PrincipalState, ProfileState, RoleState, Target

TARGET = Target("123456789012", "aws", "eu-west-1")
SETTINGS = Settings(eligible_principal_paths=("/builders/",))
FULL = managed_policy_arn("aws", "AWSMarketplaceFullAccess")
ALICE = Attachment("AWSMarketplaceFullAccess", "user", "alice")


def spec(body: dict | None = None, name: str = "demo", owner: str = "rest"):
    return parse_rest_body(name, body or {}, owner)


def role(name: str, tags: dict, policy_name: str, policy: dict, path: str = "/mib-prereqs/demo/") -> RoleState:
    return RoleState(
        name=name,
        arn=TARGET.arn("role", path, name),
        path=path,
        trust=trust_policy(),
        tags=tags,
        boundary=None,
        inline={policy_name: policy},
        managed=(),
    )


def converged(s, principals: dict | None = None) -> ActualState:
    """The actual state a successful converge of ``s`` leaves behind."""
    bucket = s.log_bucket or default_log_bucket(TARGET.region, TARGET.account_id)
    path = SETTINGS.set_path(s.name)
    inst = role(
        s.instance_role_name,
        records.role_tags(s, records.INSTANCE, bucket),
        INSTANCE_POLICY_NAME,
        instance_role_policy("aws", bucket),
        path,
    )
    auto = role(
        s.automation_role_name,
        records.role_tags(s, records.AUTOMATION, bucket),
        AUTOMATION_POLICY_NAME,
        automation_role_policy(inst.arn),
        path,
    )
    inst = dataclasses.replace(inst, boundary=s.permissions_boundary)
    auto = dataclasses.replace(auto, boundary=s.permissions_boundary)
    prof = ProfileState(
        s.instance_role_name,
        TARGET.arn("instance-profile", path, s.instance_role_name),
        path,
        (s.instance_role_name,),
        records.ownership_tags(s, records.PROFILE),
    )
    return ActualState(
        roles={inst.name.lower(): inst, auto.name.lower(): auto},
        profiles={prof.name.lower(): prof},
        principals=principals or {},
        existing_policies=frozenset({FULL}),
    )


def actions(plan) -> list[tuple[str, str]]:
    return [(c.action, c.resource) for c in plan.changes]


def with_role(actual: ActualState, name: str, **changes) -> ActualState:
    r = actual.role(name)
    roles = dict(actual.roles)
    roles[name.lower()] = dataclasses.replace(r, **changes)
    return dataclasses.replace(actual, roles=roles)


def test_fresh_set_is_six_writes_in_dependency_order() -> None:
    plan = plan_converge(spec(), TARGET, SETTINGS, ActualState())
    assert actions(plan) == [
        ("create_role", "role/demo-InstanceRole"),
        ("create_role", "role/demo-AutomationRole"),
        ("create_instance_profile", "instance-profile/demo-InstanceRole"),
        ("put_role_policy", "role/demo-InstanceRole/inline/InstanceRolePermissionsPolicy"),
        ("put_role_policy", "role/demo-AutomationRole/inline/AutomationRolePermissionsPolicy"),
        ("add_role_to_instance_profile", "instance-profile/demo-InstanceRole/role/demo-InstanceRole"),
    ]
    # Three rounds of writes: the instance role alone (the set's lock), then two in parallel, then three.
    assert [c.phase for c in plan.changes] == [Phase.LOCK, Phase.CREATE, Phase.CREATE] + [Phase.CONFIGURE] * 3
    create = plan.changes[0].params
    assert create["Path"] == "/mib-prereqs/demo/"
    assert {t["Key"] for t in create["Tags"]} >= {records.SET_TAG, records.OWNER_TAG, records.DIGEST_TAG}
    assert "PermissionsBoundary" not in create
    assert plan.instance_role.arn == "arn:aws:iam::123456789012:role/mib-prereqs/demo/demo-InstanceRole"


def test_automation_policy_passes_the_instance_role_arn() -> None:
    plan = plan_converge(spec(), TARGET, SETTINGS, ActualState())
    put = next(c for c in plan.changes if c.params.get("PolicyName") == AUTOMATION_POLICY_NAME)
    assert put.params["PolicyDocument"] == automation_role_policy(plan.instance_role.arn)


def test_default_log_bucket_uses_target_region() -> None:
    plan = plan_converge(spec(), TARGET, SETTINGS, ActualState())
    put = next(c for c in plan.changes if c.params.get("PolicyName") == INSTANCE_POLICY_NAME)
    assert "arn:aws:s3:::ssmlogbucket-eu-west-1-123456789012/*" in str(put.params["PolicyDocument"])


def test_converged_set_plans_nothing() -> None:
    s = spec({"tags": {"team": "x"}, "permissions_boundary": "arn:aws:iam::aws:policy/PowerUserAccess"})
    assert plan_converge(s, TARGET, SETTINGS, converged(s)).changes == ()


def test_plan_is_pure() -> None:
    s = spec()
    actual = converged(s)
    before = repr(actual)
    assert plan_converge(s, TARGET, SETTINGS, actual) == plan_converge(s, TARGET, SETTINGS, actual)
    assert repr(actual) == before


@pytest.mark.parametrize(
    ("mutation", "expected", "reason"),
    [
        ({"trust": {"Version": "2012-10-17", "Statement": []}}, "update_assume_role_policy", "trust"),
        ({"inline": {INSTANCE_POLICY_NAME: {"Version": "2012-10-17", "Statement": []}}}, "put_role_policy", "document"),
        ({"inline": {}}, "put_role_policy", "document"),
        ({"boundary": "arn:aws:iam::aws:policy/X"}, "delete_role_permissions_boundary", "boundary"),
        ({"managed": ("arn:aws:iam::aws:policy/AdministratorAccess",)}, "detach_role_policy", "extra_managed_policy"),
    ],
)
def test_each_kind_of_role_drift(mutation: dict, expected: str, reason: str) -> None:
    s = spec()
    actual = with_role(converged(s), "demo-InstanceRole", **mutation)
    plan = plan_converge(s, TARGET, SETTINGS, actual)
    assert [(c.action, c.reason) for c in plan.changes] == [(expected, reason)]


def test_hand_added_inline_policy_is_removed() -> None:
    s = spec()
    r = converged(s).role("demo-AutomationRole")
    actual = with_role(converged(s), "demo-AutomationRole", inline={**r.inline, "extra": {"Statement": []}})
    plan = plan_converge(s, TARGET, SETTINGS, actual)
    assert actions(plan) == [("delete_role_policy", "role/demo-AutomationRole/inline/extra")]
    assert plan.changes[0].phase == Phase.PRUNE


def test_tag_drift_changed_added_and_removed() -> None:
    s = spec({"tags": {"team": "x"}})
    r = converged(s).role("demo-InstanceRole")
    tags = {**r.tags, "team": "y", "extra": "z"}
    plan = plan_converge(s, TARGET, SETTINGS, with_role(converged(s), "demo-InstanceRole", tags=tags))
    assert [(c.action, c.reason) for c in plan.changes] == [("tag_role", "tags"), ("untag_role", "tags")]
    assert plan.changes[0].params["Tags"] == [{"Key": "team", "Value": "x"}]
    assert plan.changes[1].params["TagKeys"] == ["extra"]


def test_aws_reserved_tags_are_never_removed() -> None:
    s = spec()
    r = converged(s).role("demo-InstanceRole")
    actual = with_role(converged(s), "demo-InstanceRole", tags={**r.tags, "aws:cloudformation:stack-name": "x"})
    assert plan_converge(s, TARGET, SETTINGS, actual).changes == ()


def test_boundary_added() -> None:
    s = spec({"permissions_boundary": "arn:aws:iam::aws:policy/PowerUserAccess"})
    actual = converged(s)
    actual = with_role(actual, "demo-InstanceRole", boundary=None)
    plan = plan_converge(s, TARGET, SETTINGS, actual)
    assert [(c.action, c.params.get("PermissionsBoundary")) for c in plan.changes] == [
        ("put_role_permissions_boundary", "arn:aws:iam::aws:policy/PowerUserAccess")
    ]


def test_profile_membership_drift() -> None:
    s = spec()
    actual = converged(s)
    prof = dataclasses.replace(actual.profile("demo-InstanceRole"), roles=("intruder",))
    actual = dataclasses.replace(actual, profiles={"demo-instancerole": prof})
    plan = plan_converge(s, TARGET, SETTINGS, actual)
    assert actions(plan) == [
        ("remove_role_from_instance_profile", "instance-profile/demo-InstanceRole/role/intruder"),
        ("add_role_to_instance_profile", "instance-profile/demo-InstanceRole/role/demo-InstanceRole"),
    ]


def test_missing_profile_is_recreated() -> None:
    s = spec()
    actual = dataclasses.replace(converged(s), profiles={})
    assert [c.action for c in plan_converge(s, TARGET, SETTINGS, actual).changes] == [
        "create_instance_profile",
        "add_role_to_instance_profile",
    ]


def alice(path: str = "/builders/", attached: frozenset = frozenset()) -> dict:
    return {("user", "alice"): PrincipalState("user", "alice", "arn:aws:iam::1:user/alice", path, attached)}


def test_attachment_is_recorded_before_it_is_attached() -> None:
    s = spec({"attachments": [dataclasses.asdict(ALICE)]})
    plain = spec()
    actual = dataclasses.replace(converged(plain), principals=alice(), existing_policies=frozenset({FULL}))
    plan = plan_converge(s, TARGET, SETTINGS, actual)
    kinds = [c.action for c in plan.changes]
    assert kinds == ["tag_role", "tag_role", "attach_user_policy"]
    assert plan.changes[-1].params == {"UserName": "alice", "PolicyArn": FULL}


def test_attached_attachment_is_left_alone() -> None:
    s = spec({"attachments": [dataclasses.asdict(ALICE)]})
    actual = converged(s, alice(attached=frozenset({FULL})))
    assert plan_converge(s, TARGET, SETTINGS, actual).changes == ()


def test_released_attachment_is_detached_then_forgotten() -> None:
    old = spec({"attachments": [dataclasses.asdict(ALICE)]})
    actual = converged(old, alice(attached=frozenset({FULL})))
    plan = plan_converge(spec(), TARGET, SETTINGS, actual)
    kinds = [c.action for c in plan.changes]
    assert kinds.index("detach_user_policy") < kinds.index("untag_role")


def test_attachment_declared_by_another_set_stays() -> None:
    old = spec({"attachments": [dataclasses.asdict(ALICE)]})
    actual = dataclasses.replace(
        converged(old, alice(attached=frozenset({FULL}))), declared_elsewhere=frozenset({ALICE})
    )
    plan = plan_converge(spec(), TARGET, SETTINGS, actual)
    assert "detach_user_policy" not in [c.action for c in plan.changes]
    deleted = plan_delete("demo", "rest", TARGET, actual)
    assert "detach_user_policy" not in [c.action for c in deleted.changes]


def test_rename_is_make_before_break() -> None:
    old = spec()
    new = spec({"instance_role_name": "demo-NewInstance"})
    plan = plan_converge(new, TARGET, SETTINGS, converged(old))
    kinds = actions(plan)
    assert kinds[0] == ("create_role", "role/demo-NewInstance")
    assert ("put_role_policy", "role/demo-AutomationRole/inline/AutomationRolePermissionsPolicy") in kinds
    assert kinds[-5:] == [
        ("delete_role_policy", "role/demo-InstanceRole/inline/InstanceRolePermissionsPolicy"),
        ("delete_role", "role/demo-InstanceRole"),
        ("delete_instance_profile", "instance-profile/demo-InstanceRole"),
        # The digest that marks the set as settled is written only once the old role is gone.
        ("tag_role", "role/demo-NewInstance"),
        ("tag_role", "role/demo-AutomationRole"),
    ]
    digest_writes = [c for c in plan.changes if records.DIGEST_TAG in str(c.params.get("Tags"))]
    assert [c.phase for c in digest_writes] == [Phase.SEAL, Phase.SEAL]
    assert ("delete_role", "role/demo-AutomationRole") not in kinds
    create_at = kinds.index(("create_role", "role/demo-NewInstance"))
    assert create_at < kinds.index(
        ("remove_role_from_instance_profile", "instance-profile/demo-InstanceRole/role/demo-InstanceRole")
    )


def test_delete_in_iam_order() -> None:
    s = spec({"attachments": [dataclasses.asdict(ALICE)]})
    actual = converged(s, alice(attached=frozenset({FULL})))
    actual = with_role(actual, "demo-InstanceRole", managed=("arn:aws:iam::aws:policy/X",))
    plan = plan_delete("demo", "rest", TARGET, actual)
    phases = [c.phase for c in plan.changes]
    assert phases == sorted(phases)
    kinds = [c.action for c in plan.changes]
    assert kinds[0] == "detach_user_policy"
    assert kinds.index("remove_role_from_instance_profile") < kinds.index("detach_role_policy")
    assert kinds.index("delete_role_policy") < kinds.index("delete_role") < kinds.index("delete_instance_profile")
    assert kinds.count("delete_role") == 2 and kinds[-1] == "delete_instance_profile"


def test_delete_by_another_owner_conflicts() -> None:
    actual = converged(spec(owner="stack-a"))
    with pytest.raises(Conflict, match="owned by 'stack-a'"):
        plan_delete("demo", "rest", TARGET, actual)


def test_delete_leaves_roles_of_other_sets() -> None:
    mine, theirs = converged(spec()), converged(spec(name="other"))
    merged = ActualState(roles={**mine.roles, **theirs.roles}, profiles={**mine.profiles, **theirs.profiles})
    plan = plan_delete("demo", "rest", TARGET, merged)
    assert all("other-" not in c.resource for c in plan.changes)


# ---- preconditions ----------------------------------------------------------


def foreign(tags: dict) -> ActualState:
    r = role("demo-InstanceRole", tags, "x", {}, path="/")
    return ActualState(roles={"demo-instancerole": r})


def test_unowned_role_conflicts_without_adopt() -> None:
    with pytest.raises(Conflict, match="role demo-InstanceRole exists and is not managed by this service; set adopt"):
        preconditions(spec(), TARGET, SETTINGS, foreign({}))


def test_unowned_role_adopted_on_request() -> None:
    s = spec({"adopt": True})
    actual = foreign({"team": "legacy"})
    preconditions(s, TARGET, SETTINGS, actual)
    plan = plan_converge(s, TARGET, SETTINGS, actual)
    kinds = [c.action for c in plan.changes]
    assert "create_role" in kinds  # the automation role
    assert ("tag_role", "role/demo-InstanceRole") in actions(plan)
    assert ("delete_role_policy", "role/demo-InstanceRole/inline/x") in actions(plan)
    assert plan.instance_role.arn == "arn:aws:iam::123456789012:role/demo-InstanceRole"  # its own path stays


@pytest.mark.parametrize("adopt", [False, True])
def test_role_of_another_owner_conflicts_even_with_adopt(adopt: bool) -> None:
    actual = foreign({records.SET_TAG: "demo", records.OWNER_TAG: "arn:aws:cloudformation:stack/x"})
    with pytest.raises(Conflict, match="belongs to set 'demo' of owner"):
        preconditions(spec({"adopt": adopt}), TARGET, SETTINGS, actual)


def test_role_of_another_set_conflicts() -> None:
    actual = foreign({records.SET_TAG: "other", records.OWNER_TAG: "rest"})
    with pytest.raises(Conflict, match="belongs to set 'other'"):
        preconditions(spec(), TARGET, SETTINGS, actual)


def test_set_owned_by_another_owner_conflicts() -> None:
    actual = converged(spec(owner="stack-a"))
    with pytest.raises(Conflict):
        preconditions(spec({"instance_role_name": "demo-OtherInstance"}), TARGET, SETTINGS, actual)


def test_missing_managed_policy_is_422_naming_it() -> None:
    s = spec({"attachments": [dataclasses.asdict(Attachment("AWSMarketplaceImageBuildFullAccess", "user", "alice"))]})
    actual = ActualState(principals=alice(), existing_policies=frozenset({FULL}))
    with pytest.raises(MissingManagedPolicy, match="AWSMarketplaceImageBuildFullAccess does not exist in account"):
        preconditions(s, TARGET, SETTINGS, actual)


def test_unknown_principal_is_400() -> None:
    s = spec({"attachments": [dataclasses.asdict(ALICE)]})
    actual = ActualState(
        principals={("user", "alice"): PrincipalState("user", "alice", None, None, frozenset())},
        existing_policies=frozenset({FULL}),
    )
    with pytest.raises(InvalidSpec, match=r"attachments\[0\].principal_name: no user named alice"):
        preconditions(s, TARGET, SETTINGS, actual)


def test_ineligible_principal_is_403_explaining_the_setting() -> None:
    s = spec({"attachments": [dataclasses.asdict(ALICE)]})
    actual = ActualState(principals=alice(path="/admins/"), existing_policies=frozenset({FULL}))
    with pytest.raises(Forbidden, match=r"user alice \(path /admins/\).*ELIGIBLE_PRINCIPAL_PATHS is /builders/"):
        preconditions(s, TARGET, SETTINGS, actual)


def test_nobody_is_eligible_when_unset() -> None:
    s = spec({"attachments": [dataclasses.asdict(ALICE)]})
    actual = ActualState(principals=alice(), existing_policies=frozenset({FULL}))
    with pytest.raises(Forbidden, match=r"unset \(nobody\)"):
        preconditions(s, TARGET, Settings(), actual)


def test_roles_of_sets_never_receive_attachments() -> None:
    s = spec({"attachments": [{"policy": "AWSMarketplaceFullAccess", "principal_type": "role", "principal_name": "x"}]})
    principals = {("role", "x"): PrincipalState("role", "x", "arn", "/mib-prereqs/other/", frozenset())}
    actual = ActualState(principals=principals, existing_policies=frozenset({FULL}))
    with pytest.raises(Forbidden, match="role of a prerequisite set"):
        preconditions(s, TARGET, Settings(eligible_principal_paths=("/",)), actual)
