"""Converge, show and delete against moto (in process), counting IAM calls on the wire."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest

from chalicelib import aws
from chalicelib.config import Settings
from chalicelib.errors import Conflict, Forbidden, InvalidSpec, MissingManagedPolicy, OutOfTime, SetNotFound, Throttled
from chalicelib.service import Service
from chalicelib.spec import parse_rest_body
from tests.conftest import ACCOUNT, ALLOW_ALL, CallLog, iam_snapshot
from tests.faults import Crash, CrashAfterWrite, FailCalls, install

FULL = "arn:aws:iam::aws:policy/AWSMarketplaceFullAccess"
READ = "arn:aws:iam::aws:policy/AWSMarketplaceRead-only"
INSTANCE = "demo-InstanceRole"
AUTOMATION = "demo-AutomationRole"


@pytest.fixture
def service(moto_iam: Any) -> Service:
    return Service(Settings(eligible_principal_paths=("/builders/",)))


@pytest.fixture
def builders(moto_iam: Any) -> Any:
    moto_iam.create_user(UserName="alice", Path="/builders/")
    moto_iam.create_group(GroupName="viewers", Path="/builders/")
    moto_iam.create_user(UserName="mallory", Path="/admins/")
    return moto_iam


def spec(body: dict | None = None, name: str = "demo", owner: str = "rest"):
    return parse_rest_body(name, body or {}, owner)


def attach(policy: str = "AWSMarketplaceFullAccess", ptype: str = "user", pname: str = "alice") -> dict:
    return {"policy": policy, "principal_type": ptype, "principal_name": pname}


def test_create_takes_six_writes_and_builds_the_seed(service: Service, moto_iam: Any, iam_calls: CallLog) -> None:
    result = service.converge(spec())
    assert result.created
    assert sorted(iam_calls.writes) == sorted(
        [
            "CreateRole",
            "CreateRole",
            "PutRolePolicy",
            "PutRolePolicy",
            "CreateInstanceProfile",
            "AddRoleToInstanceProfile",
        ]
    )
    role = moto_iam.get_role(RoleName=INSTANCE)["Role"]
    assert role["Path"] == "/mib-prereqs/demo/"
    tags = {t["Key"]: t["Value"] for t in role["Tags"]}
    assert tags["mib-prereqs:set"] == "demo" and tags["mib-prereqs:owner"] == "rest"
    doc = moto_iam.get_role_policy(RoleName=AUTOMATION, PolicyName="AutomationRolePermissionsPolicy")["PolicyDocument"]
    assert {"Action": ["iam:PassRole"], "Resource": [role["Arn"]], "Effect": "Allow"} in doc["Statement"]
    profile = moto_iam.get_instance_profile(InstanceProfileName=INSTANCE)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [INSTANCE]


def test_second_converge_writes_nothing(service: Service, iam_calls: CallLog) -> None:
    s = spec({"tags": {"team": "images"}, "permissions_boundary": "arn:aws:iam::aws:policy/AWSMarketplaceRead-only"})
    service.converge(s)
    iam_calls.clear()
    result = service.converge(s)
    assert not result.created
    assert result.plan.changes == ()
    assert iam_calls.writes == []
    assert iam_calls.reads  # it did look


def test_attachments_are_attached_and_idempotent(service: Service, builders: Any, iam_calls: CallLog) -> None:
    s = spec({"attachments": [attach(), attach("AWSMarketplaceRead-only", "group", "viewers")]})
    service.converge(s)
    assert [p["PolicyArn"] for p in builders.list_attached_user_policies(UserName="alice")["AttachedPolicies"]] == [
        FULL
    ]
    assert [p["PolicyArn"] for p in builders.list_attached_group_policies(GroupName="viewers")["AttachedPolicies"]] == [
        READ
    ]
    assert iam_calls.writes.count("AttachUserPolicy") == 1 and iam_calls.writes.count("AttachGroupPolicy") == 1
    iam_calls.clear()
    service.converge(s)
    assert iam_calls.writes == []


def test_removing_an_attachment_detaches_only_it(service: Service, builders: Any) -> None:
    builders.attach_user_policy(UserName="alice", PolicyArn="arn:aws:iam::aws:policy/AWSMarketplaceRead-only")
    service.converge(spec({"attachments": [attach()]}))
    service.converge(spec())
    attached = [p["PolicyArn"] for p in builders.list_attached_user_policies(UserName="alice")["AttachedPolicies"]]
    assert attached == [READ]  # the hand-made attachment the set never declared stays


def test_attachment_shared_by_two_sets_stays_until_the_last(service: Service, builders: Any) -> None:
    service.converge(spec({"attachments": [attach()]}, name="one"))
    service.converge(spec({"attachments": [attach()]}, name="two"))
    service.delete("one", "rest")
    assert builders.list_attached_user_policies(UserName="alice")["AttachedPolicies"]
    service.converge(spec(name="two"))
    assert builders.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []


def test_missing_managed_policy_is_refused_before_any_write(
    service: Service, builders: Any, iam_calls: CallLog
) -> None:
    with pytest.raises(MissingManagedPolicy, match="AWSMarketplaceImageBuildFullAccess"):
        service.converge(spec({"attachments": [attach("AWSMarketplaceImageBuildFullAccess")]}))
    assert iam_calls.writes == []


def test_ineligible_principal_is_refused_before_any_write(service: Service, builders: Any, iam_calls: CallLog) -> None:
    with pytest.raises(Forbidden, match="user mallory"):
        service.converge(spec({"attachments": [attach(pname="mallory")]}))
    with pytest.raises(InvalidSpec, match="no user named ghost"):
        service.converge(spec({"attachments": [attach(pname="ghost")]}))
    assert iam_calls.writes == []


def test_unowned_role_is_a_conflict_and_untouched(service: Service, moto_iam: Any, iam_calls: CallLog) -> None:
    moto_iam.create_role(RoleName=INSTANCE, AssumeRolePolicyDocument="{}")
    moto_iam.put_role_policy(RoleName=INSTANCE, PolicyName="legacy", PolicyDocument=ALLOW_ALL)
    before = iam_snapshot(moto_iam)
    with pytest.raises(Conflict, match="set adopt"):
        service.converge(spec())
    assert iam_calls.writes == []
    assert iam_snapshot(moto_iam) == before


def test_adopt_takes_over_an_unowned_role(service: Service, moto_iam: Any) -> None:
    moto_iam.create_role(RoleName=INSTANCE, AssumeRolePolicyDocument="{}", Tags=[{"Key": "legacy", "Value": "1"}])
    moto_iam.put_role_policy(RoleName=INSTANCE, PolicyName="legacy", PolicyDocument=ALLOW_ALL)
    result = service.converge(spec({"adopt": True}))
    assert result.plan.instance_role.arn == f"arn:aws:iam::{ACCOUNT}:role/{INSTANCE}"
    assert moto_iam.list_role_policies(RoleName=INSTANCE)["PolicyNames"] == ["InstanceRolePermissionsPolicy"]
    # Adopted roles keep their path; GET and DELETE still find the set through the record.
    assert service.show("demo").plan.changes == ()
    service.delete("demo", "rest")
    assert moto_iam.list_roles()["Roles"] == []


def test_another_owner_cannot_change_or_delete(service: Service, moto_iam: Any, iam_calls: CallLog) -> None:
    service.converge(spec())
    before = iam_snapshot(moto_iam)
    iam_calls.clear()
    with pytest.raises(Conflict):
        service.converge(spec(owner="arn:aws:cloudformation:us-east-1:123456789012:stack/s/1"))
    with pytest.raises(Conflict):
        service.converge(spec({"adopt": True}, owner="other"))
    with pytest.raises(Conflict):
        service.delete("demo", "other")
    assert iam_calls.writes == []
    assert iam_snapshot(moto_iam) == before


DRIFTS = {
    "document": lambda iam: iam.put_role_policy(
        RoleName=INSTANCE, PolicyName="InstanceRolePermissionsPolicy", PolicyDocument=ALLOW_ALL
    ),
    "trust": lambda iam: iam.update_assume_role_policy(
        RoleName=AUTOMATION,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
            }
        ),
    ),
    "tags": lambda iam: iam.tag_role(RoleName=INSTANCE, Tags=[{"Key": "team", "Value": "changed"}]),
    "boundary": lambda iam: iam.put_role_permissions_boundary(RoleName=AUTOMATION, PermissionsBoundary=FULL),
    "profile_membership": lambda iam: iam.remove_role_from_instance_profile(
        InstanceProfileName=INSTANCE, RoleName=INSTANCE
    ),
    "extra_inline_policy": lambda iam: iam.put_role_policy(
        RoleName=AUTOMATION, PolicyName="extra", PolicyDocument=ALLOW_ALL
    ),
    "extra_managed_policy": lambda iam: iam.attach_role_policy(RoleName=INSTANCE, PolicyArn=FULL),
    "attachment": lambda iam: iam.detach_user_policy(UserName="alice", PolicyArn=FULL),
    "missing": lambda iam: _delete_profile(iam),
}


def _delete_profile(iam: Any) -> None:
    iam.remove_role_from_instance_profile(InstanceProfileName=INSTANCE, RoleName=INSTANCE)
    iam.delete_instance_profile(InstanceProfileName=INSTANCE)


@pytest.mark.parametrize("kind", sorted(DRIFTS))
def test_drift_is_reported_then_repaired(kind: str, service: Service, builders: Any) -> None:
    s = spec({"tags": {"team": "images"}, "attachments": [attach()]})
    service.converge(s)
    converged = iam_snapshot(builders)
    DRIFTS[kind](builders)

    shown = service.show("demo").render(with_drift=True)
    assert shown["in_sync"] is False
    assert kind in {d["kind"] for d in shown["drift"]}

    repaired = service.converge(s)
    assert repaired.plan.changes
    assert iam_snapshot(builders) == converged
    assert service.show("demo").render(with_drift=True)["in_sync"] is True


def test_show_in_sync_and_not_found(service: Service) -> None:
    with pytest.raises(SetNotFound):
        service.show("demo")
    service.converge(spec({"log_bucket": "my-logs"}))
    body = service.show("demo").render(with_drift=True)
    assert body["in_sync"] is True and body["drift"] == [] and body["instance_role"]["name"] == INSTANCE


def test_delete_removes_everything_and_only_that(service: Service, builders: Any) -> None:
    builders.create_role(RoleName="unrelated", AssumeRolePolicyDocument="{}")
    builders.attach_user_policy(UserName="mallory", PolicyArn=FULL)
    service.converge(spec(name="keep"))
    empty = iam_snapshot(builders)
    service.converge(spec({"attachments": [attach()]}))
    builders.attach_role_policy(RoleName=INSTANCE, PolicyArn=READ)  # hand-added: must not block the delete
    result = service.delete("demo", "rest")
    assert result.plan.changes
    assert iam_snapshot(builders) == empty
    with pytest.raises(SetNotFound):
        service.delete("demo", "rest")


def test_rename_creates_then_removes_old_roles(service: Service, moto_iam: Any) -> None:
    service.converge(spec())
    service.converge(spec({"instance_role_name": "demo-NextInstance"}))
    names = sorted(r["RoleName"] for r in moto_iam.list_roles()["Roles"])
    assert names == [AUTOMATION, "demo-NextInstance"]
    doc = moto_iam.get_role_policy(RoleName=AUTOMATION, PolicyName="AutomationRolePermissionsPolicy")["PolicyDocument"]
    assert doc["Statement"][2]["Resource"] == ["arn:aws:iam::123456789012:role/mib-prereqs/demo/demo-NextInstance"]
    assert [p["InstanceProfileName"] for p in moto_iam.list_instance_profiles()["InstanceProfiles"]] == [
        "demo-NextInstance"
    ]
    assert service.show("demo").plan.changes == ()


def test_list_sets(service: Service) -> None:
    service.converge(spec(name="b"))
    service.converge(spec(name="a"))
    listed = service.list_sets()
    assert listed["account_id"] == ACCOUNT
    assert [s["name"] for s in listed["sets"]] == ["a", "b"]
    assert listed["sets"][0]["roles"] == ["a-AutomationRole", "a-InstanceRole"]


def test_other_account_is_unreachable_without_its_provisioner_role(service: Service, iam_calls: CallLog) -> None:
    denied = FailCalls("AssumeRole", "AccessDenied", times=100, status=403)
    install(aws.sts_client(), "before-call.sts.AssumeRole", denied)
    with pytest.raises(
        Forbidden,
        match="account_id: target account 111122223333 cannot be reached: cannot assume "
        "arn:aws:iam::111122223333:role/mib-prereqs-provisioner",
    ):
        service.converge(spec({"account_id": "111122223333"}))
    assert denied.seen == 3  # propagation of a new role is retried, within a bound
    assert iam_calls.calls == []
    assert service.converge(spec({"account_id": ACCOUNT})).created  # its own account needs no role


def count_writes(service: Service, body: dict, moto_iam: Any) -> int:
    log = CallLog()
    remove = install(aws.iam_client(), "before-call.iam", log)
    service.converge(spec(body))
    remove()
    return len(log.writes)


@pytest.mark.parametrize("body", [{}, {"attachments": [attach()], "tags": {"a": "b"}}], ids=["plain", "attachments"])
def test_crash_after_every_write_is_finished_by_the_next_run(body: dict, moto_iam: Any, builders: Any) -> None:
    """For each k: crash right after write k, converge again, compare with an undisturbed run."""
    service = Service(Settings(eligible_principal_paths=("/builders/",)))
    total = count_writes(service, body, moto_iam)
    reference = iam_snapshot(moto_iam)
    service.delete("demo", "rest")
    clean = iam_snapshot(moto_iam)
    assert total >= 6
    for k in range(1, total + 1):
        remove = install(aws.iam_client(), "after-call.iam", CrashAfterWrite(k))
        with pytest.raises(Crash):
            service.converge(spec(body))
        remove()
        service.converge(spec(body))
        assert iam_snapshot(moto_iam) == reference, f"after a crash at write {k}"
        # and a crash halfway through the delete is finished by the next delete
        remove = install(aws.iam_client(), "after-call.iam", CrashAfterWrite(min(k, 3)))
        with pytest.raises(Crash):
            service.delete("demo", "rest")
        remove()
        service.delete("demo", "rest")
        assert iam_snapshot(moto_iam) == clean, f"after a delete crash, k={k}"


def test_crash_before_converge_completes_is_visible_as_drift(service: Service, moto_iam: Any) -> None:
    remove = install(aws.iam_client(), "after-call.iam", CrashAfterWrite(3))
    with pytest.raises(Crash):
        service.converge(spec())
    remove()
    body = service.show("demo").render(with_drift=True)
    assert body["in_sync"] is False
    assert {"put_role_policy", "add_role_to_instance_profile"} <= {d["action"] for d in body["drift"]}


def test_lagging_entity_is_retried(service: Service, moto_iam: Any) -> None:
    lag = FailCalls("AddRoleToInstanceProfile", "NoSuchEntity", times=2, status=404)
    install(aws.iam_client(), "before-call.iam", lag)
    service.converge(spec())
    assert lag.seen == 2
    assert service.show("demo").plan.changes == ()


def test_delete_conflict_is_retried(service: Service, moto_iam: Any) -> None:
    service.converge(spec())
    conflict = FailCalls("DeleteRole", "DeleteConflict", times=1, status=409)
    install(aws.iam_client(), "before-call.iam", conflict)
    service.delete("demo", "rest")
    assert conflict.seen == 1 and moto_iam.list_roles()["Roles"] == []


@pytest.mark.parametrize(
    # RemoveRoleFromInstanceProfile is left out: moto 5.2.5 fails with a ValueError where IAM says NoSuchEntity.
    "operation",
    ["DeleteRolePolicy", "DeleteRole", "DeleteInstanceProfile", "DetachUserPolicy"],
)
def test_already_gone_on_delete_is_success(operation: str, service: Service, builders: Any) -> None:
    """Someone else deleted it between our read and our write: IAM answers NoSuchEntity."""
    service.converge(spec({"attachments": [attach()]}))
    seen = []

    def vanish(model: Any, params: dict, **_: Any) -> None:
        if model.name == operation and not seen:
            seen.append(params)
            builders._make_api_call(operation, params)  # a second client does it first

    install(aws.iam_client(), "before-parameter-build.iam", vanish)
    service.delete("demo", "rest")
    assert seen and builders.list_roles()["Roles"] == [] and builders.list_instance_profiles()["InstanceProfiles"] == []


def test_out_of_time_answers_and_the_next_run_finishes(service: Service, moto_iam: Any) -> None:
    lag = FailCalls("AddRoleToInstanceProfile", "NoSuchEntity", times=100, status=404)
    remove = install(aws.iam_client(), "before-call.iam", lag)
    with pytest.raises(OutOfTime, match="repeat the request"):
        service.converge(spec(), budget=0.5)
    remove()
    service.converge(spec())
    assert service.show("demo").plan.changes == ()


def test_throttling_beyond_botocore_retries_is_throttled(service: Service, moto_iam: Any) -> None:
    install(aws.iam_client(), "before-call.iam", FailCalls("GetRole", "Throttling", times=100))
    with pytest.raises(Throttled):
        service.converge(spec())


def test_plan_only_writes_nothing(service: Service, iam_calls: CallLog) -> None:
    result = service.converge(spec(), dry_run=True)
    assert len(result.plan.changes) == 6
    assert iam_calls.writes == []


BOUNDARY = "arn:aws:iam::aws:policy/AWSMarketplaceRead-only"


def test_required_boundary_goes_on_every_created_role(moto_iam: Any, iam_calls: CallLog) -> None:
    bounded = Service(Settings(required_permissions_boundary=BOUNDARY))
    result = bounded.converge(spec())
    assert result.spec.permissions_boundary == BOUNDARY
    for name in (INSTANCE, AUTOMATION):
        assert moto_iam.get_role(RoleName=name)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == BOUNDARY
    iam_calls.clear()
    with pytest.raises(InvalidSpec, match=f"permissions_boundary: must be {BOUNDARY}"):
        bounded.converge(spec({"permissions_boundary": FULL}))
    assert iam_calls.writes == []
    assert bounded.converge(spec({"permissions_boundary": BOUNDARY})).plan.changes == ()


def test_converged_set_costs_nine_reads_and_no_write(service: Service, builders: Any, iam_calls: CallLog) -> None:
    service.converge(spec({"tags": {"team": "images"}}))
    iam_calls.clear()
    assert service.converge(spec({"tags": {"team": "images"}})).plan.changes == ()
    assert iam_calls.writes == []
    per_role = ["GetRole", "ListRolePolicies", "GetRolePolicy", "ListAttachedRolePolicies"]
    assert sorted(iam_calls.reads) == sorted(per_role * 2 + ["GetInstanceProfile"])


def test_a_set_that_is_not_settled_is_searched_by_its_path(service: Service, moto_iam: Any, iam_calls: CallLog) -> None:
    service.converge(spec())
    # A rename that died before its last write: the old role is still there and no digest says "settled".
    remove = install(aws.iam_client(), "after-call.iam", CrashAfterWrite(3))
    with pytest.raises(Crash):
        service.converge(spec({"instance_role_name": "demo-NextInstance"}))
    remove()
    iam_calls.clear()
    service.converge(spec({"instance_role_name": "demo-NextInstance"}))
    assert "ListRoles" in iam_calls.reads and "DeleteRole" in iam_calls.writes
    assert sorted(r["RoleName"] for r in moto_iam.list_roles()["Roles"]) == [AUTOMATION, "demo-NextInstance"]


class Waves:
    """A before-call hook that holds every call until all calls of its wave are in flight.

    Each wave is a list of operation names. A call that is not expected in the current wave, or
    a wave whose calls never meet (they were made one after another), fails the request.
    """

    def __init__(self, *waves: list[str]) -> None:
        self.left = [Counter(w) for w in waves]
        self.barriers = [threading.Barrier(len(w), timeout=10) for w in waves]
        self.current = 0
        self._lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        with self._lock:
            i = self.current
            assert i < len(self.left) and self.left[i][model.name] > 0, f"{model.name} is not expected in wave {i + 1}"
            self.left[i][model.name] -= 1
            if not +self.left[i]:
                self.current += 1
        self.barriers[i].wait()


def test_fresh_create_is_four_waves_of_parallel_calls(service: Service) -> None:
    waves = Waves(
        ["GetRole", "GetRole", "GetInstanceProfile"],
        ["CreateRole", "ListRoles", "ListInstanceProfiles"],  # the claim goes out with the search
        ["CreateRole", "CreateInstanceProfile"],
        ["PutRolePolicy", "PutRolePolicy", "AddRoleToInstanceProfile"],
    )
    remove = install(aws.iam_client(), "before-call.iam", waves)
    try:
        service.converge(spec())
    finally:
        remove()
    assert waves.current == 4
    assert service.show("demo").plan.changes == ()


def test_claim_is_undone_when_the_path_holds_another_owners_set(
    service: Service, moto_iam: Any, iam_calls: CallLog
) -> None:
    names = {"instance_role_name": "demo-TheirInstance", "automation_role_name": "demo-TheirAutomation"}
    service.converge(spec(names, owner="them"))
    before = iam_snapshot(moto_iam)
    iam_calls.clear()
    with pytest.raises(Conflict, match="set demo is owned by 'them'"):
        service.converge(spec())
    assert iam_calls.writes == ["CreateRole", "DeleteRole"]  # the claimed role, bare, and nothing else
    assert iam_snapshot(moto_iam) == before


def test_claim_lost_to_a_concurrent_request_is_a_conflict(service: Service, moto_iam: Any) -> None:
    """Another request creates the instance role between this one's reads and its claim."""

    fired: list[bool] = []

    def sneak(model: Any, **_: Any) -> None:
        if model.name == "CreateRole" and not fired:
            fired.append(True)
            Service(Settings()).converge(spec(owner="them"))

    remove = install(aws.iam_client(), "before-call.iam", sneak)
    try:
        with pytest.raises(Conflict, match="created by a concurrent request"):
            service.converge(spec())
    finally:
        remove()
    assert service.show("demo", owner="them").plan.changes == ()  # the winner's set is whole


