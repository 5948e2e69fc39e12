"""Applying posted events exactly once, and answering each with its first outcome.

A delivery (``source`` + ``id``) already on record is answered as it was the first time (or
refused as a conflict if its content changed). Others are turned into domain commands; the
accepted ones are saved together, their delivery records written by the store in the same
transaction; refusals keep their answer in the delivery log. A lost race (a concurrent
duplicate, or another writer on the same use case) is settled by looking the delivery up again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from api.events.envelope import PostedEvent, Rejected, invalid_data
from api.problems import problem
from domain import clock
from domain import errors as e
from domain.application import Accepted, BatchItem, Stagegate
from domain.metadata import Actor, CommandContext
from domain.values import Channel

log = logging.getLogger(__name__)

ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]


class Delivery(Protocol):
    """What the delivery log holds of one delivery."""

    @property
    def source(self) -> str: ...
    @property
    def delivery_id(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def response(self) -> dict[str, Any] | None: ...
    @property
    def version(self) -> int | None: ...


class DeliveryLog(Protocol):
    def find(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]: ...
    def record_refusals(self, records: Sequence[Any]) -> None: ...


RefusalRecord = Callable[[str, str, str, int, dict[str, Any]], Any]
"""Builds the log's record of a refusal: (source, id, fingerprint, status, response)."""


class Ingestion:
    def __init__(
        self,
        stagegate: Stagegate,
        deliveries: DeliveryLog,
        refusal_record: RefusalRecord,
        after_writes: Callable[[], None],
    ) -> None:
        self.stagegate = stagegate
        self.deliveries = deliveries
        self.refusal_record = refusal_record
        self.after_writes = after_writes

    def ingest(
        self, events: Sequence[PostedEvent | Rejected], actor: Actor, correlation_id: str
    ) -> list[Outcome]:
        """One outcome per event, in order."""
        outcomes: list[Outcome | None] = [None] * len(events)
        pending: dict[tuple[str, str], list[int]] = {}
        for index, event in enumerate(events):
            if isinstance(event, Rejected) and event.fingerprint is None:
                outcomes[index] = Outcome(event.problem["status"], event.problem)
            else:
                assert event.source is not None
                assert event.id is not None
                pending.setdefault((event.source, event.id), []).append(index)
        try:
            recorded = self.deliveries.find(list(pending))
        except e.StoreUnavailable as error:
            return [o or Outcome(503, _unavailable(error)) for o in outcomes]
        fresh: list[int] = []
        for key, indexes in pending.items():
            if key in recorded:
                for index in indexes:
                    outcomes[index] = self._replay(events[index], recorded[key])
            else:
                fresh.append(indexes[0])  # later copies in the batch replay its outcome
        self._apply(events, fresh, outcomes, actor, correlation_id)
        # Lost races and later copies within the batch are answered from the log's record.
        unsettled = [k for k, ix in pending.items() if any(outcomes[i] is None for i in ix)]
        unavailable: Outcome | None = None
        try:
            settled = self.deliveries.find(unsettled) if unsettled else {}
        except e.StoreUnavailable as error:
            # What was accepted stays answered as accepted; only these are left unknown.
            settled, unavailable = {}, Outcome(503, _unavailable(error))
        for key, indexes in pending.items():
            for index in indexes:
                if outcomes[index] is not None:
                    continue
                record = settled.get(key)
                outcomes[index] = (
                    self._replay(events[index], record)
                    if record is not None
                    else unavailable or Outcome(409, _lost_race(key))
                )
        self.after_writes()
        return [outcome for outcome in outcomes if outcome is not None]

    def _apply(
        self,
        events: Sequence[PostedEvent | Rejected],
        fresh: list[int],
        outcomes: list[Outcome | None],
        actor: Actor,
        correlation_id: str,
    ) -> None:
        refusals: list[Any] = []
        posted = [i for i in fresh if isinstance(events[i], PostedEvent)]
        for i in fresh:
            event = events[i]
            if isinstance(event, Rejected):
                refusals.append(self._refusal(event, event.problem))
        items = [self._item(events[i], actor, correlation_id) for i in posted]  # type: ignore[arg-type]
        spans = [event_span(events[i]) for i in posted]  # type: ignore[arg-type]
        results: Sequence[Accepted | e.DomainError] = []
        unavailable: e.StoreUnavailable | None = None
        try:
            results = self.stagegate.execute_batch(items) if items else []
        except e.VersionConflict:
            results = [self._one_by_one(item) for item in items]
        except e.StoreUnavailable as error:
            unavailable = error
            results = [error] * len(items)
        finally:
            for n, span in enumerate(spans):
                # No result past the last one: an unexpected error failed the request.
                span.set_attribute(
                    "stagegate.outcome", _outcome_name(results[n] if n < len(results) else None)
                )
                span.end()
        if unavailable is not None:
            for i in posted:
                outcomes[i] = Outcome(503, _unavailable(unavailable))
            return
        for i, result in zip(posted, results, strict=True):
            event = events[i]
            assert isinstance(event, PostedEvent)
            if isinstance(result, Accepted):
                outcomes[i] = Outcome(200, accepted_body(event, result.version))
            elif isinstance(result, e.StoreUnavailable):
                outcomes[i] = Outcome(503, _unavailable(result))
            elif isinstance(result, e.VersionConflict):
                outcomes[i] = None  # a concurrent duplicate won: its record answers
            else:
                refusals.append(self._refusal(event, problem_for(result)))
        try:
            self.deliveries.record_refusals(refusals)
        except e.StoreUnavailable:
            # The refusals are still answered; unrecorded, a redelivery is judged again.
            log.warning(
                "%d refusals answered but not recorded: the store was unavailable", len(refusals)
            )

    def _one_by_one(self, item: BatchItem) -> Accepted | e.DomainError:
        """One item in its own transaction, retried while another writer wins the race."""
        ctx = item.ctx
        for attempt in range(ATTEMPTS):
            try:
                if attempt and self.deliveries.find([(ctx.source or "", ctx.delivery_id or "")]):
                    return e.VersionConflict(item.key, None, None)  # its duplicate got in first
                [result] = self.stagegate.execute_batch([item])
            except e.VersionConflict:
                continue
            except e.StoreUnavailable as error:
                return error
            return result
        conflict = e.VersionConflict(item.key, None, None)
        self.stagegate.observe_outcome(item.command_type, conflict)  # its attempts were not
        return conflict

    def _item(self, event: PostedEvent, actor: Actor, correlation_id: str) -> BatchItem:
        ctx = CommandContext(
            actor=actor,
            channel=Channel.CLOUDEVENTS,
            correlation_id=correlation_id,
            source=event.source,
            delivery_id=event.id,
            delivery_fingerprint=event.fingerprint,
        )
        occurred = event.time or clock.now()
        return BatchItem(
            key=event.subject,
            command=lambda state: event.data.command(event.subject, occurred, state),
            ctx=ctx,
        )

    def _refusal(self, event: PostedEvent | Rejected, document: dict[str, Any]) -> Any:
        assert event.source is not None
        assert event.id is not None
        assert event.fingerprint is not None
        return self.refusal_record(
            event.source, event.id, event.fingerprint, int(document["status"]), document
        )

    def _replay(self, event: PostedEvent | Rejected, record: Any) -> Outcome:
        if record.fingerprint != event.fingerprint:
            return Outcome(
                409,
                problem(
                    "delivery-conflict",
                    "Delivery conflict",
                    409,
                    f"An event with source '{record.source}' and id '{record.delivery_id}' was "
                    "already delivered with different content; an id names one event forever. "
                    "Send a new event with a new id.",
                ),
            )
        if record.response is not None:
            return Outcome(record.status, record.response)
        assert isinstance(event, PostedEvent)
        assert record.version is not None
        return Outcome(record.status, accepted_body(event, record.version))


