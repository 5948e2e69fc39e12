"""How a server process logs: text for people, or JSON Lines for a log collector.

``STAGEGATE_LOG_FORMAT=json`` writes one JSON object per line (python-json-logger): ``time``,
``level``, ``logger``, ``message``, and whatever a record carries beside its message (each
request's line, ``api.telemetry``: ``correlation_id``, ``actor``, ``role``, ``operation``,
``outcome``, ``status``, ``duration_ms``, ``error_code``), a traceback as ``exc_info``. Every
value is redacted before it is written, so a secret cannot slip out through a field that the
record filter (``api.redaction``) does not rewrite.
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
    """python-json-logger's formatter, every string it writes redacted (``api.redaction``):
    each value before it is encoded, since a pattern run over the encoded line would meet
    JSON's escapes and could break the line."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {name: _redacted(value) for name, value in log_data.items()}


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {name: _redacted(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def json_formatter() -> logging.Formatter:
    return RedactedJsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601 in UTC, not the local clock's asctime
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
