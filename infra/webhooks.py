"""Webhooks: subscriptions, and delivering the outbox to them at least once.

Fan-out reads the outbox after its position and creates one delivery per matching subscription,
moving the position in the same transaction (each notification fans out exactly once). Workers
claim due deliveries with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several can run
side by side and a killed one's claims are retried after the lease. A failed attempt is retried
with exponential backoff, so a receiver that is down for a while gets everything once back. A
URL the destination policy refuses (``infra.webhook_destinations``) is not: the delivery is
marked ``refused`` with the reason.

Each request is a CloudEvent 1.0 in structured JSON mode, signed as the Standard Webhooks
specification says (``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64
HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>``, the key being a ``whsec_`` secret's decoded
bytes). Subscriptions made before this release, whose secrets are not ``whsec_`` ones, also get
the deprecated ``Stagegate-*`` headers for one release; see docs/integrations.md.
"""

from __future__ import annotations

import base64
import binascii
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
from cloudevents.core.bindings.http import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from domain.errors import ValidationFailed
from domain.notifications import camel_cased
from infra import metrics
from infra.database import Cursor, Database
from infra.outbox import OUTBOX_TABLE
from infra.readmodels.schema import POSITIONS
from infra.webhook_destinations import (
    Destination,
    DestinationPolicy,
    DestinationRefused,
    HostUnresolvable,
    post,
)

log = logging.getLogger(__name__)

SUBSCRIPTIONS = "stagegate_webhook_subscriptions"
DELIVERIES = "stagegate_webhook_deliveries"
FAN_OUT = "webhooks"
LEASE = timedelta(seconds=60)
"""How long a claimed delivery is reserved for the worker sending it."""
MAX_BACKOFF = timedelta(hours=1)
TIMEOUT_SECONDS = 10.0
DEFAULT_SOURCE = "stagegate"
"""The CloudEvents ``source`` of a webhook unless ``STAGEGATE_WEBHOOK_SOURCE`` says otherwise."""
CONTENT_TYPE = "application/cloudevents+json"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not one
SECRET_BYTES = (24, 64)
"""How long a signing key may be (bytes), as the Standard Webhooks specification says."""


def new_secret() -> str:
    """A new signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def whsec_key(secret: str) -> bytes:
    """The key a ``whsec_`` secret holds; ValueError naming what is wrong with it otherwise."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(
            f"a secret is '{SECRET_PREFIX}' followed by the base64 of {SECRET_BYTES[0]} to"
            f" {SECRET_BYTES[1]} random bytes (Standard Webhooks); leave it out to have one"
            " generated"
        )
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as error:
        raise ValueError(f"the part after '{SECRET_PREFIX}' is not base64 ({error})") from None
    if not SECRET_BYTES[0] <= len(key) <= SECRET_BYTES[1]:
        raise ValueError(
            f"the key is {len(key)} bytes; a secret holds {SECRET_BYTES[0]} to"
            f" {SECRET_BYTES[1]} bytes"
        )
    return key


def is_legacy_secret(secret: str) -> bool:
    """Whether a stored secret predates Standard Webhooks (a plain string, not ``whsec_``)."""
    return not secret.startswith(SECRET_PREFIX)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a stored secret: a ``whsec_`` secret's decoded bytes; a secret stored
    before this release, its UTF-8 bytes, the key its receivers already hold (so they verify
    the new signature with ``whsec_`` + base64 of the secret they have)."""
    return secret.encode() if is_legacy_secret(secret) else whsec_key(secret)


def standard_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The value of ``webhook-signature`` (Standard Webhooks, symmetric: ``v1,<base64>``)."""
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1,{base64.b64encode(mac.digest()).decode()}"


