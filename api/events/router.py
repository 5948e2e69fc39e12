"""``POST /v1/events``: CloudEvents 1.0 in structured mode, one or a batch, exactly once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from cloudevents.core.bindings.http import CE_PREFIX
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool

from api import telemetry
from api.auth import CurrentPrincipal, Principal
from api.events import kinds
from api.events.envelope import PostedEvent, Rejected, read_event
from api.events.ingest import Ingestion, Outcome
from api.limits import MAX_JSON_DEPTH, Refused, loads_json, too_large
from api.problems import PROBLEM_JSON, problem, problem_response
from domain.values import Role

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted by default (``STAGEGATE_MAX_BODY_BYTES``; enforced for every
route by ``api.limits.BodyGuard``)."""
MAX_BATCH = 500
"""Most events in one batch."""

router = APIRouter(tags=["integrations"])


class AcceptedEvent(BaseModel):
    status: str = Field(examples=["accepted"])
    source: str
    id: str
    type: str
    useCase: str = Field(description="The use case key (the event's subject).")  # noqa: N815
    version: int = Field(description="The use case's version after this event.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["https://stagegate.dev/problems/gate-blocked"])
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = Field(
        default=None, description="Invalid fields: `path` (e.g. `data.results`) and `message`."
    )
    unmet: list[dict[str, str]] | None = Field(
        default=None, description="With gate-blocked: every unmet requirement."
    )
    code: str | None = Field(default=None, description="With rule-violated: the rule's code.")


class BatchResults(BaseModel):
    results: list[dict[str, Any]] = Field(
        description="One outcome per event, in order: an accepted event (with `httpStatus` "
        "200) or a problem document (its `status` is the HTTP status it would have had)."
    )


def openapi_components() -> dict[str, Any]:
    """Schemas this route refers to: its answers and every event kind's data."""
    models: list[type[BaseModel]] = [AcceptedEvent, Problem, BatchResults]
    models += [kind.schema for kind in kinds.KINDS.values()]
    _, top = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = top["$defs"]
    return schemas


def _openapi() -> dict[str, Any]:
    every = list(kinds.KINDS.values())
    envelope = {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "subject", "data"],
        "properties": {
            "specversion": {"type": "string", "enum": ["1.0"]},
            "id": {"type": "string", "description": "Unique per source; a redelivery repeats it."},
            "source": {"type": "string", "description": "URI-reference of the sender."},
            "type": {"type": "string", "enum": [kind.name for kind in every]},
            "subject": {"type": "string", "description": "The use case key."},
            "time": {
                "type": "string",
                "format": "date-time",
                "description": "When it happened (business time); the server records its own.",
            },
            "datacontenttype": {"type": "string", "enum": ["application/json"]},
            "data": {
                "oneOf": [{"$ref": f"#/components/schemas/{k.schema.__name__}"} for k in every]
            },
        },
    }
    example = {
        "specversion": "1.0",
        "id": "eval-run-4711",
        "source": "https://ci.example.com/eval-harness",
        "type": "stagegate.evaluation.completed",
        "subject": "invoice-triage",
        "time": "2026-11-20T10:15:00Z",
        "datacontenttype": "application/json",
        "data": kinds.EvaluationCompleted.model_config["json_schema_extra"]["example"],  # type: ignore[index]
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                STRUCTURED: {"schema": envelope, "example": example},
                BATCH: {
                    "schema": {"type": "array", "items": envelope, "maxItems": MAX_BATCH},
                    "example": [example],
                },
            },
        }
    }


_PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


