"""Deployment settings: every rule of Settings.from_env names the variable it refuses."""

from __future__ import annotations

import pytest

from chalicelib.config import Settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.path_prefix, s.eligible_principal_paths, s.request_budget_seconds) == ("/mib-prereqs/", (), 25.0)
    assert (s.provisioner_role_name, s.required_permissions_boundary) == ("mib-prereqs-provisioner", None)
    assert s.set_path("demo") == "/mib-prereqs/demo/"


def test_values_are_read() -> None:
    s = Settings.from_env(
        {
            "MIB_PATH_PREFIX": "/org/prereqs/",
            "ELIGIBLE_PRINCIPAL_PATHS": " /builders/ , /ci/ ,",
            "REQUEST_BUDGET_SECONDS": "12.5",
            "PROVISIONER_ROLE_NAME": "Provisioner",
            "REQUIRED_PERMISSIONS_BOUNDARY": "arn:aws:iam::123456789012:policy/B",
        }
    )
    assert s.eligible_principal_paths == ("/builders/", "/ci/")
    assert (s.path_prefix, s.request_budget_seconds, s.provisioner_role_name) == ("/org/prereqs/", 12.5, "Provisioner")
    assert s.required_permissions_boundary == "arn:aws:iam::123456789012:policy/B"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MIB_PATH_PREFIX": "no-slashes"}, "MIB_PATH_PREFIX"),
        ({"MIB_PATH_PREFIX": "/"}, "MIB_PATH_PREFIX"),
        ({"ELIGIBLE_PRINCIPAL_PATHS": "builders/"}, "ELIGIBLE_PRINCIPAL_PATHS"),
        ({"PROVISIONER_ROLE_NAME": "bad name"}, "PROVISIONER_ROLE_NAME"),
        ({"REQUIRED_PERMISSIONS_BOUNDARY": "Boundary"}, "REQUIRED_PERMISSIONS_BOUNDARY"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ValueError, match=variable):
        Settings.from_env(env)
