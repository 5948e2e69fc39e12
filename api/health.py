"""Liveness and readiness probes (no token needed: orchestrators call them)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The process can reach its database")
async def readyz(request: Request) -> JSONResponse:
    try:
        await run_in_threadpool(request.app.state.check_ready)
    except Exception as error:
        log.warning("readiness check failed: %s", error)
        return JSONResponse(
            status_code=503, content={"status": "unavailable", "detail": "database unreachable"}
        )
    return JSONResponse(content={"status": "ok"})
