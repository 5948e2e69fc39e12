"""The secrets that model registries sign their webhooks with, one per linked model.

MLflow signs each webhook delivery with a secret its admin enters when creating the webhook;
stagegate keeps the same secret per (registry, model) to verify it. Secrets are kept as given
(a signature can only be checked with the secret itself), in a table of their own, never in
the event log. ``stagegate registry secret`` makes one and prints it once.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from domain.values import RegistrySystem
from infra.database import Database

SECRETS = "stagegate_registry_secrets"


class RegistrySecrets:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.table = db.table(SECRETS)

    def create_table(self) -> None:
        with self.db.transaction() as curs:
            curs.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " system TEXT NOT NULL, name TEXT NOT NULL, secret TEXT NOT NULL,"
                " created_by TEXT NOT NULL, created_at TEXT NOT NULL,"
                " PRIMARY KEY (system, name))"
            )

    def rotate(self, system: RegistrySystem, name: str, created_by: str) -> str:
        """A new secret for the model's webhooks (the one before stops verifying)."""
        secret = secrets.token_urlsafe(32)
        with self.db.transaction() as curs:
            curs.execute(
                f"DELETE FROM {self.table} WHERE system = %s AND name = %s", (system.value, name)
            )
            curs.execute(
                f"INSERT INTO {self.table} (system, name, secret, created_by, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (system.value, name, secret, created_by, datetime.now(UTC).isoformat()),
            )
        return secret

    def secret_of(self, system: RegistrySystem, name: str) -> str | None:
        rows = self.db.select(
            f"SELECT secret FROM {self.table} WHERE system = %s AND name = %s",
            (system.value, name),
        )
        return str(rows[0]["secret"]) if rows else None
