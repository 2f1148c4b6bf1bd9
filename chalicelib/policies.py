"""The four policy documents of the seed procedure, as data, and their comparison.

Source: AWS Marketplace Subscriber Guide, "Completing Prerequisite Steps"
(tests/fixtures/prerequisite-steps.txt). The automation policy there lacks its
opening brace; here it is whole. ``{{ Instance Profile }}`` becomes the instance
role's ARN.
"""

from __future__ import annotations

import json
from typing import Any

VERSION = "2012-10-17"
INSTANCE_POLICY_NAME = "InstanceRolePermissionsPolicy"
AUTOMATION_POLICY_NAME = "AutomationRolePermissionsPolicy"

# Identical for both roles in the seed.
_TRUST: dict[str, Any] = {
    "Version": VERSION,
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["ssm.amazonaws.com", "ec2.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


def trust_policy() -> dict[str, Any]:
    """InstanceRoleTrustPolicy and AutomationRoleTrustPolicy."""
    return json.loads(json.dumps(_TRUST))


def default_log_bucket(region: str, account_id: str) -> str:
    return f"ssmlogbucket-{region}-{account_id}"


def instance_role_policy(partition: str, log_bucket: str) -> dict[str, Any]:
    """InstanceRolePermissionsPolicy with the log bucket ARN rendered for the partition."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Action": [
                    "ssm:DescribeAssociation",
                    "ssm:GetDocument",
                    "ssm:GetManifest",
                    "ssm:GetParameters",
                    "ssm:ListAssociations",
                    "ssm:ListInstanceAssociations",
                    "ssm:PutConfigurePackageResult",
                    "ssm:UpdateAssociationStatus",
                    "ssm:UpdateInstanceAssociationStatus",
                    "ssm:UpdateInstanceInformation",
                ],
                "Resource": "*",
                "Effect": "Allow",
            },
            {
                "Action": [
                    "ec2messages:AcknowledgeMessage",
                    "ec2messages:DeleteMessage",
                    "ec2messages:FailMessage",
                    "ec2messages:GetEndpoint",
                    "ec2messages:GetMessages",
                    "ec2messages:SendReply",
                ],
                "Resource": "*",
                "Effect": "Allow",
            },
            {"Action": ["ec2:DescribeInstanceStatus"], "Resource": "*", "Effect": "Allow"},
            {
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:{partition}:s3:::{log_bucket}/*",
                "Effect": "Allow",
            },
        ],
    }


def automation_role_policy(instance_role_arn: str) -> dict[str, Any]:
    """AutomationRolePermissionsPolicy; PassRole only on the set's instance role."""
    return {
        "Version": VERSION,
        "Statement": [
            {"Action": ["ssm:*"], "Resource": ["*"], "Effect": "Allow"},
            {
                "Action": [
                    "ec2:CreateImage",
                    "ec2:DescribeImages",
                    "ec2:StartInstances",
                    "ec2:RunInstances",
                    "ec2:StopInstances",
                    "ec2:TerminateInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:CreateTags",
                    "ec2:DescribeTags",
                ],
                "Resource": ["*"],
                "Effect": "Allow",
            },
            {"Action": ["iam:PassRole"], "Resource": [instance_role_arn], "Effect": "Allow"},
        ],
    }


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


# Keys whose values IAM treats as unordered sets; a lone string equals a one-element list.
_SET_KEYS = {"Action", "NotAction", "Resource", "NotResource"}
_CASELESS_KEYS = {"Action", "NotAction"}


def _as_set(value: Any, caseless: bool) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if caseless:
        items = [i.lower() if isinstance(i, str) else i for i in items]
    return sorted(set(items), key=json.dumps)


def _principal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_set(v, False) for k, v in sorted(value.items())}
    return value


def _condition(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {
        op: {k: _as_set(v, False) for k, v in sorted(block.items())} if isinstance(block, dict) else block
        for op, block in sorted(value.items())
    }


def _statement(statement: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if key in _SET_KEYS:
            out[key] = _as_set(value, key in _CASELESS_KEYS)
        elif key in ("Principal", "NotPrincipal"):
            out[key] = _principal(value)
        elif key == "Condition":
            out[key] = _condition(value)
        else:
            out[key] = value
    return out


def canonical(document: Any) -> Any:
    """A normal form in which semantically equal documents are equal."""
    if isinstance(document, str):
        document = json.loads(document)
    if not isinstance(document, dict):
        return document
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    normal = [_statement(s) if isinstance(s, dict) else s for s in statements]
    return {
        "Version": document.get("Version"),
        "Statement": sorted(normal, key=lambda s: json.dumps(s, sort_keys=True)),
    }


def same_document(a: Any, b: Any) -> bool:
    return canonical(a) == canonical(b)
