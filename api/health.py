"""Liveness and readiness probes (no token needed: orchestrators call them)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from projections.readmodels import ProjectionFault

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    # On the event loop: a plain function would be sent to a worker thread and back.
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The process can reach its database; any event a read model set aside is named",
    description=(
        "503 when the database does not answer. Otherwise 200: `ok`, or `degraded` when a "
        "projection set events aside that its read model could not hold (the service still "
        "takes commands and serves reads; those read models lack the events until "
        "`stagegate projections rebuild` after the cause is fixed). `projectionFaults` counts "
        "them and `faults` names the first: projection, use case id, version and log "
        "position; the reasons, which may quote what was stored, are for "
        "`stagegate projections status`, not for an unauthenticated probe."
    ),
)
async def readyz(request: Request) -> JSONResponse:
    backends = request.app.state.backends

    def check() -> tuple[int, list[ProjectionFault]]:
        request.app.state.check_ready()
        faults: tuple[int, list[ProjectionFault]] = backends.read_models.projection_faults(5)
        return faults

    try:
        count, faults = await run_in_threadpool(check)
    except Exception as error:
        log.warning("readiness check failed: %s", error)
        return JSONResponse(
            status_code=503, content={"status": "unavailable", "detail": "database unreachable"}
        )
    if not count:
        return JSONResponse(content={"status": "ok"})
    return JSONResponse(
        content={
            "status": "degraded",
            "projectionFaults": count,
            "faults": [
                {
                    "projection": fault.projection,
                    "useCaseId": fault.aggregate_id,
                    "version": fault.version,
                    "notificationId": fault.notification_id,
                }
                for fault in faults
            ],
        }
    )
