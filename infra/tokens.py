"""API tokens: stored hashed, compared in constant time, each bound to an actor and a role.

A token reads ``sgt_<id>_<secret>``. The id finds the row; only the SHA-256 of the secret is
stored, and it is compared with ``hmac.compare_digest``. Secrets carry 256 bits of entropy, so
a fast hash is enough (a slow password hash protects low-entropy secrets, which these are not).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import TypeAdapter

from domain.metadata import Actor
from domain.values import PersonId, Role
from infra.database import Database

PREFIX = "sgt"
TOKENS_TABLE = "stagegate_tokens"
_PERSON_ID: TypeAdapter[str] = TypeAdapter(PersonId)


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    actor_id: str
    role: Role
    created_at: datetime
    description: str | None = None
    revoked_at: datetime | None = None
    sources: tuple[str, ...] = field(default=())
    """CloudEvents sources an integration token may post as (empty: none)."""
    event_types: tuple[str, ...] = field(default=())
    """CloudEvents types an integration token may post (empty: every type)."""

    @property
    def actor(self) -> Actor:
        return Actor(id=self.actor_id, role=self.role)


@dataclass(frozen=True)
class IssuedToken:
    record: TokenRecord
    secret_token: str
    """The only time the full token exists outside its holder: print it once."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    def __init__(self, database: Database) -> None:
        self.db = database
        self.table = database.table(TOKENS_TABLE)

    def create_table(self) -> None:
        with self.db.transaction() as curs:
            curs.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " token_id TEXT PRIMARY KEY,"
                " secret_sha256 TEXT NOT NULL,"
                " actor_id TEXT NOT NULL,"
                " role TEXT NOT NULL,"
                " description TEXT,"
                " sources TEXT NOT NULL DEFAULT '[]',"
                " event_types TEXT NOT NULL DEFAULT '[]',"
                " created_at TEXT NOT NULL,"
                " revoked_at TEXT)"
            )

    def issue(
        self,
        actor_id: str,
        role: Role,
        description: str | None = None,
        sources: tuple[str, ...] = (),
        event_types: tuple[str, ...] = (),
    ) -> IssuedToken:
        actor_id = _PERSON_ID.validate_python(actor_id)
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = TokenRecord(
            token_id=token_id,
            actor_id=actor_id,
            role=role,
            created_at=datetime.now(UTC),
            description=description,
            sources=sources,
            event_types=event_types,
        )
        with self.db.transaction() as curs:
            curs.execute(
                f"INSERT INTO {self.table} (token_id, secret_sha256, actor_id, role,"
                " description, sources, event_types, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    token_id,
                    _digest(secret),
                    actor_id,
                    role.value,
                    description,
                    json.dumps(list(sources)),
                    json.dumps(list(event_types)),
                    record.created_at.isoformat(),
                ),
            )
        return IssuedToken(record=record, secret_token=f"{PREFIX}_{token_id}_{secret}")

    def authenticate(self, presented: str) -> TokenRecord | None:
        """The live token record matching ``presented``, or None."""
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        _, token_id, secret = parts
        row = self._row(token_id)
        if row is None or row["revoked_at"] is not None:
            # Compare anyway, so an unknown id costs the same time as a wrong secret.
            hmac.compare_digest(_digest(secret), "0" * 64)
            return None
        if not hmac.compare_digest(_digest(secret), str(row["secret_sha256"])):
            return None
        return _record(row)

    def revoke(self, token_id: str) -> bool | None:
        """True if revoked now, False if it already was, None if there is no such token."""
        with self.db.transaction() as curs:
            curs.execute(f"SELECT revoked_at FROM {self.table} WHERE token_id = %s", (token_id,))
            row = curs.fetchone()
            if row is None:
                return None
            if row["revoked_at"] is not None:
                return False
            curs.execute(
                f"UPDATE {self.table} SET revoked_at = %s WHERE token_id = %s",
                (datetime.now(UTC).isoformat(), token_id),
            )
        return True

    def list(self) -> list[TokenRecord]:
        with self.db.transaction() as curs:
            curs.execute(f"SELECT * FROM {self.table} ORDER BY created_at")
            return [_record(row) for row in curs.fetchall()]

    def count(self) -> int:
        with self.db.transaction() as curs:
            curs.execute(f"SELECT COUNT(*) AS n FROM {self.table}")
            row = curs.fetchone()
        return int(row["n"]) if row else 0

    def _row(self, token_id: str) -> dict[str, object] | None:
        rows = self.db.select(f"SELECT * FROM {self.table} WHERE token_id = %s", (token_id,))
        return rows[0] if rows else None


def _record(row: dict[str, object]) -> TokenRecord:
    revoked = row["revoked_at"]
    return TokenRecord(
        token_id=str(row["token_id"]),
        actor_id=str(row["actor_id"]),
        role=Role(str(row["role"])),
        created_at=datetime.fromisoformat(str(row["created_at"])),
        description=row["description"] if isinstance(row["description"], str) else None,
        revoked_at=datetime.fromisoformat(revoked) if isinstance(revoked, str) else None,
        sources=tuple(json.loads(str(row["sources"]))),
        event_types=tuple(json.loads(str(row["event_types"]))),
    )
