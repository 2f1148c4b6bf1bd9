"""Property-based tests of the parsers: any JSON in, a Spec or a clean InvalidSpec out."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import records
from chalicelib.custom_resource import Stack, parse_properties
from chalicelib.errors import InvalidSpec
from chalicelib.spec import BODY_FIELDS, MARKETPLACE_POLICIES, Attachment, Spec, parse_rest_body

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=20,
)
# Bodies that mostly use the real field names, so the validators are reached, not just "unknown field".
bodies = st.dictionaries(st.sampled_from([*BODY_FIELDS, "extra"]), json_values, max_size=8) | json_values
# A problem starts with the path of the field it is about: name, attachments[2].policy, Tags.x, ...
FIELD = re.compile(r"^[A-Za-z_][\w\-]*(\[\d+\])?(\..*?)?: \S")
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(name=st.text(max_size=40), body=bodies)
def test_any_body_gives_a_spec_or_field_named_errors(name: str, body: object) -> None:
    try:
        spec = parse_rest_body(name, body, "rest")
    except InvalidSpec as err:
        assert err.problems
        for problem in err.problems:
            assert FIELD.match(problem), problem
        return
    assert isinstance(spec, Spec)
    assert all(a.policy in MARKETPLACE_POLICIES for a in spec.attachments)


@FAST
@given(
    props=st.dictionaries(
        st.sampled_from(
            ["SetName", "Adopt", "RetainOnDelete", "Attachments", "Tags", "LogBucket", "InstanceRoleName", "Bogus"]
        ),
        json_values,
        max_size=6,
    )
    | json_values
)
def test_any_properties_give_a_spec_or_property_named_errors(props: object) -> None:
    try:
        parse_properties(props, Stack("aws", "eu-west-1", "123456789012"), "stack")
    except InvalidSpec as err:
        for problem in err.problems:
            assert FIELD.match(problem), problem


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,20}", fullmatch=True)
principals = st.from_regex(r"[\w+=.@-]{1,20}", fullmatch=True).filter(lambda s: s.isascii())
valid_specs = st.builds(
    lambda name, tags, atts, bucket, adopt: parse_rest_body(
        name,
        {"tags": tags, "attachments": atts, "adopt": adopt, **({"log_bucket": bucket} if bucket else {})},
        "rest",
    ),
    names,
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_.:/=+@-]{0,15}", fullmatch=True).filter(
            lambda k: not k.startswith(("aws:", "mib-prereqs:"))
        ),
        st.from_regex(r"[a-z0-9 _.:/=+@-]{0,20}", fullmatch=True),
        max_size=5,
    ),
    st.lists(
        st.builds(
            lambda p, t, n: {"policy": p, "principal_type": t, "principal_name": n},
            st.sampled_from(MARKETPLACE_POLICIES),
            st.sampled_from(["user", "group", "role"]),
            principals,
        ),
        max_size=4,
        unique_by=lambda a: (a["policy"], a["principal_type"], a["principal_name"]),
    ),
    st.one_of(st.none(), st.from_regex(r"[a-z0-9][a-z0-9-]{2,20}[a-z0-9]", fullmatch=True)),
    st.booleans(),
)


@FAST
@given(spec=valid_specs)
def test_the_record_in_tags_gives_back_the_spec(spec: Spec) -> None:
    bucket = spec.log_bucket or "ssmlogbucket-us-east-1-123456789012"
    tags = records.role_tags(spec, records.INSTANCE, bucket)
    assert len(tags) <= 50
    back = records.spec_from_record(spec.name, tags, "nobody")
    assert back.owner == spec.owner and back.attachments == spec.attachments and back.tags == spec.tags
    assert (back.instance_role_name, back.automation_role_name, back.log_bucket) == (
        spec.instance_role_name,
        spec.automation_role_name,
        bucket,
    )
    assert records.digest(back, bucket) == tags[records.DIGEST_TAG]


@FAST
@given(name=principals.map(lambda n: n + ",x"))
def test_commas_in_names_survive_the_record(name: str) -> None:
    spec = parse_rest_body(
        "s",
        {"attachments": [{"policy": "AWSMarketplaceFullAccess", "principal_type": "user", "principal_name": name}]},
        "rest",
    )
    tags = records.role_tags(spec, records.INSTANCE, "b")
    assert "," not in "".join(tags.values())
    assert records.recorded_attachments(tags) == {Attachment("AWSMarketplaceFullAccess", "user", name)}
