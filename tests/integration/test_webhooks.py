"""Acceptance 5: webhooks out, at least once, signed, with no gap, surviving a killed worker.

The receiver is a real HTTP server in the test. It checks every request the way a subscriber
would: with the reference Standard Webhooks library (``standardwebhooks``:
``Webhook(secret).verify(body, headers)``, which also refuses a stale timestamp; stagegate's own
signing code is never used here), and reads the body as a CloudEvent. It records each
``webhook-id``, and answers as its script says (a dropped connection, 5xx, 429, a redirect)
before it starts answering 200.

The receivers listen on 127.0.0.1 over plain http, so these tests' settings allow http and the
loopback networks (``STAGEGATE_WEBHOOK_ALLOW_HTTP``, ``STAGEGATE_WEBHOOK_ALLOWED_NETWORKS``);
the tests of the SSRF guard put the defaults back and never send anything anywhere else.

"No gap" is checked against the store itself: every outbox row of the subscription's types
reaches the receiver at least once (duplicates are allowed, and carry the same delivery id),
and the outbox holds exactly one row per committed event of a notified type.

The in-process worker runs on a clock the test moves, so backoffs and leases fall due without
waiting. The PostgreSQL kill test SIGKILLs a real ``stagegate webhooks run`` process.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError
from standardwebhooks import Webhook, WebhookVerificationError

from domain import commands as c
from domain.errors import GateBlocked
from domain.gates import RequirementCode
from domain.notifications import Notification
from domain.values import Role, Stage
from infra.bootstrap import Services, bootstrap
from infra.database import Database
from infra.outbox import NOTIFIED_TOPICS, OUTBOX_TABLE, announce_gate_blocked
from infra.settings import Settings
from infra.web import build_api
from infra.webhook_destinations import Destination, DestinationPolicy, post
from infra.webhooks import DELIVERIES, LEASE, MAX_BACKOFF, Webhooks
from infra.webhooks import SUBSCRIPTIONS as SUBSCRIPTIONS_TABLE
from tests.builders import ADMIN, Journey, ctx
from tests.e2e.conftest import Api, RunningServer, issue_tokens, start_server

ROOT = Path(__file__).resolve().parents[2]
STRUCTURED = "application/cloudevents+json"
SECRET = "whsec_" + base64.b64encode(b"receiver-owned-key-0123456789abcdef").decode()
"""An admin-given secret, in the Standard Webhooks form: ``whsec_`` + base64 of the key."""
LEGACY_SECRET = "receiver-owned-0123456789"
"""A secret as subscriptions stored them before Standard Webhooks: a plain string."""
DROP = None
"""In a receiver script: close the connection without answering."""
CLOUDEVENT = "application/cloudevents+json"
LOOPBACK = [ip_network("127.0.0.0/8"), ip_network("::1/128")]


@pytest.fixture
def sqlite_settings(sqlite_settings: Settings) -> Settings:
    """The receivers are loopback http servers: allowed here, as an administrator would."""
    return sqlite_settings.model_copy(
        update={"webhook_allow_http": True, "webhook_allowed_networks": LOOPBACK}
    )


@pytest.fixture
def postgres_settings(postgres_settings: Settings) -> Settings:
    return postgres_settings.model_copy(
        update={"webhook_allow_http": True, "webhook_allowed_networks": LOOPBACK}
    )


# --- the receiver: what a subscriber runs --------------------------------------------------


def verify(secret: str | bytes, headers: dict[str, str], body: bytes) -> str | None:
    """Why a request must be rejected, or None if it is authentic and fresh: the reference
    library's check (``webhook-signature`` over ``webhook-id``, ``webhook-timestamp`` and the
    raw body; a timestamp more than five minutes away is refused)."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError as refused:
        return str(refused)
    return None


