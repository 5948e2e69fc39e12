"""Webhooks: subscriptions, and delivering the outbox to them at least once.

Fan-out reads the outbox after its position and creates one delivery per matching subscription,
moving the position in the same transaction (each notification fans out exactly once). Workers
claim due deliveries with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several can run
side by side and a killed one's claims are retried after the lease. A failed attempt is retried
with exponential backoff, so a receiver that is down for a while gets everything once back.

Each request is signed: ``Stagegate-Signature: v1=<hex HMAC-SHA256(secret, f"{ts}.{body}")>``
with ``Stagegate-Timestamp: <ts>`` (Unix seconds); see docs/integrations.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from domain.notifications import camel_cased
from infra import metrics
from infra.database import Cursor, Database
from infra.outbox import OUTBOX_TABLE
from infra.readmodels.schema import POSITIONS

log = logging.getLogger(__name__)

SUBSCRIPTIONS = "stagegate_webhook_subscriptions"
DELIVERIES = "stagegate_webhook_deliveries"
FAN_OUT = "webhooks"
LEASE = timedelta(seconds=60)
"""How long a claimed delivery is reserved for the worker sending it."""
MAX_BACKOFF = timedelta(hours=1)
TIMEOUT_SECONDS = 10.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The value of ``Stagegate-Signature`` for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt: 2 s, 4 s, 8 s ... up to an hour."""
    return min(timedelta(seconds=2 ** min(attempts, 20)), MAX_BACKOFF)


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    event_types: tuple[str, ...]
    active: bool
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class WebhookDelivery:
    outbox_id: int
    subscription_id: str
    kind: str
    status: str
    """pending, or delivered."""
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


