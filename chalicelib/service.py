"""The core operations both front ends call: converge, plan, show, delete, list.

Each one is read, plan, (apply), render. Nothing here knows HTTP or CloudFormation.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib import aws
from chalicelib.config import Settings
from chalicelib.errors import InvalidSpec, PrereqError, SetNotFound
from chalicelib.iam import Deadline, IamGateway
from chalicelib.log import logger
from chalicelib.plan import Change, Phase, Plan, plan_converge, plan_delete, preconditions, release_claim, set_resources
from chalicelib.policies import managed_policy_arn
from chalicelib.read import read_named, read_path, read_set
from chalicelib.spec import Spec, validate_account_id, validate_set_name
from chalicelib.state import ActualState, Target

REST_OWNER = "rest"


@dataclass(frozen=True)
class Result:
    spec: Spec
    target: Target
    plan: Plan
    created: bool = False  # no resource of the set existed before

    def render(self, with_drift: bool = False) -> dict[str, Any]:
        plan = self.plan

        def named(n: Any) -> dict[str, str] | None:
            return {"name": n.name, "arn": n.arn} if n else None

        body: dict[str, Any] = {
            "name": self.spec.name,
            "account_id": self.target.account_id,
            "owner": self.spec.owner,
            "instance_role": named(plan.instance_role),
            "instance_profile": named(plan.instance_profile),
            "automation_role": named(plan.automation_role),
            "attachments": [
                {
                    "policy": a.policy,
                    "policy_arn": managed_policy_arn(self.target.partition, a.policy),
                    "principal_type": a.principal_type,
                    "principal_name": a.principal_name,
                }
                for a in plan.attachments
            ],
            "changes": [c.render() for c in plan.changes],
            "warnings": list(plan.warnings),
        }
        if with_drift:
            body["in_sync"] = not plan.changes
            body["drift"] = [{"kind": c.reason, **c.render()} for c in plan.changes]
        return body


class Service:
    """The core operations, for one caller (a REST caller's ARN or a stack's id)."""

    def __init__(self, settings: Settings, caller: str = "mib-prereqs") -> None:
        self.settings = settings
        self.caller = caller
        self._gateways: list[IamGateway] = []

    @property
    def retries(self) -> int:
        """IAM eventual-consistency retries so far, for the Retries metric."""
        return sum(gw.retries for gw in self._gateways)

    def _open(self, account_id: str | None, budget: float | None) -> tuple[Target, IamGateway]:
        deadline = Deadline(self.settings.request_budget_seconds if budget is None else budget)
        own = aws.own_target()
        if account_id is None or account_id == own.account_id:
            target, client = own, aws.iam_client()
        else:
            client = aws.member_iam_client(account_id, own.partition, self.settings.provisioner_role_name, self.caller)
            target = Target(account_id, own.partition, own.region)
        self._gateways.append(IamGateway(client, deadline))
        return target, self._gateways[-1]

    def converge(
        self, spec: Spec, dry_run: bool = False, budget: float | None = None, keep_obsolete: bool = False
    ) -> Result:
        """Bring the set to ``spec`` (or, with ``dry_run``, say what that would change)."""
        spec = self._bounded(spec)
        target, gw = self._open(spec.account_id, budget)
        actual, settled = read_named(gw, spec, target, self.settings)
        preconditions(spec, target, self.settings, actual)  # before any write
        if not settled:
            if actual.empty and not dry_run:
                return self._create(gw, spec, target, actual, keep_obsolete)
            actual = read_path(gw, spec, target, self.settings, actual)
            preconditions(spec, target, self.settings, actual)
        plan = plan_converge(spec, target, self.settings, actual, keep_obsolete=keep_obsolete)
        if not dry_run:
            apply(gw, plan.changes, target.account_id)
        return Result(spec, target, plan, created=not any(set_resources(spec.name, actual)))

    def _create(self, gw: IamGateway, spec: Spec, target: Target, named: ActualState, keep_obsolete: bool) -> Result:
        """None of the names exists: claim the instance role while the set's path is searched.

        Creating the instance role is the lock (IAM creates a name once); sending it alongside
        the search saves a round trip. Should the search find the set owned by someone else,
        the claimed role, still bare, is deleted again before the conflict is raised.
        """
        plan = plan_converge(spec, target, self.settings, named, keep_obsolete=keep_obsolete)
        claim = next(c for c in plan.changes if c.phase is Phase.LOCK)
        with ThreadPoolExecutor(max_workers=2) as pool:
            claimed = pool.submit(_execute, gw, claim, target.account_id)
            searched = pool.submit(read_path, gw, spec, target, self.settings, named, (spec.instance_role_name,))
        claimed.result()
        actual = searched.result()
        if actual is not named:  # the set has more: a rename, or someone else's set under other names
            try:
                preconditions(spec, target, self.settings, actual)
            except PrereqError:
                _release(gw, claim, target.account_id)
                raise
            plan = plan_converge(spec, target, self.settings, actual, keep_obsolete=keep_obsolete)
        apply(gw, [c for c in plan.changes if c.phase is not Phase.LOCK], target.account_id)
        return Result(spec, target, plan, created=not any(set_resources(spec.name, actual)))

    def _bounded(self, spec: Spec) -> Spec:
        """Put the deployment's required permissions boundary on the spec, or refuse another one."""
        required = self.settings.required_permissions_boundary
        if required is None or spec.permissions_boundary == required:
            return spec
        if spec.permissions_boundary is not None:
            raise InvalidSpec([f"permissions_boundary: must be {required}, the boundary this deployment requires"])
        return dataclasses.replace(spec, permissions_boundary=required)

    def show(self, name: str, account_id: str | None = None, owner: str = REST_OWNER) -> Result:
        """The set as IAM holds it, and its drift from the spec it was last converged to."""
        validate_set_name(name)
        validate_account_id(account_id)
        target, gw = self._open(account_id, None)
        spec, actual = read_set(gw, name, target, self.settings, owner)
        if actual.empty:
            raise SetNotFound(f"no prerequisite set named {name} in account {target.account_id}")
        return Result(spec, target, plan_converge(spec, target, self.settings, actual))

    def delete(
        self,
        name: str,
        owner: str,
        account_id: str | None = None,
        budget: float | None = None,
        only: tuple[str, str] | None = None,
    ) -> Result:
        """Remove the set (or, with ``only``, the roles of a replaced resource it no longer uses)."""
        validate_set_name(name)
        validate_account_id(account_id)
        target, gw = self._open(account_id, budget)
        spec, actual = read_set(gw, name, target, self.settings, owner, deleting=True, extra_roles=only or ())
        if actual.empty:
            raise SetNotFound(f"no prerequisite set named {name} in account {target.account_id}")
        plan = plan_delete(name, owner, target, actual, only=only)
        apply(gw, plan.changes, target.account_id)
        return Result(spec, target, plan)

    def list_sets(self, account_id: str | None = None) -> dict[str, Any]:
        validate_account_id(account_id)
        target, gw = self._open(account_id, None)
        prefix = self.settings.path_prefix
        sets: dict[str, dict[str, list[str]]] = {}
        for kind, items in (
            ("roles", gw.roles_under(prefix)),
            ("instance_profiles", gw.profiles_under(prefix)),
        ):
            for name, path in items:
                set_name = path[len(prefix) :].split("/", 1)[0]
                if set_name:
                    sets.setdefault(set_name, {"roles": [], "instance_profiles": []})[kind].append(name)
        return {
            "account_id": target.account_id,
            "sets": [{"name": n, **{k: sorted(v) for k, v in sets[n].items()}} for n in sorted(sets)],
        }


