"""Whether a use case's recorded history is intact, as an auditor asks it through GraphQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol
from uuid import UUID

import strawberry


class IntegrityCheck(Protocol):
    """What the audit verifier reports for one history."""

    @property
    def intact(self) -> bool: ...
    @property
    def first_bad_version(self) -> int | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def head_version(self) -> int: ...
    @property
    def head_hash(self) -> str: ...


IntegrityVerifier = Callable[[UUID], IntegrityCheck]
"""Recomputes a use case's hash chain (and checks its snapshots) from the store."""


@strawberry.type(
    description="Whether the history is intact: its hash chain recomputed from the stored "
    "events matches, and every snapshot equals the replay of its events. Publish `headHash` "
    "outside stagegate to catch a chain recomputed by someone who can write the database."
)
class Integrity:
    intact: bool
    first_bad_version: int | None
    reason: str | None
    head_version: int
    head_hash: str

    @classmethod
    def from_check(cls, check: IntegrityCheck) -> Integrity:
        return cls(
            intact=check.intact,
            first_bad_version=check.first_bad_version,
            reason=check.reason,
            head_version=check.head_version,
            head_hash=check.head_hash,
        )
