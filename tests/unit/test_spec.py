"""Every rule of every field of the spec, and what a valid body becomes."""

from __future__ import annotations

import pytest

from chalicelib.errors import InvalidSpec
from chalicelib.spec import Attachment, parse_rest_body


def parse(body: object, name: str = "demo"):
    return parse_rest_body(name, body, owner="rest")


def problems(body: object, name: str = "demo") -> str:
    with pytest.raises(InvalidSpec) as err:
        parse(body, name)
    return str(err.value)


def test_empty_body_gives_defaults() -> None:
    spec = parse(None)
    assert spec.instance_role_name == "demo-InstanceRole"
    assert spec.automation_role_name == "demo-AutomationRole"
    assert (spec.log_bucket, spec.permissions_boundary, spec.account_id, spec.adopt) == (None, None, None, False)
    assert spec.attachments == () and spec.tags == () and spec.warnings == ()
    assert parse({}) == spec


def test_full_body_is_normalised() -> None:
    spec = parse(
        {
            "instance_role_name": "BuildInstance",
            "automation_role_name": "BuildAutomation",
            "log_bucket": "my-logs.example",
            "permissions_boundary": "arn:aws:iam::123456789012:policy/boundaries/Boundary",
            "attachments": [
                {"policy": "AWSMarketplaceRead-only", "principal_type": "group", "principal_name": "viewers"},
                {"policy": "AWSMarketplaceFullAccess", "principal_type": "user", "principal_name": "alice"},
            ],
            "tags": {"team": "images", "cost-center": "42"},
            "account_id": "123456789012",
            "adopt": True,
        }
    )
    assert spec.attachments == (
        Attachment("AWSMarketplaceFullAccess", "user", "alice"),
        Attachment("AWSMarketplaceRead-only", "group", "viewers"),
    )
    assert spec.tags == (("cost-center", "42"), ("team", "images"))
    assert spec.adopt is True and spec.account_id == "123456789012"


@pytest.mark.parametrize("name", ["", "-lead", "a" * 33, "has_underscore", "sp ace", "ümlaut"])
def test_set_name_rule(name: str) -> None:
    assert "name: must match [A-Za-z0-9][A-Za-z0-9-]{0,31}" in problems({}, name)


@pytest.mark.parametrize("name", ["a", "A1-b", "x" * 32])
def test_set_name_accepts(name: str) -> None:
    assert parse({}, name).name == name


@pytest.mark.parametrize(
    "body",
    [[], "text", 3, True],
)
def test_body_must_be_object(body: object) -> None:
    assert problems(body) == "body: must be a JSON object"


def test_unknown_field() -> None:
    assert "colour: unknown field" in problems({"colour": "blue"})


@pytest.mark.parametrize("field", ["instance_role_name", "automation_role_name"])
@pytest.mark.parametrize("value", ["", "x" * 65, "bad name", "slash/no", "ümlaut", 5])
def test_role_name_rule(field: str, value: object) -> None:
    assert f"{field}: must match [\\w+=,.@-]{{1,64}} (IAM role name rules)" in problems({field: value})


def test_role_names_must_differ_ignoring_case() -> None:
    msg = problems({"instance_role_name": "SameInstance", "automation_role_name": "sameinstance"})
    assert "automation_role_name: must differ from instance_role_name" in msg


def test_names_without_marker_words_warn() -> None:
    spec = parse({"instance_role_name": "Builder", "automation_role_name": "Runner"})
    assert any("'Instance'" in w for w in spec.warnings)
    assert any("'Automation'" in w for w in spec.warnings)


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",
        "a" * 64,
        "UPPER",
        "-start",
        "end-",
        "two..dots",
        "192.168.1.1",
        "xn--idn",
        "sthree-x",
        "x-s3alias",
        "x--ol-s3",
        "x.mrap",
        "under_score",
        7,
    ],
)
def test_log_bucket_rule(bucket: object) -> None:
    assert "log_bucket: must follow S3 bucket naming rules" in problems({"log_bucket": bucket})


@pytest.mark.parametrize("bucket", ["abc", "my.logs-1", "a" * 63])
def test_log_bucket_accepts(bucket: str) -> None:
    assert parse({"log_bucket": bucket}).log_bucket == bucket


@pytest.mark.parametrize(
    "arn",
    ["arn:aws:iam::123:policy/x", "arn:aws:s3:::bucket", "arn:aws-xx:iam::aws:policy/x", "policy/x", "", 1],
)
def test_permissions_boundary_rule(arn: object) -> None:
    assert "permissions_boundary: must be an IAM policy ARN" in problems({"permissions_boundary": arn})