# Independent IAM calls in flight at once: a few, to stay clear of IAM's throttling.
PARALLEL_CALLS = 4


def _entity(change: Change) -> str:
    """The IAM entity a change writes to (``role/x``, ``instance-profile/x``): its changes keep their order."""
    return "/".join(change.resource.split("/", 2)[:2])


def _execute(gw: IamGateway, change: Change, account_id: str) -> None:
    gw.execute(change)
    logger.info("applied", extra={"account": account_id, "action": change.action, "resource": change.resource})


def _release(gw: IamGateway, claim: Change, account_id: str) -> None:
    """Delete a claimed role; should that fail, say so and let the request's own error stand."""
    try:
        _execute(gw, release_claim(claim), account_id)
    except Exception as err:
        logger.error(
            "claimed role left behind: delete it by hand",
            extra={"account": account_id, "resource": claim.resource, "error": type(err).__name__},
        )


def apply(gw: IamGateway, changes: Iterable[Change], account_id: str) -> None:
    """Execute planned changes phase by phase; within a phase, different entities in parallel.

    A crash at any point is finished by the next converge.
    """

    def run(group: list[Change]) -> None:
        for change in group:
            _execute(gw, change, account_id)

    for _, in_phase in itertools.groupby(changes, key=lambda c: c.phase):
        by_entity: dict[str, list[Change]] = {}
        for change in in_phase:
            by_entity.setdefault(_entity(change), []).append(change)
        groups = list(by_entity.values())
        if len(groups) == 1:
            run(groups[0])
            continue
        with ThreadPoolExecutor(max_workers=min(PARALLEL_CALLS, len(groups))) as pool:
            futures = [pool.submit(run, g) for g in groups]
        for future in futures:
            future.result()  # every group has ended: raise the first error, nothing left running