def verify_legacy(secret: str, headers: dict[str, str], body: bytes) -> str | None:
    """The check receivers wrote before Standard Webhooks, from the old documentation:
    ``Stagegate-Signature: v1=<hex HMAC-SHA256(secret, "<Stagegate-Timestamp>." + body)>``."""
    timestamp = headers.get("Stagegate-Timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return f"no fresh Stagegate-Timestamp ({timestamp!r})"
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    given = headers.get("Stagegate-Signature", "").removeprefix("v1=")
    return None if hmac.compare_digest(expected.hexdigest(), given) else "no signature matches"


@dataclass
class Received:
    hook: str
    delivery_id: str
    """``webhook-id``."""
    headers: dict[str, str]
    content_type: str
    body: bytes
    problem: str | None
    """Why verification failed; None when it passed."""
    answer: int | None
    """The status the receiver answered (None: it dropped the connection)."""

    @property
    def accepted(self) -> bool:
        return self.problem is None and self.answer is not None and 200 <= self.answer < 300

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def notification_id(self) -> int:
        """The outbox row announced: the CloudEvent's id is ``<outbox id>-<subscription id>``."""
        return int(str(self.document["id"]).split("-", 1)[0])


@dataclass
class Receiver:
    """A webhook endpoint per hook name (``/hooks/<name>``), each with its own secret."""

    base_url: str = ""
    secrets: dict[str, str | bytes] = field(default_factory=dict)
    scripts: dict[str, list[int | None]] = field(default_factory=dict)
    """Answers to a hook's first requests (DROP closes the connection); then 200."""
    hold_at: int | None = None
    """The n-th request overall is held, unanswered, until ``release`` is set."""
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, hook: str) -> str:
        return f"{self.base_url}/hooks/{hook}"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        hook = handler.path.rsplit("/", 1)[-1]
        headers = dict(handler.headers.items())
        secret = self.secrets.get(hook)
        problem = f"no hook '{hook}'" if secret is None else verify(secret, headers, body)
        with self.lock:
            earlier = sum(1 for r in self.requests if r.hook == hook)
            script = self.scripts.get(hook, [])
            answer = 401 if problem else (script[earlier] if earlier < len(script) else 200)
            self.requests.append(
                Received(
                    hook=hook,
                    delivery_id=handler.headers.get("webhook-id", ""),
                    headers=headers,
                    content_type=handler.headers.get("Content-Type", ""),
                    body=body,
                    problem=problem,
                    answer=answer,
                )
            )
            hold = self.hold_at == len(self.requests)
        if hold:
            self.holding.set()
            self.release.wait(60)
        if answer is DROP:
            handler.close_connection = True
            return
        with contextlib.suppress(OSError):  # the sender may be dead by now
            handler.send_response(answer)
            if 300 <= answer < 400:
                handler.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            handler.send_header("Content-Length", "0")
            handler.end_headers()

    def of(self, hook: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.hook == hook]

    def accepted(self, hook: str) -> dict[int, Received]:
        """What the hook took in, deduplicated by notification id (at least once)."""
        return {r.notification_id: r for r in self.of(hook) if r.accepted}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.server.receiver.handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    yield server.receiver
    server.receiver.release.set()
    server.shutdown()
    server.server_close()


# --- stagegate, served, with a worker on the test's clock -----------------------------------


class Clock:
    """The worker's clock: real time at first, then moved only by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Stack:
    services: Services
    api: Api
    admin: str
    """An admin's bearer token."""
    clock: Clock
    worker: Webhooks
    """A delivery worker on ``clock`` (``Services.webhooks`` itself is never started)."""

    @property
    def app(self) -> Any:
        return self.services.app

    def gql(self, query: str, variables: dict[str, Any] | None = None, token: str = "") -> Any:
        return self.api.gql(query, variables, token or self.admin)

    def outbox(self) -> list[dict[str, Any]]:
        db = self.services.database
        with db.transaction() as curs:
            curs.execute(
                f"SELECT outbox_id, kind, originator_id, originator_version, payload"
                f" FROM {db.table(OUTBOX_TABLE)} ORDER BY outbox_id"
            )
            return curs.fetchall()

    def notifications(self, *kinds: str) -> dict[int, dict[str, Any]]:
        """The outbox rows a subscription to ``kinds`` (none: every kind) must receive."""
        return {
            int(row["outbox_id"]): row for row in self.outbox() if not kinds or row["kind"] in kinds
        }

    def deliveries(self) -> list[dict[str, Any]]:
        db = self.services.database
        with db.transaction() as curs:
            curs.execute(f"SELECT * FROM {db.table(DELIVERIES)} ORDER BY outbox_id")
            return curs.fetchall()

    def post_event(self, type: str, subject: str, data: dict[str, Any]) -> dict[str, Any]:
        event = {
            "specversion": "1.0",
            "id": f"delivery-{uuid.uuid4()}",
            "source": "https://eval.example.com/harness",
            "type": type,
            "subject": subject,
            "datacontenttype": "application/json",
            "data": data,
        }
        return self.api.http.post(
            "/v1/events",
            content=json.dumps(event),
            headers={
                "Content-Type": STRUCTURED,
                "Authorization": f"Bearer {self.api.tokens.integration}",
            },
        ).json()


def make_stack(services: Services) -> Iterator[Stack]:
    server: RunningServer = start_server(build_api(services))
    api = Api(server.base_url, issue_tokens(services))
    clock = Clock()
    try:
        yield Stack(
            services=services,
            api=api,
            admin=services.tokens.issue("root", Role.ADMIN).secret_token,
            clock=clock,
            worker=Webhooks(
                services.database,
                key_of=services.webhooks.key_of,
                clock=clock,
                destinations=services.webhooks.destinations,
            ),
        )
    finally:
        api.close()
        server.stop()


@pytest.fixture
def stack(services: Services) -> Iterator[Stack]:
    """On SQLite and on PostgreSQL (the ``services`` fixture runs each test on both)."""
    yield from make_stack(services)


@pytest.fixture
def postgres_stack(postgres_settings: Settings) -> Iterator[Stack]:
    services = bootstrap(postgres_settings)
    try:
        yield from make_stack(services)
    finally:
        services.close()


def drain(worker: Webhooks, clock: Clock, rounds: int = 100) -> None:
    """Run the worker until nothing is due even after its longest backoff has passed."""
    idle = 0
    for _ in range(rounds):
        if worker.run_once():
            idle = 0
            continue
        idle += 1
        if idle == 2:
            return
        clock.advance(MAX_BACKOFF + timedelta(seconds=1))
    raise AssertionError(f"the worker still had work after {rounds} rounds")