class Webhooks:
    """Subscriptions and their deliveries, on the application's database."""

    def __init__(
        self,
        db: Database,
        key_of: Callable[[str], str | None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        send: Callable[[str, bytes, dict[str, str]], int] | None = None,
    ) -> None:
        self.db = db
        self.key_of = key_of
        self.clock = clock
        self.send = send or _post
        t = db.table
        self.subscriptions, self.deliveries = t(SUBSCRIPTIONS), t(DELIVERIES)
        self.outbox, self.positions = t(OUTBOX_TABLE), t(POSITIONS)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    def create_tables(self) -> None:
        ts = self.db.type_of("timestamp")
        bigint, boolean = self.db.type_of("bigint"), self.db.type_of("bool")
        with self.db.transaction() as curs:
            curs.execute(
                f"CREATE TABLE IF NOT EXISTS {self.subscriptions} ("
                " id TEXT PRIMARY KEY, url TEXT NOT NULL, event_types TEXT NOT NULL,"
                f" secret TEXT NOT NULL, active {boolean} NOT NULL, created_by TEXT NOT NULL,"
                f" created_at {ts} NOT NULL)"
            )
            curs.execute(
                f"CREATE TABLE IF NOT EXISTS {self.deliveries} ("
                f" outbox_id {bigint} NOT NULL, subscription_id TEXT NOT NULL,"
                " kind TEXT NOT NULL,"
                " status TEXT NOT NULL, attempts INTEGER NOT NULL,"
                f" next_attempt_at {ts}, last_status_code INTEGER, last_error TEXT,"
                f" delivered_at {ts}, PRIMARY KEY (outbox_id, subscription_id))"
            )
            curs.execute(
                f"CREATE INDEX IF NOT EXISTS stagegate_webhook_due ON {self.deliveries}"
                " (status, next_attempt_at)"
            )
            curs.execute(
                f"INSERT INTO {self.positions} (projection, position) VALUES (%s, 0)"
                " ON CONFLICT (projection) DO NOTHING",
                (FAN_OUT,),
            )

    # --- subscriptions ---------------------------------------------------------------------

    def subscribe(
        self, url: str, event_types: tuple[str, ...], secret: str | None, created_by: str
    ) -> tuple[Subscription, str]:
        """A new subscription and its signing secret (generated unless given)."""
        secret = secret or secrets.token_urlsafe(32)
        subscription = Subscription(
            id=str(uuid.uuid4()),
            url=url,
            event_types=event_types,
            active=True,
            created_by=created_by,
            created_at=self.clock(),
        )
        with self.db.transaction() as curs:
            curs.execute(
                f"INSERT INTO {self.subscriptions} (id, url, event_types, secret, active,"
                " created_by, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    subscription.id,
                    url,
                    json.dumps(list(event_types)),
                    secret,
                    True,
                    created_by,
                    self.db.ts(subscription.created_at),
                ),
            )
        return subscription, secret

    def unsubscribe(self, subscription_id: str) -> bool:
        """Stop delivering to a subscription; False if there is none."""
        with self.db.transaction() as curs:
            curs.execute(
                f"UPDATE {self.subscriptions} SET active = %s WHERE id = %s",
                (False, subscription_id),
            )
            curs.execute(f"SELECT id FROM {self.subscriptions} WHERE id = %s", (subscription_id,))
            return curs.fetchone() is not None

    def list_subscriptions(self) -> list[Subscription]:
        with self.db.transaction() as curs:
            curs.execute(f"SELECT * FROM {self.subscriptions} ORDER BY created_at, id")
            return [self._subscription(row) for row in curs.fetchall()]

    def delivery_log(self, subscription_id: str, limit: int) -> list[WebhookDelivery]:
        """The newest deliveries to a subscription first."""
        with self.db.transaction() as curs:
            curs.execute(
                f"SELECT * FROM {self.deliveries} WHERE subscription_id = %s"
                " ORDER BY outbox_id DESC LIMIT %s",
                (subscription_id, limit),
            )
            rows = curs.fetchall()
        read = self.db.read_ts
        return [
            WebhookDelivery(
                outbox_id=int(r["outbox_id"]),
                subscription_id=str(r["subscription_id"]),
                kind=str(r["kind"]),
                status=str(r["status"]),
                attempts=int(r["attempts"]),
                next_attempt_at=read(r["next_attempt_at"]),
                last_status_code=r["last_status_code"],
                last_error=r["last_error"],
                delivered_at=read(r["delivered_at"]),
            )
            for r in rows
        ]

    def pending_count(self) -> int:
        """Deliveries not yet delivered: the queue's depth."""
        with self.db.transaction() as curs:
            curs.execute(f"SELECT COUNT(*) AS n FROM {self.deliveries} WHERE status = 'pending'")
            row = curs.fetchone()
        return int(row["n"]) if row else 0

    # --- fan-out ---------------------------------------------------------------------------

    def fan_out(self, limit: int = 500) -> int:
        """Turn new outbox rows into deliveries, exactly once; returns how many rows."""
        with self.db.transaction() as curs:
            position = self._lock_position(curs)
            curs.execute(
                f"SELECT outbox_id, kind FROM {self.outbox} WHERE outbox_id > %s"
                " ORDER BY outbox_id LIMIT %s",
                (position, limit),
            )
            rows = curs.fetchall()
            if not rows:
                return 0
            curs.execute(
                f"SELECT id, event_types FROM {self.subscriptions} WHERE active = %s", (True,)
            )
            listening = [(r["id"], set(json.loads(r["event_types"]))) for r in curs.fetchall()]
            now = self.db.ts(self.clock())
            deliveries = [
                (row["outbox_id"], subscription_id, row["kind"], "pending", 0, now)
                for row in rows
                for subscription_id, kinds in listening
                if not kinds or row["kind"] in kinds
            ]
            if deliveries:
                curs.executemany(
                    f"INSERT INTO {self.deliveries} (outbox_id, subscription_id, kind, status,"
                    " attempts, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s)",
                    deliveries,
                )
            curs.execute(
                f"UPDATE {self.positions} SET position = %s WHERE projection = %s",
                (rows[-1]["outbox_id"], FAN_OUT),
            )
        return len(rows)

    def _lock_position(self, curs: Cursor) -> int:
        self.db.select_for_update(curs, self.positions, "position", "projection = %s", (FAN_OUT,))
        row = curs.fetchone()
        return int(row["position"]) if row else 0

    # --- delivery --------------------------------------------------------------------------

    def deliver_due(self, limit: int = 50) -> int:
        """Send what is due; returns how many were attempted."""
        claimed = self._claim(limit)
        for claim in claimed:
            self._attempt(claim)
        return len(claimed)

    def _claim(self, limit: int) -> list[dict[str, Any]]:
        now = self.clock()
        lease_until = self.db.ts(now + LEASE)
        # OF d: only the deliveries are locked (and only they need UPDATE rights; the
        # service's role may read the outbox and subscriptions, not update them).
        skip_locked = self.db.for_update_skip_locked("d")
        with self.db.transaction() as curs:
            self.db.take_write_lock(curs, self.positions, "position")  # before choosing
            curs.execute(
                f"SELECT d.outbox_id, d.subscription_id, d.kind, d.attempts, s.url, s.secret,"
                f" o.originator_id, o.originator_version, o.payload, o.created_at"
                f" FROM {self.deliveries} d"
                f" JOIN {self.subscriptions} s ON s.id = d.subscription_id"
                f" JOIN {self.outbox} o ON o.outbox_id = d.outbox_id"
                " WHERE d.status = 'pending' AND d.next_attempt_at <= %s AND s.active = %s"
                f" ORDER BY d.next_attempt_at, d.outbox_id LIMIT %s{skip_locked}",
                (self.db.ts(now), True, limit),
            )
            claims = curs.fetchall()
            curs.executemany(
                f"UPDATE {self.deliveries} SET next_attempt_at = %s, attempts = attempts + 1"
                " WHERE outbox_id = %s AND subscription_id = %s",
                [(lease_until, c["outbox_id"], c["subscription_id"]) for c in claims],
            )
        return claims

    def _attempt(self, claim: dict[str, Any]) -> None:
        body = self._body(claim)
        timestamp = int(time.time())
        delivery_id = f"{claim['outbox_id']}-{claim['subscription_id']}"
        headers = {
            "Content-Type": "application/json",
            "Stagegate-Delivery": delivery_id,
            "Stagegate-Event": str(claim["kind"]),
            "Stagegate-Timestamp": str(timestamp),
            "Stagegate-Signature": signature(str(claim["secret"]), timestamp, body),
        }
        status_code: int | None = None
        error: str | None = None
        try:
            status_code = self.send(str(claim["url"]), body, headers)
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:500]
        delivered = status_code is not None and 200 <= status_code < 300
        metrics.count_webhook_attempt(delivered)
        attempts = int(claim["attempts"]) + 1
        if not delivered and error is None:
            error = f"receiver answered {status_code}"
        with self.db.transaction() as curs:
            curs.execute(
                f"UPDATE {self.deliveries} SET status = %s, next_attempt_at = %s,"
                " last_status_code = %s, last_error = %s, delivered_at = %s"
                " WHERE outbox_id = %s AND subscription_id = %s",
                (
                    "delivered" if delivered else "pending",
                    None if delivered else self.db.ts(self.clock() + backoff(attempts)),
                    status_code,
                    None if delivered else error,
                    self.db.ts(self.clock()) if delivered else None,
                    claim["outbox_id"],
                    claim["subscription_id"],
                ),
            )

    def _body(self, claim: dict[str, Any]) -> bytes:
        payload = json.loads(claim["payload"])
        originator = claim["originator_id"]
        use_case_id = str(originator) if originator is not None else None
        document = {
            "id": f"{claim['outbox_id']}",
            "type": claim["kind"],
            "useCase": payload.pop("key", None)
            or (self.key_of(use_case_id) if use_case_id else None),
            "version": claim["originator_version"],
            "recordedAt": payload.pop("timestamp", None),
            "data": camel_cased(
                {k: v for k, v in payload.items() if k not in ("originator_topic",)}
            ),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    # --- running -----------------------------------------------------------------------------

    def run_once(self) -> int:
        return self.fan_out() + self.deliver_due()

    def run_forever(self, poll_interval: float = 0.5) -> None:
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception:
                log.exception("webhook round failed; it will be retried")
                done = 0
                self._stop.wait(1.0)
            if done == 0:
                self._stop.wait(poll_interval)

    def start(self) -> None:
        self._stop.clear()
        self._worker = threading.Thread(target=self.run_forever, name="webhooks", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=TIMEOUT_SECONDS + 5)
            self._worker = None

    def _subscription(self, row: dict[str, Any]) -> Subscription:
        return Subscription(
            id=str(row["id"]),
            url=str(row["url"]),
            event_types=tuple(json.loads(row["event_types"])),
            active=bool(row["active"]),
            created_by=str(row["created_by"]),
            created_at=self.db.read_required_ts(row["created_at"]),
        )


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    response = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_SECONDS)
    return response.status_code