def accepted_body(event: PostedEvent, version: int) -> dict[str, Any]:
    return {
        "status": "accepted",
        "source": event.source,
        "id": event.id,
        "type": event.type,
        "useCase": event.subject,
        "version": version,
    }


def problem_for(error: e.DomainError) -> dict[str, Any]:
    """The problem document of a domain refusal (the one place this happens for HTTP)."""
    if isinstance(error, e.ValidationFailed):
        return invalid_data(error)
    if isinstance(error, e.NotFound):
        return problem(
            "unknown-use-case",
            "Unknown use case",
            404,
            f"{error.message}; the event's subject must be the key of a registered use case.",
        )
    if isinstance(error, e.GateBlocked):
        return problem(
            "gate-blocked",
            "Gate blocked",
            422,
            error.message,
            unmet=[{"code": r.code.value, "message": r.message} for r in error.unmet],
        )
    if isinstance(error, e.RuleViolated):
        return problem("rule-violated", "Rule violated", 422, error.message, code=error.code.value)
    if isinstance(error, e.Forbidden):
        return problem("forbidden", "Forbidden", 403, error.message)
    if isinstance(error, e.VersionConflict):
        return problem("version-conflict", "Version conflict", 409, error.message)
    raise TypeError(f"unmapped domain error {type(error).__name__}")


def _lost_race(key: tuple[str, str]) -> dict[str, Any]:
    return problem(
        "version-conflict",
        "Version conflict",
        409,
        f"Event '{key[1]}' from '{key[0]}' kept losing races with other writers to its use "
        "case; nothing was written. Deliver it again.",
    )


def _unavailable(error: e.StoreUnavailable) -> dict[str, Any]:
    # Either way a redelivery (same source and id) is safe: a stored one is answered again.
    written = "unknown" if error.written is None else error.written
    return problem("store-unavailable", "Service unavailable", 503, error.message, written=written)


_tracer = trace.get_tracer("stagegate.cloudevents")


def _outcome_name(result: Accepted | e.DomainError | None) -> str:
    if result is None:
        return "failed"  # an unexpected error: the request fails with it
    return "accepted" if isinstance(result, Accepted) else type(result).__name__


def event_span(event: PostedEvent) -> Span:
    """A span for one posted event's processing, ended by the caller. It continues the trace
    of the event's own ``traceparent`` where it has one (the CloudEvents distributed-tracing
    extension), linked to the HTTP request that carried it; else the request's trace."""
    carried = None
    links = []
    if event.trace_parent is not None:
        carrier = {"traceparent": event.trace_parent}
        if event.trace_state is not None:
            carrier["tracestate"] = event.trace_state
        carried = TraceContextTextMapPropagator().extract(carrier)
        request = trace.get_current_span().get_span_context()
        if request.is_valid:
            links.append(Link(request))
    return _tracer.start_span(
        f"cloudevent {event.type}",
        context=carried,
        links=links,
        kind=SpanKind.CONSUMER,
        attributes={
            "cloudevents.event_id": event.id,
            "cloudevents.event_source": event.source,
            "cloudevents.event_type": event.type,
            "cloudevents.event_subject": event.subject,
        },
    )
