"""Domain errors of the core.

The front ends map each class to their own shape: an HTTP status and Chalice's
``{"Code", "Message"}`` body for REST, a FAILED response for CloudFormation. The
core never raises a Chalice class itself, so it stays usable from both.
"""

from __future__ import annotations


class PrereqError(Exception):
    """Base of every error the core raises on purpose."""

    status = 500


class InvalidSpec(PrereqError):
    """Input broke a rule; the message names the field and the rule."""

    status = 400

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class Forbidden(PrereqError):
    """A principal not eligible for attachments, or IAM denied the service."""

    status = 403


class AccountUnreachable(Forbidden):
    """The target account cannot be reached from here."""


class SetNotFound(PrereqError):
    status = 404


class Conflict(PrereqError):
    """A resource exists that this owner may not change."""

    status = 409


class MissingManagedPolicy(PrereqError):
    """A Marketplace managed policy does not exist in the account or partition."""

    status = 422


class Throttled(PrereqError):
    """IAM kept throttling after botocore's own retries."""

    status = 429
    retry_after = 5


class OutOfTime(PrereqError):
    """The request's time budget ran out; what was done is kept and the next run finishes."""

    status = 503
    retry_after = 2