@pytest.mark.parametrize(
    "arn", ["arn:aws:iam::aws:policy/PowerUserAccess", "arn:aws-us-gov:iam::123456789012:policy/a/b/Boundary"]
)
def test_permissions_boundary_accepts(arn: str) -> None:
    assert parse({"permissions_boundary": arn}).permissions_boundary == arn


@pytest.mark.parametrize("value", ["123", "12345678901a", "1234567890123", 123456789012])
def test_account_id_rule(value: object) -> None:
    assert "account_id: must be a string of 12 digits" in problems({"account_id": value})


@pytest.mark.parametrize("value", ["true", 1, "yes", 0])
def test_adopt_must_be_boolean(value: object) -> None:
    assert "adopt: must be a boolean (true or false)" in problems({"adopt": value})


def att(**kw: object) -> dict:
    return {"policy": "AWSMarketplaceFullAccess", "principal_type": "user", "principal_name": "alice", **kw}


def test_attachments_must_be_list() -> None:
    assert "attachments: must be a list of objects" in problems({"attachments": {"a": 1}})


def test_attachment_must_be_object() -> None:
    assert "attachments[0]: must be an object" in problems({"attachments": ["x"]})


@pytest.mark.parametrize("policy", ["AdministratorAccess", "AWSMarketplaceFullAccess ", "", None])
def test_attachment_policy_only_marketplace(policy: object) -> None:
    msg = problems({"attachments": [att(policy=policy)]})
    assert "attachments[0].policy: must be one of AWSMarketplaceFullAccess, AWSMarketplaceRead-only" in msg


def test_attachment_principal_type() -> None:
    assert "attachments[0].principal_type: must be one of user, group, role" in problems(
        {"attachments": [att(principal_type="service")]}
    )


@pytest.mark.parametrize(
    ("ptype", "name", "rule"),
    [
        ("user", "x" * 65, "{1,64}"),
        ("role", "bad name", "{1,64}"),
        ("group", "g" * 129, "{1,128}"),
        ("user", "", "{1,64}"),
    ],
)
def test_attachment_principal_name(ptype: str, name: str, rule: str) -> None:
    msg = problems({"attachments": [att(principal_type=ptype, principal_name=name)]})
    assert f"attachments[0].principal_name: must match [\\w+=,.@-]{rule} (IAM {ptype} name rules)" in msg


def test_group_names_may_be_longer() -> None:
    spec = parse({"attachments": [att(principal_type="group", principal_name="g" * 128)]})
    assert spec.attachments[0].principal_name == "g" * 128


def test_attachment_unknown_key_and_duplicate() -> None:
    assert "attachments[0].extra: unknown field" in problems({"attachments": [att(extra=1)]})
    assert "attachments[1]: duplicate attachment" in problems({"attachments": [att(), att()]})


def test_attachment_count_limit() -> None:
    many = [att(principal_name=f"u{i}") for i in range(21)]
    assert "attachments: at most 20 attachments" in problems({"attachments": many})


def test_deprecated_policy_warns() -> None:
    spec = parse({"attachments": [att(policy="AWSMarketplaceImageBuildFullAccess")]})
    assert any("deprecated" in w for w in spec.warnings)


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ([], "tags: must be an object"),
        ({"": "v"}, "tags.: key must be 1-128"),
        ({"k" * 129: "v"}, "key must be 1-128"),
        ({"bad#key": "v"}, "tags.bad#key: key must be"),
        ({"a\nb": "v"}, "tags.'a\\nb': key must be"),
        ({"aws:owner": "v"}, "tags.aws:owner: keys starting with aws: are reserved by AWS"),
        ({"AWS:x": "v"}, "reserved by AWS"),
        ({"mib-prereqs:set": "v"}, "keys starting with mib-prereqs: are reserved by this service"),
        ({"Team": "a", "team": "b"}, "tags.team: duplicate key (IAM tag keys ignore case)"),
        ({"k": 1}, "tags.k: value must be a string of 0-256"),
        ({"k": "v" * 257}, "tags.k: value must be"),
        ({"k": "a,b"}, "tags.k: value must be"),
    ],
)
def test_tag_rules(tags: object, message: str) -> None:
    assert message in problems({"tags": tags})


def test_tags_accept_unicode_letters_and_empty_value() -> None:
    assert parse({"tags": {"équipe": "", "owner": "a.b@c:d/e=f+g-h_i j"}}).tag_map["équipe"] == ""


def test_tag_budget_counts_attachments() -> None:
    tags = {f"k{i}": "v" for i in range(40)}
    msg = problems({"tags": tags, "attachments": [att(principal_name=f"u{i}") for i in range(3)]})
    assert "tags: at most 39 tags with 3 attachments" in msg


def test_all_problems_are_reported_together() -> None:
    msg = problems({"log_bucket": "X", "adopt": "no", "account_id": "1"})
    assert "log_bucket:" in msg and "adopt:" in msg and "account_id:" in msg
