"""``/portal``: the reference portal, a static page that reads everything through GraphQL.

The page (``api/portal/static/``: HTML, CSS and JavaScript modules, no build step) is shipped inside
the package and served as it is. It needs no token to load: it asks for one, and sends it on
its own GraphQL calls, so roles apply to it as to any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

PORTAL_FILES = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    # The page holds a bearer token: nothing but its own files may run in it or be loaded by
    # it, and it talks to this origin alone ('self' covers ws:// and wss:// to it, CSP 3).
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    # A new release's files are fetched again once the server says they changed.
    "cache-control": "no-cache",
}


class PortalFiles(StaticFiles):
    """The portal's files, each answer with the page's security headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.decode("latin-1").lower() != "cache-control"
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def mount_portal(app: FastAPI) -> None:
    """Serve the portal at ``/portal/`` (``/portal`` redirects there, so the page's relative
    links to its own files resolve under it)."""

    @app.get("/portal", include_in_schema=False)
    async def portal_without_slash() -> RedirectResponse:
        # Relative, so it holds behind a proxy that serves stagegate under a path prefix.
        return RedirectResponse("portal/", status_code=308)

    app.mount("/portal", PortalFiles(directory=PORTAL_FILES, html=True), name="portal")