def test_renaming_every_name_goes_through_the_claim_and_prunes_the_old_set(service: Service, moto_iam: Any) -> None:
    service.converge(spec({"attachments": []}))
    renamed = {"instance_role_name": "demo-NewInstance", "automation_role_name": "demo-NewAutomation"}
    result = service.converge(spec(renamed))
    assert not result.created
    assert sorted(r["RoleName"] for r in moto_iam.list_roles()["Roles"]) == ["demo-NewAutomation", "demo-NewInstance"]
    assert [p["InstanceProfileName"] for p in moto_iam.list_instance_profiles()["InstanceProfiles"]] == [
        "demo-NewInstance"
    ]
    assert service.converge(spec(renamed)).plan.changes == ()


def test_fresh_create_reads_nothing_of_other_sets(service: Service, iam_calls: CallLog) -> None:
    service.converge(spec(name="first"))
    iam_calls.clear()
    service.converge(spec())
    reads = ["GetRole", "GetRole", "GetInstanceProfile", "ListRoles", "ListInstanceProfiles"]
    assert sorted(iam_calls.reads) == sorted(reads)
    assert len(iam_calls.writes) == 6


def test_attachment_facts_are_read_together(service: Service, builders: Any) -> None:
    """A user, a group and two managed policies: four independent reads, all in flight at once."""
    meet = threading.Barrier(4, timeout=10)

    def hold(model: Any, **_: Any) -> None:
        if model.name in ("GetUser", "GetGroup", "GetPolicy"):
            meet.wait()  # a read made after another answered never meets the other three

    body = {"attachments": [attach(), attach("AWSMarketplaceRead-only", "group", "viewers")]}
    remove = install(aws.iam_client(), "before-call.iam", hold)
    try:
        service.converge(spec(body))
    finally:
        remove()
    assert service.show("demo").plan.changes == ()


