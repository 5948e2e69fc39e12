"""RFC 9457 problem details: every HTTP error has one shape and a stable ``type`` per reason."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_BASE = "https://stagegate.dev/problems/"
PROBLEM_JSON = "application/problem+json"


def problem(reason: str, title: str, status: int, detail: str, **extensions: Any) -> dict[str, Any]:
    """A problem document; ``reason`` is the stable part of its ``type``."""
    return {
        "type": PROBLEM_BASE + reason,
        "title": title,
        "status": status,
        "detail": detail,
        **extensions,
    }


def problem_response(
    document: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=int(document["status"]),
        content=document,
        headers=headers,
        media_type=PROBLEM_JSON,
    )
