"""Templates: cfn-lint clean, and `chalice package` (offline) merged with the service template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from tests.cfn import ATTRIBUTES

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TEMPLATES = ROOT / "templates"
# The service template is a fragment merged into Chalice's output; it is linted there.
STANDALONE = sorted(p for p in TEMPLATES.glob("*.yaml") if p.name != "service.yaml")


def cfn_lint(*paths: Path) -> None:
    out = subprocess.run([str(BIN / "cfn-lint"), *map(str, paths)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def load(path: Path) -> Any:
    template, errors = decode(str(path))
    assert not errors, errors
    return template


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / "out"
    subprocess.run(["make", "-s", "package", f"OUT={out}"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    return out


def test_standalone_templates_lint_clean() -> None:
    assert STANDALONE
    cfn_lint(*STANDALONE)


def test_packaged_template_lints_clean(packaged: Path) -> None:
    cfn_lint(packaged / "sam.yaml")


def test_packaged_functions_and_outputs(packaged: Path) -> None:
    t = load(packaged / "sam.yaml")
    cr = t["Resources"]["CustomResource"]["Properties"]
    assert cr["Handler"] == "app.custom_resource"
    assert cr["Timeout"] == 300  # the core's retries fit well inside it
    assert cr["Environment"]["Variables"]["ELIGIBLE_PRINCIPAL_PATHS"] == {"Ref": "EligiblePrincipalPaths"}
    assert t["Outputs"]["CustomResourceFunctionArn"]["Value"] == {"Fn::GetAtt": ["CustomResource", "Arn"]}
    for fn in ("APIHandler", "CustomResource"):
        group = t["Resources"][f"{fn}LogGroup"]["Properties"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_packaged_api_signs_every_route_but_health(packaged: Path) -> None:
    body = load(packaged / "sam.yaml")["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    for path, methods in body["paths"].items():
        for method, op in methods.items():
            if method == "options":
                continue
            signed = op.get("security") == [{"sigv4": []}]
            assert signed == (path != "/health"), (path, method)


def test_packaged_roles_use_the_reviewed_policy(packaged: Path) -> None:
    t = load(packaged / "sam.yaml")
    reviewed = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    for role in ("ApiHandlerRole", "CustomResourceRole"):
        [policy] = t["Resources"][role]["Properties"]["Policies"]
        assert json.loads(json.dumps(policy["PolicyDocument"])) == reviewed


def test_package_is_small_and_does_not_vendor_boto3(packaged: Path) -> None:
    zip_path = packaged / "deployment.zip"
    assert zip_path.stat().st_size < 3 * 1024 * 1024
    names = zipfile.ZipFile(zip_path).namelist()
    assert {"app.py", "chalicelib/custom_resource.py", "chalicelib/openapi.json"} <= set(names)
    assert not any(n.startswith(("boto3/", "botocore/", "moto/", "tests/")) for n in names)


def test_example_consumer_reads_all_attributes_with_a_short_timeout() -> None:
    t = load(TEMPLATES / "example-consumer.yaml")
    resource = t["Resources"]["Prerequisites"]
    assert resource["Type"] == "Custom::MarketplaceImageBuildPrerequisites"
    timeout = int(resource["Properties"]["ServiceTimeout"])
    assert 60 <= timeout < 3600
    got = sorted(o["Value"]["Fn::GetAtt"][1] for o in t["Outputs"].values())
    assert got == sorted(ATTRIBUTES)
    assert "Attachments" in resource["Properties"]


MARKETPLACE_ARNS = {
    "arn:${AWS::Partition}:iam::aws:policy/AWSMarketplaceFullAccess",
    "arn:${AWS::Partition}:iam::aws:policy/AWSMarketplaceRead-only",
    "arn:${AWS::Partition}:iam::aws:policy/AWSMarketplaceImageBuildFullAccess",
}
ATTACH_ACTIONS = {f"iam:{v}{k}Policy" for v in ("Attach", "Detach") for k in ("User", "Group", "Role")}


def sub(value: Any) -> str:
    return value["Fn::Sub"] if isinstance(value, dict) else value


def test_member_template_is_plain_cloudformation() -> None:
    t = load(TEMPLATES / "stackset-member.yaml")
    assert "Transform" not in t
    types = {r["Type"] for r in t["Resources"].values()}
    assert not any(x.startswith(("AWS::Lambda::", "AWS::Serverless::")) for x in types)
    cr = t["Resources"]["Prerequisites"]
    assert cr["Type"] == "Custom::MarketplaceImageBuildPrerequisites"
    assert cr["DependsOn"] == "ProvisionerRole"
    assert 60 <= int(cr["Properties"]["ServiceTimeout"]) < 3600
    assert cr["Properties"]["Version"] == {"Ref": "Version"}


def test_provisioner_role_trusts_only_the_hub_and_is_limited() -> None:
    role = load(TEMPLATES / "stackset-member.yaml")["Resources"]["ProvisionerRole"]["Properties"]
    assert role["RoleName"] == "mib-prereqs-provisioner"
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert [sub(p) for p in trust["Principal"]["AWS"]] == [
        "arn:${AWS::Partition}:iam::${HubAccountId}:role/mib-prereqs-hub-api",
        "arn:${AWS::Partition}:iam::${HubAccountId}:role/mib-prereqs-hub-custom-resource",
    ]
    [policy] = role["Policies"]
    check_statements(
        policy["PolicyDocument"]["Statement"],
        {
            "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/mib-prereqs/*",
            "arn:${AWS::Partition}:iam::${AWS::AccountId}:instance-profile/mib-prereqs/*",
        },
        MARKETPLACE_ARNS,
    )


def test_stackset_targets_ous_in_one_region_with_safe_operations() -> None:
    props = load(TEMPLATES / "stackset.yaml")["Resources"]["MemberStackSet"]["Properties"]
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"]["Enabled"] is True
    assert props["ManagedExecution"]["Active"] is True
    assert props["CallAs"] == {"Ref": "CallAs"}
    prefs = props["OperationPreferences"]
    assert {"FailureTolerancePercentage", "MaxConcurrentPercentage"} <= set(prefs)
    [group] = props["StackInstancesGroup"]
    assert len(group["Regions"]) == 1  # IAM is global: a second region collides on role names
    assert group["DeploymentTargets"]["OrganizationalUnitIds"] == {"Ref": "OrganizationalUnitIds"}


def test_hub_lets_only_the_organization_invoke_and_assumes_only_the_provisioner(packaged: Path) -> None:
    t = load(packaged / "sam.yaml")
    permission = t["Resources"]["OrganizationInvokePermission"]["Properties"]
    assert permission["PrincipalOrgID"] == {"Ref": "OrganizationId"}
    assert permission["FunctionName"] == {"Fn::GetAtt": ["CustomResource", "Arn"]}
    policy = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    assume = [s for s in policy["Statement"] if "sts:AssumeRole" in json.dumps(s["Action"])]
    assert [s["Resource"] for s in assume] == ["arn:*:iam::*:role/mib-prereqs-provisioner"]
    roles = {t["Resources"][r]["Properties"]["RoleName"] for r in ("ApiHandlerRole", "CustomResourceRole")}
    assert roles == {"mib-prereqs-hub-api", "mib-prereqs-hub-custom-resource"}


def test_api_denies_callers_outside_the_organization(packaged: Path) -> None:
    auth = load(packaged / "sam.yaml")["Resources"]["RestAPI"]["Properties"]["Auth"]
    condition, with_org, without_org = auth["ResourcePolicy"]["CustomStatements"]["Fn::If"]
    assert condition == "ServesOrganization"
    deny = [s for s in with_org if s["Effect"] == "Deny"]
    assert deny == [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
            "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}},
        }
    ]
    assert all(s["Effect"] == "Allow" for s in without_org)


def check_statements(statements: list[dict], writable: set[str], attach_arns: set[str]) -> None:
    """IAM writes only on ``writable`` resources; attach/detach of others only for ``attach_arns``."""
    forbidden = {
        "iam:PutUserPolicy",
        "iam:PutGroupPolicy",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "iam:UpdateLoginProfile",
        "iam:AddUserToGroup",
        "iam:CreatePolicy",
        "iam:CreateUser",
    }
    for stmt in statements:
        actions = {stmt["Action"]} if isinstance(stmt["Action"], str) else set(stmt["Action"])
        assert not actions & forbidden, stmt
        assert "*" not in actions and "iam:*" not in actions, stmt
        iam_actions = {a for a in actions if a.startswith("iam:")}
        if not iam_actions or all(a.split(":")[1].startswith(("Get", "List")) for a in iam_actions):
            continue
        if iam_actions <= ATTACH_ACTIONS and "Condition" in stmt:
            [arns] = [v["iam:PolicyARN"] for v in stmt["Condition"].values()]
            assert {sub(a) for a in arns} == attach_arns, stmt
            continue
        assert sub(stmt["Resource"]) in writable, stmt


def test_packaged_execution_policy_is_least_privilege(packaged: Path) -> None:
    t = load(packaged / "sam.yaml")
    [policy] = t["Resources"]["CustomResourceRole"]["Properties"]["Policies"]
    statements = json.loads(json.dumps(policy["PolicyDocument"]["Statement"]))
    check_statements(
        statements,
        {"arn:*:iam::*:role/mib-prereqs/*", "arn:*:iam::*:instance-profile/mib-prereqs/*"},
        {
            f"arn:*:iam::aws:policy/{p}"
            for p in ("AWSMarketplaceFullAccess", "AWSMarketplaceRead-only", "AWSMarketplaceImageBuildFullAccess")
        },
    )
    sts = [s for s in statements if str(s["Action"]).startswith("sts:")]
    assert {(s["Action"], s["Resource"]) for s in sts} == {
        ("sts:GetCallerIdentity", "*"),
        ("sts:AssumeRole", "arn:*:iam::*:role/mib-prereqs-provisioner"),
    }
    pass_role = [s for s in statements if "iam:PassRole" in s["Action"]]
    assert [s["Resource"] for s in pass_role] == ["arn:*:iam::*:role/mib-prereqs/*"]


def test_required_boundary_is_enforced_by_iam_too(packaged: Path) -> None:
    t = load(packaged / "sam.yaml")
    policy = t["Resources"]["RequireBoundaryPolicy"]
    assert policy["Condition"] == "RequiresBoundary"
    assert policy["Properties"]["Roles"] == [{"Ref": "ApiHandlerRole"}, {"Ref": "CustomResourceRole"}]
    create, drop = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (create["Effect"], set(create["Action"])) == ("Deny", {"iam:CreateRole", "iam:PutRolePermissionsBoundary"})
    assert create["Condition"] == {
        "StringNotEquals": {"iam:PermissionsBoundary": {"Ref": "RequiredPermissionsBoundary"}}
    }
    assert (drop["Effect"], drop["Action"]) == ("Deny", "iam:DeleteRolePermissionsBoundary")
    for fn in ("APIHandler", "CustomResource"):
        env = t["Resources"][fn]["Properties"]["Environment"]["Variables"]
        assert env["REQUIRED_PERMISSIONS_BOUNDARY"] == {"Ref": "RequiredPermissionsBoundary"}


def test_package_holds_bytecode_for_every_module_a_cold_start_imports(packaged: Path, tmp_path: Path) -> None:
    """Lambda cannot write __pycache__: each module `import app` loads comes from the zip's bytecode."""
    with zipfile.ZipFile(packaged / "deployment.zip") as zf:
        names = zf.namelist()
        zf.extractall(tmp_path)
    assert len(names) == len(set(names)), "an entry is in the zip twice"
    assert f"chalicelib/__pycache__/service.{sys.implementation.cache_tag}.pyc" in names
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    verbose = subprocess.run(
        [sys.executable, "-v", "-c", "import app"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True
    ).stderr
    from_package = [line for line in verbose.splitlines() if str(tmp_path) in line]
    loaded = [line for line in from_package if line.startswith("# code object from")]
    assert any("chalicelib/__pycache__/custom_resource" in line for line in loaded)
    assert any("aws_lambda_powertools/logging/__pycache__/logger" in line for line in loaded)
    compiled = [line for line in from_package if line.startswith("# code object from") and ".pyc" not in line]
    assert not compiled, compiled
    assert len(loaded) >= 60


def test_precompile_fails_loudly_and_leaves_the_zip_as_it_was(tmp_path: Path) -> None:
    """A package whose app cannot be imported is refused by `make package`, and its zip is not touched."""
    package = tmp_path / "deployment.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("app.py", "import no_such_module_anywhere\n")
    before = package.read_bytes()
    run = subprocess.run(
        [sys.executable, str(ROOT / ".chalice" / "precompile.py"), str(package)], capture_output=True, text=True
    )
    assert run.returncode != 0
    assert "no_such_module_anywhere" in run.stderr
    assert package.read_bytes() == before
