"""Helpers for the ``POST /v1/events`` tests: events to post, and what the store holds after.

Everything is posted over real HTTP to the server the ``api`` fixture starts; what was appended
is read straight from the store (the use case's events, the store-wide notification log, the
delivery table), never from the API under test.
"""

from __future__ import annotations

import json
import threading
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from domain import commands as c
from domain.application import Stagegate
from domain.usecase import use_case_id
from domain.values import Stage
from infra.bootstrap import Services
from tests.builders import Journey
from tests.e2e.conftest import INTEGRATION_SOURCE, Api

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
PROBLEM_JSON = "application/problem+json"
PROBLEMS = "https://stagegate.dev/problems/"
DOCUMENTED_MAX_BODY_BYTES = 1024 * 1024
"""The documented body limit (1 MiB), written out here so a silent change to it shows."""
DOCUMENTED_MAX_BATCH = 500

EVALUATION = "stagegate.evaluation.completed"
DEPLOYMENT = "stagegate.deployment.completed"
ROLLBACK = "stagegate.deployment.rolled_back"
METRIC = "stagegate.metric.measured"
ADOPTION = "stagegate.adoption.measured"
COST = "stagegate.cost.reported"
ALERT_RAISED = "stagegate.quality.alert_raised"
ALERT_RESOLVED = "stagegate.quality.alert_resolved"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours)


