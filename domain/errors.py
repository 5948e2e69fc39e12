"""Domain errors: every refusal the lifecycle can give, each naming its reason.

The transports translate these once, at their edge: GraphQL returns them as union members,
HTTP as RFC 9457 problems. Nothing is appended when one is raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_core import ErrorDetails

    from domain.gates import Requirement
    from domain.values import Stage


class DomainError(Exception):
    """Base class: a command was refused and nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GateBlocked(DomainError):
    """A forward move was refused; ``unmet`` names every requirement that does not hold."""

    def __init__(
        self, stage: Stage, target: Stage, unmet: list[Requirement], policy_version: int
    ) -> None:
        codes = ", ".join(r.code.value for r in unmet)
        super().__init__(f"cannot move from {stage.value} to {target.value}: unmet {codes}")
        self.stage = stage
        self.target = target
        self.unmet = unmet
        self.policy_version = policy_version


class Rule(StrEnum):
    """Stable codes of the domain rules other than gates."""

    KEY_TAKEN = "KEY_TAKEN"
    RETIRED = "RETIRED"
    NO_NEXT_STAGE = "NO_NEXT_STAGE"
    NOT_NEXT_STAGE = "NOT_NEXT_STAGE"
    INVALID_RETURN_TARGET = "INVALID_RETURN_TARGET"
    STAGE_DOES_NOT_ALLOW = "STAGE_DOES_NOT_ALLOW"
    SEPARATION_OF_DUTIES = "SEPARATION_OF_DUTIES"
    SELF_APPROVAL = "SELF_APPROVAL"
    NO_APPROVER_NAMED = "NO_APPROVER_NAMED"
    NO_BUSINESS_OWNER_NAMED = "NO_BUSINESS_OWNER_NAMED"
    NO_CANDIDATE_VERSION = "NO_CANDIDATE_VERSION"
    UNKNOWN_VERSION = "UNKNOWN_VERSION"
    VERSION_LABEL_TAKEN = "VERSION_LABEL_TAKEN"
    UNKNOWN_EVALUATION = "UNKNOWN_EVALUATION"
    EVALUATION_NOT_PASSED = "EVALUATION_NOT_PASSED"
    BASELINE_AFTER_DEPLOYMENT = "BASELINE_AFTER_DEPLOYMENT"
    NO_BASELINE_FOR_METRIC = "NO_BASELINE_FOR_METRIC"
    NOT_YET_DEPLOYED = "NOT_YET_DEPLOYED"
    VERSION_NOT_APPROVED = "VERSION_NOT_APPROVED"
    DEPLOYMENT_PREDATES_GATE = "DEPLOYMENT_PREDATES_GATE"
    NOTHING_DEPLOYED = "NOTHING_DEPLOYED"
    ROLLBACK_TARGET_MISMATCH = "ROLLBACK_TARGET_MISMATCH"
    NO_CHANGE = "NO_CHANGE"
    UNKNOWN_CHANGE = "UNKNOWN_CHANGE"
    CHANGE_NOT_PENDING = "CHANGE_NOT_PENDING"
    UNKNOWN_SCALE_CRITERION = "UNKNOWN_SCALE_CRITERION"
    ALERT_ALREADY_RAISED = "ALERT_ALREADY_RAISED"
    UNKNOWN_ALERT = "UNKNOWN_ALERT"
    RESOLVED_BEFORE_RAISED = "RESOLVED_BEFORE_RAISED"
    CORRECTS_UNKNOWN_VERSION = "CORRECTS_UNKNOWN_VERSION"
    MODEL_ALREADY_LINKED = "MODEL_ALREADY_LINKED"
    MODEL_LINKED_ELSEWHERE = "MODEL_LINKED_ELSEWHERE"
    MODEL_NOT_LINKED = "MODEL_NOT_LINKED"


class RuleViolated(DomainError):
    """A domain rule other than a gate refused the command."""

    def __init__(self, code: Rule, message: str) -> None:
        super().__init__(message)
        self.code = code


class VersionConflict(DomainError):
    """Another write got there first: the caller's view of the use case is stale."""

    def __init__(
        self, key: str, expected: int | None, actual: int | None, subject: str | None = None
    ) -> None:
        subject = subject or f"use case '{key}'"
        if actual is None:
            message = f"{subject} was changed by another writer; reload and retry"
        else:
            message = (
                f"{subject} is at version {actual}, not the expected {expected}; reload and retry"
            )
        super().__init__(message)
        self.key = key
        self.expected = expected
        self.actual = actual


class StoreUnavailable(DomainError):
    """The event store did not take the write in time (busy or unreachable); retry later.

    ``written`` is False when nothing was written, and None when the store stopped answering
    as the write was being committed and could not be asked afterwards: it may have been.
    """

    def __init__(self, written: bool | None = False) -> None:
        if written is None:
            message = (
                "the event store stopped answering while the write was committed: it may have "
                "been stored; read the use case before retrying, or retry with expectedVersion"
            )
        else:
            message = "the event store is busy or unreachable; nothing was written, retry"
        super().__init__(message)
        self.written = written


class PolicyChanged(Exception):
    """The policy a command was judged by was replaced before its events committed (raised by
    the store, which checks in the appending transaction): the command is judged again."""


class NotFound(DomainError):
    """No use case has this key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no use case has the key '{key}'")
        self.key = key


class Forbidden(DomainError):
    """The caller's role, or who the caller is, does not allow this command."""


@dataclass(frozen=True)
class FieldError:
    """One invalid input: ``path`` names the field (``scores.leverage.score``)."""

    path: str
    message: str


def _message(item: ErrorDetails) -> str:
    """pydantic's message, except for a length refused on text, which it words for lists
    ("should have at least 10 items after validation") when the limit sits on a text another
    validator has already passed: a person who wrote a sentence counts characters."""
    context = item.get("ctx") or {}
    if item["type"] == "too_short" and isinstance(item["input"], str):
        least = context.get("min_length")
        return f"Text should have at least {least} characters, not {context.get('actual_length')}"
    if item["type"] == "too_long" and isinstance(item["input"], str):
        most = context.get("max_length")
        return f"Text should have at most {most} characters, not {context.get('actual_length')}"
    return item["msg"]


class ValidationFailed(DomainError):
    """The input is malformed; ``errors`` names each invalid field."""

    def __init__(self, errors: list[FieldError]) -> None:
        summary = "; ".join(f"{e.path or '(input)'}: {e.message}" for e in errors)
        super().__init__(f"invalid input: {summary}")
        self.errors = errors

    @classmethod
    def from_pydantic(cls, error: ValidationError, prefix: str = "") -> ValidationFailed:
        field_errors = []
        for item in error.errors(include_url=False):
            # camelCase, as the caller wrote it (a defaulted field is located by its name).
            path = ".".join(to_camel(p) if isinstance(p, str) else str(p) for p in item["loc"])
            if prefix:
                path = f"{prefix}.{path}" if path else prefix
            field_errors.append(FieldError(path=path, message=_message(item)))
        return cls(field_errors)

    @classmethod
    def single(cls, path: str, message: str) -> ValidationFailed:
        return cls([FieldError(path=path, message=message)])