CREATE = """
mutation Create($input: CreateWebhookSubscriptionInput!) {
  result: createWebhookSubscription(input: $input) {
    __typename
    ... on CreatedWebhookSubscription { secret subscription { id url eventTypes active } }
    ... on Error { message }
    ... on ValidationFailed { errors { path message } }
  }
}
"""
REMOVE = """
mutation Remove($id: String!) {
  result: removeWebhookSubscription(id: $id) {
    __typename
    ... on WebhookSubscription { id active }
    ... on Error { message }
  }
}
"""
SUBSCRIPTIONS = """
{
  webhookSubscriptions {
    id url eventTypes active createdBy
    deliveries(first: 100) {
      notificationId type status attempts nextAttemptAt lastStatusCode lastError deliveredAt
    }
  }
}
"""


def subscribe(
    stack: Stack,
    receiver: Receiver,
    hook: str,
    event_types: Sequence[str] = (),
    secret: str | None = SECRET,
) -> str:
    """Subscribe ``receiver``'s hook through GraphQL as an admin; its id."""
    body = stack.gql(
        CREATE,
        {"input": {"url": receiver.url(hook), "eventTypes": list(event_types), "secret": secret}},
    )
    assert "errors" not in body, body
    result = body["data"]["result"]
    assert result["__typename"] == "CreatedWebhookSubscription", result
    if secret is not None:
        assert result["secret"] == secret
    receiver.secrets[hook] = result["secret"]  # the receiver keeps the secret shown once
    assert result["subscription"]["active"] is True
    subscription_id: str = result["subscription"]["id"]
    return subscription_id


def delivery_log(stack: Stack, subscription_id: str) -> dict[int, dict[str, Any]]:
    body = stack.gql(SUBSCRIPTIONS)
    assert "errors" not in body, body
    [subscription] = [s for s in body["data"]["webhookSubscriptions"] if s["id"] == subscription_id]
    return {d["notificationId"]: d for d in subscription["deliveries"]}


