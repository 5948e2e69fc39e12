"""What the application remembers between commands, kept correct when other processes write."""

from __future__ import annotations

from domain.application import Stagegate
from domain.policy import POLICY_ID, PolicyInForce
from infra.database import Database


class CachedPolicy:
    """The policy in force, remembered (``domain.application.PolicySource``).

    Loading the policy costs two queries and a decode per command, where it changes a few
    times a year. A command is judged by the remembered one at no cost: the store checks, in
    the transaction that appends the command's events, that it is still the one in force, and
    refuses the write otherwise (``PolicyChanged``), so the command is judged again by the
    new one, whichever process wrote it. An answer to a reader costs one small query: the
    latest policy version, compared with the one remembered.
    """

    def __init__(self, app: Stagegate, db: Database, events_table: str) -> None:
        self._app = app
        self._db = db
        self._held: PolicyInForce | None = None
        self._latest_version = (
            "SELECT COALESCE(MAX(originator_version), 0) AS version"
            f" FROM {events_table} WHERE originator_id = %s"
        )
        self._policy_id = db.stored_uuid(POLICY_ID)

    def for_judging(self) -> PolicyInForce:
        held = self._held
        return held if held is not None else self._load()

    def in_force(self) -> PolicyInForce:
        held = self._held
        if held is not None:
            [row] = self._db.select(self._latest_version, (self._policy_id,))
            if int(row["version"]) == held.version:
                return held
        return self._load()

    def forget(self) -> None:
        self._held = None

    def _load(self) -> PolicyInForce:
        # Another thread may load meanwhile; whichever is older is found out at its commit.
        policy = self._app.stored_policy()
        self._held = policy
        return policy