@router.post(
    "/v1/events",
    summary="Post lifecycle events (CloudEvents 1.0: structured or binary mode, one or a batch)",
    description=(
        "Structured mode (`application/cloudevents+json`), a batch "
        "(`application/cloudevents-batch+json`), or one event in binary mode (attributes as "
        "`ce-` headers, data as `application/json`: the same event as its structured form). "
        "Each event's `type` is one of the stagegate types, its `subject` a use case key, its "
        "`time` the business time. `source` + `id` identify a delivery: a redelivery appends "
        "nothing and gets the first answer again; the same `source` + `id` with other content "
        "is a 409. A batch answers 200 with one outcome per event, in order. Bodies up to "
        f"STAGEGATE_MAX_BODY_BYTES ({MAX_BODY_BYTES} bytes unless set), batches up to "
        f"{MAX_BATCH} events, JSON nested up to {MAX_JSON_DEPTH} levels. Needs an integration "
        "token bound to the event's source (and, if it names any, to its type)."
    ),
    responses={
        200: {
            "description": "The event was applied (or was, the first time it was delivered); "
            "for a batch, every event's outcome.",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/AcceptedEvent"},
                            {"$ref": "#/components/schemas/BatchResults"},
                        ]
                    }
                }
            },
        },
        400: {
            "description": "Malformed JSON, JSON nested too deep, or an invalid CloudEvent.",
            "content": _PROBLEM,
        },
        408: {"description": "The body did not arrive in time.", "content": _PROBLEM},
        401: {"description": "No valid bearer token.", "content": _PROBLEM},
        403: {"description": "The token may not post this source or type.", "content": _PROBLEM},
        404: {"description": "No use case has the event's subject as key.", "content": _PROBLEM},
        409: {"description": "Same source + id, other content.", "content": _PROBLEM},
        413: {"description": "Body or batch too large.", "content": _PROBLEM},
        415: {
            "description": "Neither CloudEvents JSON nor binary mode with JSON data.",
            "content": _PROBLEM,
        },
        422: {
            "description": "Unknown type, invalid data, or refused by a gate or rule.",
            "content": _PROBLEM,
        },
        503: {"description": "The store did not take the write; retry.", "content": _PROBLEM},
    },
    openapi_extra=_openapi(),
)
async def post_events(request: Request, principal: CurrentPrincipal) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    binary = BINARY_SPECVERSION in request.headers
    if binary and content_type not in BINARY_DATA:
        return problem_response(
            problem(
                "unsupported-media-type",
                "Unsupported media type",
                415,
                "In binary content mode the body is the event's data, a JSON object: send it "
                f"as application/json, not '{content_type or 'no content type'}'.",
            )
        )
    if not binary and content_type not in (STRUCTURED, BATCH):
        return problem_response(
            problem(
                "unsupported-media-type",
                "Unsupported media type",
                415,
                f"Send {STRUCTURED} (one event), {BATCH} (a JSON array of events), or one "
                f"event in binary content mode (its attributes as ce-* headers, its data as "
                f"application/json), not '{content_type or 'no content type'}'.",
            )
        )
    body = await request.body()  # no more than the body guard lets through
    try:
        # Decoding (and below, reading each event) is CPU work: a worker thread's, so that a
        # large body does not hold the event loop.
        raw = await run_in_threadpool(loads_json, body)
    except Refused as refused:
        return problem_response(refused.document)
    if binary:
        raw = structured_from_binary(request.headers, content_type, raw)
    if principal.actor.role is not Role.INTEGRATION:
        return problem_response(
            problem(
                "forbidden",
                "Forbidden",
                403,
                "Lifecycle events are posted with an integration token "
                "('stagegate token create --role integration --source ...').",
            )
        )
    batch = content_type == BATCH
    if batch and not isinstance(raw, list):
        return problem_response(
            problem("invalid-batch", "Invalid batch", 400, f"{BATCH} is a JSON array of events.")
        )
    items = raw if batch else [raw]
    if len(items) > MAX_BATCH:
        return problem_response(too_large(f"A batch holds at most {MAX_BATCH} events."))
    events = await run_in_threadpool(_read_events, items, principal)
    ingestion: Ingestion = request.app.state.backends.ingestion
    outcomes = await run_in_threadpool(
        ingestion.ingest, events, principal.actor, request.state.correlation_id
    )
    if request.app.state.counting:
        for event, outcome in zip(events, outcomes, strict=True):
            posted = event.type if isinstance(event, PostedEvent) else None
            telemetry.cloudevent(posted, outcome.status)
    if batch:
        return JSONResponse({"results": [_result(o) for o in outcomes]})
    [outcome] = outcomes
    if outcome.status >= 400:
        return problem_response(outcome.body)
    return JSONResponse(status_code=outcome.status, content=outcome.body)


BINARY_SPECVERSION = "ce-specversion"
"""The header that makes a request one event in binary content mode (CloudEvents HTTP binding,
section 3.1)."""
BINARY_DATA = ("application/json", "text/json")


def structured_from_binary(headers: Mapping[str, str], content_type: str, data: Any) -> Any:
    """The event a binary-mode request carries, as the structured-mode JSON object it equals:
    every ``ce-`` header an attribute (percent-decoded, as the HTTP binding says), the content
    type its ``datacontenttype``, the body its ``data``. Read as any structured event, it is
    judged, deduplicated and fingerprinted alike: one delivery, whichever mode carries it."""
    event: dict[str, Any] = {
        name[len(CE_PREFIX) :]: unquote(value)
        for name, value in headers.items()
        if name.lower().startswith(CE_PREFIX) and len(name) > len(CE_PREFIX)
    }
    event["datacontenttype"] = content_type
    event["data"] = data
    return event


def _read_events(items: list[Any], principal: Principal) -> list[PostedEvent | Rejected]:
    return [_scoped(read_event(item), principal) for item in items]


def _scoped(event: PostedEvent | Rejected, principal: Principal) -> PostedEvent | Rejected:
    """An integration token posts for its own sources (and types, if it names any)."""
    if not isinstance(event, PostedEvent):
        return event
    if event.source not in principal.sources:
        allowed = ", ".join(principal.sources) or "none"
        return Rejected(
            problem(
                "source-not-allowed",
                "Source not allowed",
                403,
                f"This token may post as these sources only: {allowed}; not '{event.source}'.",
            )
        )
    if principal.event_types and event.type not in principal.event_types:
        return Rejected(
            problem(
                "type-not-allowed",
                "Type not allowed",
                403,
                f"This token may post these types only: {', '.join(principal.event_types)}; "
                f"not '{event.type}'.",
            )
        )
    return event


def _result(outcome: Outcome) -> dict[str, Any]:
    if outcome.status >= 400:
        return outcome.body
    return {**outcome.body, "httpStatus": outcome.status}
