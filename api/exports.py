"""Exports over HTTP for auditors and admins.

- ``GET /v1/use-cases/{key}/history``: the use case's whole history as JSON Lines, the format
  of ``stagegate audit export`` (each event with its hashes, then a line with the chain's
  head), streamed; ``docs/verify_export.py`` verifies it offline.
- ``GET /v1/portfolio/inventory``: every use case, as JSON (``?format=json``, the default) or
  CSV (``?format=csv``): stage, owners, dates, gate, latest evaluation, measured improvement,
  value and budget (``projections.inventory``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentPrincipal, refused_unless
from api.problems import problem, problem_response
from domain import clock
from domain.errors import NotFound
from domain.values import Role
from projections.inventory import CSV_COLUMNS, csv_row, inventory_row
from projections.readmodels import UseCaseFilter

EXPORT_ROLES = frozenset({Role.ADMIN, Role.AUDITOR})
PAGE = 200
"""Use cases read from the read model at a time while the inventory streams."""

router = APIRouter(tags=["exports"])


@router.get(
    "/v1/use-cases/{key}/history",
    summary="A use case's history as JSON Lines (auditors, admins)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}}, 403: {}, 404: {}},
)
async def export_history(key: str, request: Request, principal: CurrentPrincipal) -> Response:
    refused = refused_unless(principal, EXPORT_ROLES, "export history")
    if refused is not None:
        return refused
    lines: Callable[[str], Iterator[str]] = request.app.state.backends.export_history
    try:
        # Read before the answer starts, so a missing use case is a 404, not a cut stream.
        iterator = await run_in_threadpool(lambda: _started(lines(key)))
    except NotFound:
        return problem_response(
            problem("not-found", "Not found", 404, f"There is no use case '{key}'.")
        )
    filename = f"{key}-history.jsonl"
    return StreamingResponse(
        iterator,  # a plain iterator: Starlette draws it on a worker thread
        media_type="application/jsonl",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _started(lines: Iterator[str]) -> Iterator[str]:
    first = next(lines, None)
    if first is None:
        return iter(())

    def rest() -> Iterator[str]:
        yield first
        yield from lines

    return rest()


@router.get(
    "/v1/portfolio/inventory",
    summary="Every use case with its stage, gate, evidence and value (auditors, admins)",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}, 403: {}},
)
async def export_inventory(
    request: Request, principal: CurrentPrincipal, format: Literal["json", "csv"] = "json"
) -> Response:
    refused = refused_unless(principal, EXPORT_ROLES, "export the inventory")
    if refused is not None:
        return refused
    backends = request.app.state.backends
    policy = await run_in_threadpool(backends.stagegate.policy)
    at = clock.now()  # every row's gate judged at the same instant

    def rows() -> Iterator[dict[str, object]]:
        after = None
        while True:
            page = backends.read_models.use_cases(UseCaseFilter(), PAGE, after)
            for record in page.items:
                yield inventory_row(record, policy, at)
            if not page.has_next_page:
                return
            after = page.cursors[-1]

    if format == "csv":
        return StreamingResponse(
            _csv(rows()),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="inventory.csv"'},
        )
    return StreamingResponse(_json_array(rows()), media_type="application/json")


def _csv(rows: Iterator[dict[str, object]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(csv_row(row))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _json_array(rows: Iterator[dict[str, object]]) -> Iterator[str]:
    yield "["
    for n, row in enumerate(rows):
        yield ("," if n else "") + json.dumps(row, ensure_ascii=False, allow_nan=False)
    yield "]"