def cloud_event(
    type: str,
    subject: str,
    data: Any,
    *,
    id: str | None = None,
    source: str = INTEGRATION_SOURCE,
    time: datetime | str | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    """A structured-mode CloudEvent 1.0 as a JSON object (a fresh id unless given)."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": id or f"delivery-{uuid.uuid4()}",
        "source": source,
        "type": type,
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }
    if time is not None:
        event["time"] = iso(time) if isinstance(time, datetime) else time
    event.update(attributes)
    return event


def aimed(event: Any, key: str, source: str) -> Any:
    """A generated event posted as ``source`` and, for half of the subjects (by their hash,
    so a case replays the same), to the real use case ``key``: fuzzing then reaches the
    domain, not only the envelope checks."""
    if not isinstance(event, dict):
        return event
    aimed = dict(event)
    if isinstance(aimed.get("source"), str):
        aimed["source"] = source
    subject = aimed.get("subject")
    if isinstance(subject, str) and zlib.crc32(subject.encode()) % 2 == 0:
        aimed["subject"] = key
    return aimed


def adoption(subject: str, active: int = 30, target: int = 50, **kw: Any) -> dict[str, Any]:
    """An event every registered use case accepts, at any stage."""
    return cloud_event(ADOPTION, subject, {"activeUsers": active, "targetUsers": target}, **kw)


def post(
    api: Api,
    body: Any,
    *,
    token: str | None = "integration",
    content_type: str | None = STRUCTURED,
    client: httpx.Client | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a body (JSON-encoded unless it is bytes) to /v1/events.

    ``token`` is a ``Tokens`` attribute name or a secret; None sends no Authorization header.
    """
    headers = dict(headers or {})
    if token is not None:
        secret = getattr(api.tokens, token, token)
        headers["Authorization"] = f"Bearer {secret}"
    if content_type is not None:
        headers["Content-Type"] = content_type
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (client or api.http).post("/v1/events", content=content, headers=headers)


def post_batch(api: Api, events: list[Any], **kw: Any) -> httpx.Response:
    return post(api, events, content_type=BATCH, **kw)


def assert_problem(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with this status and ``type``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    document: dict[str, Any] = response.json()
    assert document["type"] == PROBLEMS + reason, document
    assert document["status"] == status, document
    for member in ("title", "detail"):
        assert isinstance(document[member], str), document
        assert document[member].strip(), document
    return document


# --- what the store holds ------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    source: str
    delivery_id: str
    fingerprint: str
    status: int
    response: dict[str, Any] | None
    originator_id: str | None
    originator_version: int | None


def deliveries(services: Services) -> list[Delivery]:
    """Every row of the delivery table, read directly."""
    db = services.database
    with db.transaction() as curs:
        curs.execute(
            "SELECT source, delivery_id, fingerprint, status, response, originator_id,"
            f" originator_version FROM {db.table('stagegate_deliveries')}"
            " ORDER BY source, delivery_id"
        )
        rows = curs.fetchall()
    return [
        Delivery(
            source=row["source"],
            delivery_id=row["delivery_id"],
            fingerprint=row["fingerprint"],
            status=int(row["status"]),
            response=json.loads(row["response"]) if row["response"] else None,
            originator_id=str(row["originator_id"]) if row["originator_id"] else None,
            originator_version=(
                int(row["originator_version"]) if row["originator_version"] is not None else None
            ),
        )
        for row in rows
    ]


def deliveries_of(services: Services, delivery_id: str) -> list[Delivery]:
    return [d for d in deliveries(services) if d.delivery_id == delivery_id]


def events_of(app: Stagegate, key: str) -> list[Any]:
    """Every domain event of a use case, oldest first, read from the event store."""
    return list(app.events.get(use_case_id(key)))


def appended_total(services: Services) -> int:
    """How many events the whole store holds (every aggregate's, counted in its table)."""
    db = services.database
    table = db.table(services.app.recorder.events_table_name)  # type: ignore[attr-defined]
    with db.transaction() as curs:
        curs.execute(f"SELECT COUNT(*) AS n FROM {table}")
        row = curs.fetchone()
    assert row is not None
    return int(row["n"])


@dataclass(frozen=True)
class StoreMark:
    """The store as it stood: compare later to prove nothing (or exactly what) was appended."""

    total: int
    deliveries: tuple[Delivery, ...]

    @classmethod
    def take(cls, services: Services) -> StoreMark:
        return cls(appended_total(services), tuple(deliveries(services)))

    def appended_since(self, services: Services) -> int:
        return appended_total(services) - self.total

    def new_deliveries(self, services: Services) -> list[Delivery]:
        before = {(d.source, d.delivery_id) for d in self.deliveries}
        return [d for d in deliveries(services) if (d.source, d.delivery_id) not in before]


def post_concurrently(
    api: Api, bodies: list[Any], *, content_type: str = STRUCTURED, token: str = "integration"
) -> list[httpx.Response]:
    """POST every body at once, one thread and connection each, released together."""
    barrier = threading.Barrier(len(bodies))
    clients = [httpx.Client(base_url=api.base_url, timeout=60.0) for _ in bodies]

    def send(index: int) -> httpx.Response:
        client = clients[index]
        client.get("/healthz")  # open the connection before the race starts
        barrier.wait()
        return post(api, bodies[index], token=token, content_type=content_type, client=client)

    try:
        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            return list(pool.map(send, range(len(bodies))))
    finally:
        for client in clients:
            client.close()


# --- use cases in the stages the events need -------------------------------------------------


def registered(app: Stagegate) -> Journey:
    return Journey(app).register()


def registered_and_marked(services: Services) -> tuple[Journey, int, StoreMark]:
    """A newly registered use case, its version, and the store as it stands before a test
    posts anything."""
    journey = registered(services.app)
    return journey, journey.use_case.version, StoreMark.take(services)


CHANGE_VERSION = {"label": "v2", "model": "gpt-y", "prompt": "prompt-2"}


def in_acceptance(app: Stagegate) -> Journey:
    """In ACCEPTANCE with criteria and candidate ``v1``: evaluations of v1 are accepted, a
    production deployment is not (the gate into DEPLOYMENT has not been passed)."""
    journey = Journey(app).register().reach(Stage.ACCEPTANCE)
    journey.issue(
        c.RegisterCandidateVersion,
        version={"label": "v1", "model": "gpt-x", "prompt": "prompt-1"},
    )
    return journey


def open_deployment_gate(journey: Journey) -> None:
    journey.satisfy_gate(Stage.DEPLOYMENT)
    journey.advance(Stage.DEPLOYMENT)


def in_deployment(app: Stagegate) -> Journey:
    """In DEPLOYMENT with ``v1`` signed off (deployable) and ``v2`` requested but not approved,
    and a baseline for ``BASELINE_METRIC`` only."""
    journey = Journey(app).register().reach(Stage.DEPLOYMENT)
    journey.issue(c.RequestChange, to_version=CHANGE_VERSION, reason="cheaper model")
    return journey