def test_claim_that_cannot_be_released_is_logged_and_the_conflict_stands(
    service: Service, moto_iam: Any, captured_logs: Any
) -> None:
    service.converge(spec({"instance_role_name": "demo-TheirInstance"}, owner="them"))
    moto_iam.delete_role_policy(RoleName=AUTOMATION, PolicyName="AutomationRolePermissionsPolicy")
    moto_iam.delete_role(RoleName=AUTOMATION)  # none of the default names is left: the claim is sent
    remove = install(aws.iam_client(), "before-call.iam", FailCalls("DeleteRole", "ServiceFailure", 9, 500))
    try:
        with pytest.raises(Conflict, match="owned by 'them'"):
            service.converge(spec())
    finally:
        remove()
    logged = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    left = [e for e in logged if e["message"] == "claimed role left behind: delete it by hand"]
    assert [e["resource"] for e in left] == [f"role/{INSTANCE}"]
    assert moto_iam.get_role(RoleName=INSTANCE)["Role"]["Tags"]  # still there, as the log says


def test_search_failing_after_the_claim_is_finished_by_the_next_run(service: Service, moto_iam: Any) -> None:
    remove = install(aws.iam_client(), "before-call.iam", FailCalls("ListRoles", "Throttling"))
    try:
        with pytest.raises(Throttled):
            service.converge(spec())
    finally:
        remove()
    assert moto_iam.get_role(RoleName=INSTANCE)  # the claim went out alongside the failed search
    assert service.converge(spec()).plan.changes  # the next run finishes it ...
    assert service.show("demo").plan.changes == ()  # ... whole
