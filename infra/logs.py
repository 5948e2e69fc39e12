"""How a server process logs: text for people, or JSON Lines for a log collector.

``STAGEGATE_LOG_FORMAT=json`` writes one JSON object per line (python-json-logger): ``time``,
``level``, ``logger``, ``message``, and whatever a record carries beside its message (each
request's line, ``api.telemetry``: ``correlation_id``, ``actor``, ``role``, ``operation``,
``outcome``, ``status``, ``duration_ms``, ``error_code``), a traceback as ``exc_info``. Every
line is redacted as a whole before it is written, so a secret cannot slip out through a
field that the record filter (``api.redaction``) does not rewrite.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from api.redaction import install_redaction, redact
from infra.settings import Settings

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class RedactedJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, its whole output redacted (``api.redaction``)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def json_formatter() -> logging.Formatter:
    return RedactedJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def handler_for(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    return handler


def configure_logging(settings: Settings) -> None:
    """The root logger of this process writes every record in the configured format."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        handlers=[handler_for(settings.log_format)],
        force=True,
    )
    install_redaction()  # on the handler just configured too


def uvicorn_logging(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging options: in JSON mode uvicorn configures no handler of its own, so
    its records reach the root logger's JSON one; its access log is off either way, since
    each request's line (``api.requests``) says all it says and more."""
    options: dict[str, Any] = {"log_level": settings.log_level, "access_log": False}
    if settings.log_format == "json":
        options["log_config"] = None
    return options