def raise_alerts(journey: Journey, count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        journey.issue(c.RaiseQualityAlert, severity="high", description=f"Drift #{number}")


def notified_events(services: Services) -> Counter[tuple[str, int, str]]:
    """Every committed event of a notified type, from the event store's own log."""
    return Counter(
        (str(n.originator_id), n.originator_version, NOTIFIED_TOPICS[n.topic])
        for n in services.app.recorder.select_notifications(start=1, limit=1_000_000)
        if n.topic in NOTIFIED_TOPICS
    )


def assert_outbox_is_the_notified_events(stack: Stack) -> None:
    """Exactly one outbox row per committed event of a notified type, and no other."""
    rows = Counter(
        (str(row["originator_id"]), int(row["originator_version"]), row["kind"])
        for row in stack.outbox()
        if row["originator_id"] is not None
    )
    assert rows == notified_events(stack.services)


def check_requests(receiver: Receiver, hook: str, notifications: dict[int, dict[str, Any]]) -> None:
    """Each request to ``hook`` verified, and says what its outbox row says."""
    requests = receiver.of(hook)
    assert requests, f"no request reached {hook}"
    assert [r.problem for r in requests if r.problem] == []
    ids_of_delivery: dict[str, set[int]] = {}
    for request in requests:
        document = request.document
        row = notifications.get(request.notification_id)
        assert row is not None, f"{hook} got notification {document['id']} it is not due"
        # A CloudEvent 1.0 in structured mode; its id is the delivery's (webhook-id).
        assert request.content_type == CLOUDEVENT
        assert document["specversion"] == "1.0"
        assert document["id"] == request.delivery_id
        assert document["source"] == "stagegate"
        assert document["type"] == row["kind"]
        assert document["datacontenttype"] == "application/json"
        assert datetime.fromisoformat(document["time"]).tzinfo is not None
        assert document["subject"], document
        assert document.get("usecaseversion") == row["originator_version"]
        assert isinstance(document["data"], dict)
        # Subscriptions made with whsec_ secrets get no deprecated headers.
        assert not [h for h in request.headers if h.lower().startswith("stagegate-")]
        ids_of_delivery.setdefault(request.delivery_id, set()).add(request.notification_id)
    # A redelivery repeats its delivery id (receivers deduplicate on it); ids are not reused.
    assert all(len(ids) == 1 for ids in ids_of_delivery.values()), ids_of_delivery
    assert len(ids_of_delivery) == len({r.notification_id for r in requests})


CAMEL_CASE = re.compile(r"[a-z][a-zA-Z0-9]*")
"""A member name as a webhook payload writes it: ``fromStage``, ``actorId``, ``policyVersion``."""


def member_names(document: Any) -> Iterator[str]:
    """Every object member name in a JSON document, at any depth (inside lists too)."""
    if isinstance(document, dict):
        for name, value in document.items():
            yield name
            yield from member_names(value)
    elif isinstance(document, list):
        for value in document:
            yield from member_names(value)


def every_kind(stack: Stack) -> tuple[str, str]:
    """At least one notification of each kind, each through the path it takes in real use.

    Returns the key of the use case that lives a whole life and of the one refused at a gate.
    """
    journey = Journey(stack.app).register().reach(Stage.MEASUREMENT)  # advanced, deployed
    for type_, data in (
        (
            "stagegate.quality.alert_raised",
            {"alertId": "drift-1", "severity": "HIGH", "description": "Answers drift."},
        ),
        ("stagegate.quality.alert_resolved", {"alertId": "drift-1", "resolution": "Fixed."}),
        ("stagegate.deployment.rolled_back", {"reason": "Latency doubled."}),
    ):
        outcome = stack.post_event(type_, journey.key, data)
        assert outcome.get("status") == "accepted", outcome
    journey.wait(1)
    journey.issue(c.ReturnToStage, stage="pilot", reason="Rolled back; back to the pilot.")
    journey.issue(c.Retire, reason="Replaced by the ERP vendor's own triage.")
    refused = Journey(stack.app).register()
    result = stack.api.mutate("advanceStage", {"key": refused.key})
    assert result["__typename"] == "GateBlocked", result
    return journey.key, refused.key


# --- acceptance 5 ---------------------------------------------------------------------------


def test_a_receiver_down_at_first_gets_every_notification_verified_and_without_gap(
    stack: Stack, receiver: Receiver
) -> None:
    everything = subscribe(stack, receiver, "everything")
    deployments = subscribe(
        stack,
        receiver,
        "deployments",
        ["DEPLOYMENT_RECORDED", "DEPLOYMENT_ROLLED_BACK"],
        secret=None,  # generated, shown once
    )
    receiver.scripts = {"everything": [DROP, 503, 500, 429], "deployments": [503]}
    lived, refused = every_kind(stack)
    due = stack.notifications()
    assert {row["kind"] for row in due.values()} == {n.value for n in Notification}
    due_deployments = stack.notifications(
        Notification.DEPLOYMENT_RECORDED, Notification.DEPLOYMENT_ROLLED_BACK
    )

    # The receiver is down: the first attempts fail, and say so in the delivery log.
    first_round = stack.clock.now
    assert stack.worker.run_once() > 0
    assert len(receiver.requests) == len(due) + len(due_deployments)
    failed = [r.notification_id for r in receiver.of("everything") if not r.accepted]
    assert len(failed) == 4
    log = delivery_log(stack, everything)
    assert set(log) == set(due)
    for notification_id, answer in zip(failed, [None, 503, 500, 429], strict=True):
        entry = log[notification_id]
        assert entry["status"] == "pending"
        assert entry["attempts"] == 1
        assert entry["lastStatusCode"] == answer
        assert entry["lastError"]
        assert entry["deliveredAt"] is None
        next_attempt = datetime.fromisoformat(entry["nextAttemptAt"])
        assert next_attempt == first_round + timedelta(seconds=2)

    # Retries wait for their backoff ...
    assert stack.worker.run_once() == 0
    assert len(receiver.requests) == len(due) + len(due_deployments)
    # ... and once it has passed, the receiver, back up, gets the rest.
    stack.clock.advance(timedelta(seconds=2))
    drain(stack.worker, stack.clock)

    # No gap: every notification arrived, verified, on each subscription.
    assert set(receiver.accepted("everything")) == set(due)
    assert set(receiver.accepted("deployments")) == set(due_deployments)
    check_requests(receiver, "everything", due)
    check_requests(receiver, "deployments", due_deployments)
    keys = {r.document["subject"] for r in receiver.accepted("everything").values()}
    assert keys == {lived, refused}
    # One convention for every member name a receiver reads, the event's own data included.
    not_camel = {
        (r.document["type"], name)
        for r in receiver.accepted("everything").values()
        for name in member_names(r.document)
        if not CAMEL_CASE.fullmatch(name)
    }
    assert not_camel == set(), f"member names not in camelCase: {sorted(not_camel)}"
    assert_outbox_is_the_notified_events(stack)

    log = delivery_log(stack, everything)
    assert {n: (d["status"], d["lastStatusCode"]) for n, d in log.items()} == {
        n: ("delivered", 200) for n in due
    }
    assert {n: d["attempts"] for n, d in log.items()} == {n: 2 if n in failed else 1 for n in due}
    assert all(d["deliveredAt"] and d["lastError"] is None for d in log.values())
    assert {d["type"] for d in delivery_log(stack, deployments).values()} == {
        "DEPLOYMENT_RECORDED",
        "DEPLOYMENT_ROLLED_BACK",
    }

    # The receiver's check is not a formality: it refuses what it must refuse.
    sample = next(iter(receiver.accepted("everything").values()))
    headers, body = sample.headers, sample.body
    assert verify(SECRET, headers, body) is None
    assert verify(b"another-key-0123456789abcdefghij", headers, body)
    assert verify(SECRET, headers, body + b" ")
    assert verify(SECRET, {**headers, "webhook-id": "another-delivery"}, body)
    stale = str(int(headers["webhook-timestamp"]) - 3600)
    assert verify(SECRET, {**headers, "webhook-timestamp": stale}, body) == (
        "Message timestamp too old"
    )
    # The generated secret is a whsec_ one: the reference library took it as it was shown.
    assert str(receiver.secrets["deployments"]).startswith("whsec_")


def test_a_worker_killed_mid_batch_loses_nothing(stack: Stack, receiver: Receiver) -> None:
    subscribe(stack, receiver, "alerts")
    receiver.scripts = {"alerts": [503, 503]}
    journey = Journey(stack.app).register()
    raise_alerts(journey, 12)
    due = stack.notifications()
    assert len(due) == 12

    class Killed(BaseException):
        """The process dies: nothing after this line of the worker runs."""

    sent: list[str] = []

    def dies_after_the_sixth(destination: Destination, body: bytes, headers: dict[str, str]) -> int:
        status = post(destination, body, headers, timeout=10)
        sent.append(headers["webhook-id"])
        if len(sent) == 6:
            raise Killed  # the receiver has it; the worker never writes down that it did
        return status

    doomed = Webhooks(
        stack.services.database,
        stack.services.webhooks.key_of,
        stack.clock,
        dies_after_the_sixth,
        destinations=stack.services.webhooks.destinations,
    )
    with pytest.raises(Killed):
        doomed.run_once()
    assert len(receiver.requests) == 6
    pending = [d for d in stack.deliveries() if d["status"] == "pending"]
    assert len(pending) > 6  # it died mid-batch, with claims it never sent

    # A new worker leaves the dead one's claims alone until their lease runs out ...
    assert stack.worker.run_once() == 0
    assert len(receiver.requests) == 6
    # ... then delivers everything, the one in flight at the kill included.
    stack.clock.advance(LEASE)
    drain(stack.worker, stack.clock)

    assert set(receiver.accepted("alerts")) == set(due)
    check_requests(receiver, "alerts", due)
    in_flight = [r for r in receiver.of("alerts") if r.delivery_id == sent[-1]]
    assert len(in_flight) == 2  # delivered again: at least once, with the same delivery id
    assert {d["status"] for d in stack.deliveries()} == {"delivered"}


@pytest.mark.postgres
def test_a_sigkilled_worker_process_loses_nothing(
    postgres_stack: Stack, receiver: Receiver, tmp_path: Path
) -> None:
    stack = postgres_stack
    settings = stack.services.settings
    subscribe(stack, receiver, "alerts")
    receiver.scripts = {"alerts": [503, 500, DROP]}
    receiver.hold_at = 12  # the worker is killed while this request is in flight
    journey = Journey(stack.app).register()
    raise_alerts(journey, 30)
    env = {
        **os.environ,
        "STAGEGATE_DATABASE_URL": settings.database_url,
        "STAGEGATE_POSTGRES_SCHEMA": settings.postgres_schema,
        "STAGEGATE_WEBHOOK_ALLOW_HTTP": "true",
        "STAGEGATE_WEBHOOK_ALLOWED_NETWORKS": json.dumps([str(n) for n in LOOPBACK]),
    }

    def start_worker(log: str) -> subprocess.Popen[bytes]:
        with (tmp_path / log).open("wb") as output:
            return subprocess.Popen(
                [sys.executable, "-m", "infra.cli", "webhooks", "run", "--poll", "0.05"],
                env=env,
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    worker = start_worker("first.log")
    try:
        if not receiver.holding.wait(60):
            pytest.fail(f"no 12th request; worker said:\n{(tmp_path / 'first.log').read_text()}")
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
    finally:
        receiver.release.set()
        if worker.poll() is None:
            worker.kill()
    assert len(receiver.requests) == 12
    pending = [d for d in stack.deliveries() if d["status"] == "pending"]
    assert len(pending) >= 30 - 12 + 1  # killed mid-run: the held one and the rest are owed

    raise_alerts(journey, 5, start=30)  # while no worker runs
    # The dead worker's claims are leased for LEASE; let that time pass (instead of waiting
    # it out) by moving every owed delivery's due time back by it.
    db = stack.services.database
    with db.transaction() as curs:
        curs.execute(
            f"UPDATE {db.table(DELIVERIES)} SET next_attempt_at = next_attempt_at - %s"
            " WHERE status = 'pending'",
            (LEASE + timedelta(seconds=1),),
        )

    worker = start_worker("second.log")
    try:
        raise_alerts(journey, 5, start=35)  # while the restarted worker runs
        due = stack.notifications()
        assert len(due) == 40
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if set(receiver.accepted("alerts")) == set(due) and all(
                d["status"] == "delivered" for d in stack.deliveries()
            ):
                break
            if worker.poll() is not None:
                break
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(20)

    missing = sorted(set(due) - set(receiver.accepted("alerts")))
    assert missing == [], f"never delivered: {missing}\n{(tmp_path / 'second.log').read_text()}"
    check_requests(receiver, "alerts", due)
    assert {d["status"] for d in stack.deliveries()} == {"delivered"}
    assert len(stack.deliveries()) == 40
    held = receiver.requests[11]
    assert held.accepted  # the receiver took it, but the worker died before hearing so ...
    assert sum(r.delivery_id == held.delivery_id for r in receiver.requests) == 2  # ... resent


def test_a_gate_refusal_is_announced_and_a_refused_command_is_not(
    stack: Stack, receiver: Receiver
) -> None:
    subscription = subscribe(stack, receiver, "gates", ["GATE_BLOCKED"])
    journey = Journey(stack.app).register()
    journey.satisfy(RequirementCode.PRIORITY_SCORED)
    before = stack.outbox()

    refused = stack.api.mutate("advanceStage", {"key": journey.key})
    assert refused["__typename"] == "GateBlocked", refused
    [row] = stack.outbox()[len(before) :]
    assert row["kind"] == Notification.GATE_BLOCKED
    assert row["originator_id"] is None  # announced on its own: no event was appended

    # Refusals other than a gate announce nothing and append nothing.
    after_gate = stack.outbox()
    version = journey.use_case.version
    rule = stack.api.mutate(
        "returnToStage", {"key": journey.key, "stage": "PILOT", "reason": "Back."}
    )
    assert rule["__typename"] == "RuleViolated", rule
    invalid = stack.api.mutate("retire", {"key": journey.key, "reason": ""})
    assert invalid["__typename"] == "ValidationFailed", invalid
    forbidden = stack.api.mutate(
        "retire", {"key": journey.key, "reason": "No."}, stack.api.tokens.viewer
    )
    assert forbidden["__typename"] == "Forbidden", forbidden
    unknown_alert = stack.post_event(
        "stagegate.quality.alert_resolved", journey.key, {"alertId": "none", "resolution": "-"}
    )
    assert unknown_alert["status"] == 422, unknown_alert
    # A write that loses a race is rolled back with everything written in its transaction.
    first, second = journey.use_case, journey.use_case
    for copy in (first, second):
        c.RaiseQualityAlert.parse(
            {"key": journey.key, "severity": "low", "description": "Twice?"}
        ).execute(copy, ctx().meta(), stack.app.policy())
    stack.app.save(first)
    with pytest.raises(IntegrityError):
        stack.app.save(second)
    assert journey.use_case.version == version + 1
    [alert] = stack.outbox()[len(after_gate) :]
    assert alert["kind"] == Notification.QUALITY_ALERT_RAISED
    assert alert["originator_version"] == version + 1
    assert_outbox_is_the_notified_events(stack)

    drain(stack.worker, stack.clock)
    [announced] = receiver.accepted("gates").values()  # the alert is not its type
    check_requests(receiver, "gates", stack.notifications(Notification.GATE_BLOCKED))
    document = announced.document
    assert document["type"] == "stagegate.gate.blocked"
    assert document["subject"] == journey.key
    assert "usecaseversion" not in document  # a refusal records no event
    assert document["data"]["stage"] == "proposed"
    assert document["data"]["target"] == "pilot"
    assert sorted(u["code"] for u in document["data"]["unmet"]) == sorted(
        u["code"] for u in refused["unmet"]
    )
    assert "PRIORITY_SCORED" not in {u["code"] for u in document["data"]["unmet"]}
    [entry] = delivery_log(stack, subscription).values()
    assert (entry["type"], entry["status"]) == ("GATE_BLOCKED", "delivered")


def test_a_removed_subscription_gets_nothing_new(stack: Stack, receiver: Receiver) -> None:
    kept = subscribe(stack, receiver, "kept")
    removed = subscribe(stack, receiver, "removed")
    receiver.scripts = {"removed": [503]}
    journey = Journey(stack.app).register()
    raise_alerts(journey, 1)
    assert stack.worker.run_once() > 0
    assert [r.answer for r in receiver.of("removed")] == [503]  # owed a retry

    result = stack.gql(REMOVE, {"id": removed})["data"]["result"]
    assert result == {"__typename": "WebhookSubscription", "id": removed, "active": False}
    raise_alerts(journey, 2, start=1)
    drain(stack.worker, stack.clock)

    assert [r.answer for r in receiver.of("removed")] == [503]  # no retry, nothing new
    assert set(receiver.accepted("kept")) == set(stack.notifications())
    assert len(receiver.accepted("kept")) == 3
    listed = {s["id"]: s for s in stack.gql(SUBSCRIPTIONS)["data"]["webhookSubscriptions"]}
    assert (listed[kept]["active"], listed[removed]["active"]) == (True, False)
    assert [d["status"] for d in listed[removed]["deliveries"]] == ["pending"]

    missing = stack.gql(REMOVE, {"id": str(uuid.uuid4())})["data"]["result"]
    assert missing["__typename"] == "NotFound", missing


def test_only_admins_manage_subscriptions(stack: Stack, receiver: Receiver) -> None:
    existing = subscribe(stack, receiver, "admins")
    tokens = stack.api.tokens
    others = {
        "editor": tokens.editor,
        "approver": tokens.approver,
        "viewer": tokens.viewer,
        "auditor": tokens.auditor,
        "integration": tokens.integration,
    }
    for role, token in others.items():
        created = stack.gql(CREATE, {"input": {"url": receiver.url(role), "secret": SECRET}}, token)
        assert created["data"]["result"]["__typename"] == "Forbidden", (role, created)
        removal = stack.gql(REMOVE, {"id": existing}, token)
        assert removal["data"]["result"]["__typename"] == "Forbidden", (role, removal)
        listing = stack.gql(SUBSCRIPTIONS, token=token)
        assert listing.get("data") is None, (role, listing)
        assert listing["errors"], (role, listing)
    [only] = stack.services.webhooks.list_subscriptions()
    assert (only.id, only.active) == (existing, True)

    for bad_input, path in (
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": receiver.url("short"), "secret": "short"}, "secret"),
        ({"url": receiver.url("plain"), "secret": LEGACY_SECRET}, "secret"),
        ({"url": receiver.url("tiny"), "secret": "whsec_" + "QUJD"}, "secret"),
        ({"url": receiver.url("not64"), "secret": "whsec_not*base64*at*all*0123456789"}, "secret"),
    ):
        refused = stack.gql(CREATE, {"input": bad_input})["data"]["result"]
        assert refused["__typename"] == "ValidationFailed", refused
        assert [e["path"] for e in refused["errors"]] == [path]
        if path == "secret":
            assert "whsec_" in refused["errors"][0]["message"] or "bytes" in str(refused)
    assert len(stack.services.webhooks.list_subscriptions()) == 1


# --- found while testing --------------------------------------------------------------------


class _CommitsLate(Database):
    """The store, but each transaction waits for ``go`` after its work, before committing."""

    def __init__(self, database: Database) -> None:
        super().__init__(database.datastore)
        self.written, self.go = threading.Event(), threading.Event()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        with super().transaction() as curs:
            yield curs
            self.written.set()
            self.go.wait(30)


@pytest.mark.postgres
def test_the_application_announces_a_gate_refusal_whatever_channel_asked(stack: Stack) -> None:
    """Issue 9: the announcement comes from the application, not from a transport's resolver:
    a refusal asked through the application directly (the CLI, a test) enters the outbox."""
    journey = Journey(stack.app).register()
    before = stack.outbox()

    with pytest.raises(GateBlocked):
        journey.advance()

    [row] = stack.outbox()[len(before) :]
    assert row["kind"] == Notification.GATE_BLOCKED
    assert json.loads(row["payload"])["key"] == journey.key


def test_a_gate_refusal_committing_after_a_later_event_is_still_delivered(
    postgres_stack: Stack, receiver: Receiver
) -> None:
    """An outbox row that commits after a higher-numbered one must not be skipped.

    A gate refusal's outbox row is inserted without an event; here its transaction is slow
    to commit (as under load) while another use case's event is being appended and the
    worker runs in between. The refusal holds the append lock, so the event waits for it and
    the fan-out cannot pass the refusal's row before it is committed.
    """
    stack = postgres_stack
    subscribe(stack, receiver, "everything")
    journey = Journey(stack.app).register()
    stack.app.announce_gate_refusal = None  # announced below, by hand, slowly
    with pytest.raises(GateBlocked) as refusal:
        journey.advance()
    slow = _CommitsLate(stack.services.database)
    announcing = threading.Thread(
        target=announce_gate_blocked,
        args=(slow, journey.key, refusal.value, ADMIN),
    )
    appending = threading.Thread(target=raise_alerts, args=(Journey(stack.app).register(), 1))
    announcing.start()
    try:
        assert slow.written.wait(10)
        appending.start()
        appending.join(1.0)
        assert appending.is_alive(), "an event was appended while a refusal was uncommitted"
        stack.worker.run_once()
    finally:
        slow.go.set()
        announcing.join(10)
        if appending.ident is not None:
            appending.join(10)
    drain(stack.worker, stack.clock)

    due = stack.notifications()
    assert sorted(row["kind"] for row in due.values()) == [
        Notification.GATE_BLOCKED,
        Notification.QUALITY_ALERT_RAISED,
    ]
    missing = {n: due[n]["kind"] for n in set(due) - set(receiver.accepted("everything"))}
    assert missing == {}, f"outbox rows never delivered: {missing}"


def test_the_docs_tell_a_receiver_how_to_verify_a_request() -> None:
    """The issue asks to document how a receiver verifies a signature; the code points to it."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = "\n".join(path.read_text() for path in docs if path.exists())
    needed_terms = (
        "Standard Webhooks",
        "webhook-signature",
        "whsec_",
        "HMAC-SHA256",
        "application/cloudevents+json",
        "Stagegate-Signature",  # how a receiver of the old headers moves over
        "STAGEGATE_WEBHOOK_ALLOW_HTTP",
        "STAGEGATE_WEBHOOK_ALLOWED_NETWORKS",
    )
    for needed in needed_terms:
        assert needed in text, (
            f"no document mentions {needed} (infra/webhooks.py cites docs/integrations.md)"
        )


# --- issue 12: Standard Webhooks beside the deprecated headers ------------------------------


def test_a_subscription_from_before_standard_webhooks_gets_both_signatures(
    stack: Stack, receiver: Receiver
) -> None:
    """A secret stored before this release (a plain string) keeps working: the old headers,
    signed as before, for one release; the Standard Webhooks ones keyed by the same bytes."""
    subscription = subscribe(stack, receiver, "legacy")
    db = stack.services.database
    with db.transaction() as curs:  # as an older release stored it
        curs.execute(
            f"UPDATE {db.table(SUBSCRIPTIONS_TABLE)} SET secret = %s WHERE id = %s",
            (LEGACY_SECRET, subscription),
        )
    migrated = "whsec_" + base64.b64encode(LEGACY_SECRET.encode()).decode()
    receiver.secrets["legacy"] = migrated  # the receiver's new check, as documented
    raise_alerts(Journey(stack.app).register(), 2)
    drain(stack.worker, stack.clock)

    requests = receiver.of("legacy")
    assert len(requests) == 2
    assert all(r.accepted for r in requests), [r.problem for r in requests]
    for request in requests:
        assert verify(LEGACY_SECRET.encode(), request.headers, request.body) is None
        assert verify_legacy(LEGACY_SECRET, request.headers, request.body) is None
        assert request.headers["Stagegate-Delivery"] == request.delivery_id
        assert request.headers["Stagegate-Event"] == request.document["type"]
        assert request.headers["Stagegate-Timestamp"] == request.headers["webhook-timestamp"]


# --- issue 12: the SSRF guard -------------------------------------------------------------


def test_a_url_into_a_non_public_network_is_refused_when_subscribed(stack: Stack) -> None:
    """With the defaults (https only, public addresses only) nothing below is subscribed; each
    refusal names the field and why. Nothing is sent: IP literals are judged as written, and
    names are resolved by the test's own resolver."""
    names = {"internal.example": ["10.0.0.5"], "split.example": ["93.184.215.14", "10.1.2.3"]}
    stack.services.webhooks.destinations = DestinationPolicy(
        resolve=lambda host, _port: [ip_address(a) for a in names[host]]
    )
    for url, why in (
        ("http://93.184.215.14/hook", "plain http is refused: use https, or set"),
        ("https://10.0.0.5/hook", "10.0.0.5 is a private address (RFC 1918)"),
        ("https://169.254.169.254/latest/", "169.254.169.254 is a cloud metadata service"),
        ("https://[::1]:8443/hook", "::1 is a loopback address"),
        ("https://[::ffff:127.0.0.1]/hook", "(that is 127.0.0.1) is a loopback address"),
        ("https://internal.example/hook", "internal.example resolves to 10.0.0.5, a private"),
        ("https://split.example/hook", "split.example resolves to 10.1.2.3, a private"),
    ):
        result = stack.gql(CREATE, {"input": {"url": url}})["data"]["result"]
        assert result["__typename"] == "ValidationFailed", (url, result)
        [error] = result["errors"]
        assert error["path"] == "url"
        assert why in error["message"], (url, error)
    assert stack.services.webhooks.list_subscriptions() == []


def test_a_url_refused_at_delivery_is_recorded_and_not_retried(
    stack: Stack, receiver: Receiver
) -> None:
    """Judged again at every delivery: a name that resolved to a public address when it was
    subscribed and resolves inwards now (DNS rebinding), or a loopback receiver once the
    administrator withdraws the allowance, is refused, said so in the log, and left there."""
    answers = {"hooks.example": ["93.184.215.14"]}
    public_then_private = DestinationPolicy(
        resolve=lambda host, _port: [ip_address(a) for a in answers[host]]
    )
    stack.services.webhooks.destinations = public_then_private
    created = stack.gql(CREATE, {"input": {"url": "https://hooks.example/hook"}})
    assert created["data"]["result"]["__typename"] == "CreatedWebhookSubscription", created
    rebinding = created["data"]["result"]["subscription"]["id"]
    stack.services.webhooks.destinations = DestinationPolicy(
        allow_http=True, allowed_networks=tuple(LOOPBACK)
    )
    withdrawn = subscribe(stack, receiver, "withdrawn")
    answers["hooks.example"] = ["10.0.0.5"]  # the name now points inwards
    stack.worker.destinations = public_then_private  # and loopback is no longer allowed
    raise_alerts(Journey(stack.app).register(), 2)

    drain(stack.worker, stack.clock)
    assert receiver.requests == []  # nothing was sent anywhere
    for subscription, why in (
        (rebinding, "refused: hooks.example resolves to 10.0.0.5, a private address"),
        (withdrawn, "refused: plain http is refused"),
    ):
        log = delivery_log(stack, subscription)
        assert len(log) == 2
        for entry in log.values():
            assert entry["status"] == "refused", entry
            assert entry["attempts"] == 1  # not retried
            assert entry["nextAttemptAt"] is None
            assert entry["lastError"].startswith(why), entry
    assert stack.services.webhooks.pending_count() == 0


def test_a_redirect_is_a_failed_delivery_and_is_not_followed(
    stack: Stack, receiver: Receiver
) -> None:
    subscription = subscribe(stack, receiver, "moved")
    receiver.scripts = {"moved": [302]}  # to the metadata service (Location), never asked
    raise_alerts(Journey(stack.app).register(), 1)
    assert stack.worker.run_once() > 0
    [entry] = delivery_log(stack, subscription).values()
    assert (entry["status"], entry["lastStatusCode"]) == ("pending", 302)
    assert "redirect, which is not followed" in entry["lastError"]
    assert len(receiver.requests) == 1
    drain(stack.worker, stack.clock)
    assert [r.answer for r in receiver.of("moved")] == [302, 200]