def legacy_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the deprecated ``Stagegate-Signature`` for ``body`` sent at ``timestamp``."""
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
    """pending, delivered, or refused (the URL was refused by the destination policy)."""
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
        send: Callable[[Destination, bytes, dict[str, str]], int] | None = None,
        destinations: DestinationPolicy | None = None,
        source: str = DEFAULT_SOURCE,
    ) -> None:
        self.db = db
        self.key_of = key_of
        self.clock = clock
        self.send = send or _post
        """Sends a request to a destination just judged; its answer's status code."""
        self.destinations = destinations or DestinationPolicy()
        self.source = source
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
        """A new subscription and its signing secret (generated unless given).

        Raises ``ValidationFailed`` naming ``url`` when the destination policy refuses it (its
        host is resolved now) or ``secret`` when that is not a ``whsec_`` secret."""
        try:
            self.destinations.check(url)
        except (DestinationRefused, HostUnresolvable) as refusal:
            raise ValidationFailed.single("url", str(refusal)) from None
        if secret is None:
            secret = new_secret()
        else:
            try:
                whsec_key(secret)
            except ValueError as error:
                raise ValidationFailed.single("secret", str(error)) from None
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
        # The delivery's id: the CloudEvent's ``id`` and ``webhook-id``, the same on every
        # retry, so a receiver deduplicates on it.
        delivery_id = f"{claim['outbox_id']}-{claim['subscription_id']}"
        body = self._cloud_event(claim, delivery_id)
        timestamp = int(time.time())
        secret = str(claim["secret"])
        headers = {
            "Content-Type": CONTENT_TYPE,
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(
                signing_key(secret), delivery_id, timestamp, body
            ),
        }
        if is_legacy_secret(secret):
            # Deprecated, for one release: what receivers subscribed before Standard Webhooks
            # check, so they keep verifying while they move over (docs/integrations.md).
            headers |= {
                "Stagegate-Delivery": delivery_id,
                "Stagegate-Event": str(claim["kind"]),
                "Stagegate-Timestamp": str(timestamp),
                "Stagegate-Signature": legacy_signature(secret, timestamp, body),
            }
        status_code: int | None = None
        error: str | None = None
        refused = False
        try:
            # Judged again at every delivery: what the name resolves to may have changed.
            destination = self.destinations.check(str(claim["url"]))
            status_code = self.send(destination, body, headers)
        except DestinationRefused as refusal:
            refused, error = True, f"refused: {refusal}"
        except HostUnresolvable as failure:
            error = str(failure)
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        delivered = status_code is not None and 200 <= status_code < 300
        metrics.count_webhook_attempt(
            "delivered" if delivered else "refused" if refused else "failed"
        )
        attempts = int(claim["attempts"]) + 1
        if status_code is not None and 300 <= status_code < 400:
            error = (
                f"receiver answered {status_code}, a redirect, which is not followed:"
                " subscribe the URL it redirects to"
            )
        elif not delivered and error is None:
            error = f"receiver answered {status_code}"
        status = "delivered" if delivered else "refused" if refused else "pending"
        with self.db.transaction() as curs:
            curs.execute(
                f"UPDATE {self.deliveries} SET status = %s, next_attempt_at = %s,"
                " last_status_code = %s, last_error = %s, delivered_at = %s"
                " WHERE outbox_id = %s AND subscription_id = %s",
                (
                    status,
                    self.db.ts(self.clock() + backoff(attempts)) if status == "pending" else None,
                    status_code,
                    None if delivered else (error or "")[:500],
                    self.db.ts(self.clock()) if delivered else None,
                    claim["outbox_id"],
                    claim["subscription_id"],
                ),
            )

    def _cloud_event(self, claim: dict[str, Any], delivery_id: str) -> bytes:
        """The request body: the notification as a CloudEvent 1.0, structured JSON mode."""
        payload = json.loads(claim["payload"])
        payload.pop("originator_topic", None)
        originator = claim["originator_id"]
        use_case_id = str(originator) if originator is not None else None
        key = payload.pop("key", None) or (self.key_of(use_case_id) if use_case_id else None)
        recorded = payload.pop("timestamp", None)
        attributes: dict[str, Any] = {
            "specversion": "1.0",
            "id": delivery_id,
            "source": self.source,
            "type": str(claim["kind"]),
            "time": _aware(
                datetime.fromisoformat(recorded)
                if recorded
                else self.db.read_required_ts(claim["created_at"])
            ),
            "datacontenttype": "application/json",
        }
        if key is not None:
            attributes["subject"] = key
        if claim["originator_version"] is not None:
            # An extension attribute (CloudEvents names them in lower case): the use case's
            # version once the announced event was recorded; a gate refusal records none.
            attributes["usecaseversion"] = int(claim["originator_version"])
        event = CloudEvent(attributes=attributes, data=camel_cased(payload))
        return to_structured(event, JSONFormat()).body

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


def _aware(moment: datetime) -> datetime:
    """A time with its offset (SQLite's CURRENT_TIMESTAMP is UTC, written without one)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _post(destination: Destination, body: bytes, headers: dict[str, str]) -> int:
    return post(destination, body, headers, TIMEOUT_SECONDS)
