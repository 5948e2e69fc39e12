"""Secrets never reach a log: API tokens, webhook secrets, bearer credentials.

One ``logging.Filter`` rewrites every record of the loggers a request's data can reach (and
of the root logger's handlers), message, arguments and traceback alike.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # API tokens, sgt_<id>_<secret> (infra/tokens.py): the id may stay, it finds no secret.
    (re.compile(r"\b(sgt_[0-9A-Za-z]*_)[0-9A-Za-z_-]+"), rf"\g<1>{REDACTED}"),
    # Webhook signing secrets, whsec_<base64> (Standard Webhooks), wherever they appear.
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), f"whsec_{REDACTED}"),
    # Credentials in an Authorization header, wherever one is quoted.
    (re.compile(r"(?i)\b(bearer|basic)\s+[^\s'\",;]+"), rf"\g<1> {REDACTED}"),
    # A secret by name: GraphQL (secret: "..."), JSON ("secret": "..."), Python ('secret': '...').
    (
        re.compile(
            r"""(?i)(["']?\w*secret\w*["']?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,}&)]+)"""
        ),
        rf'\g<1>"{REDACTED}"',
    ),
)
_STRING_LITERAL = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"')

LOGGERS = (
    "strawberry.execution",
    "uvicorn.error",
    "uvicorn.access",
    "api.auth",
    "api.correlation",
    "api.graphql.reporting",
    "api.graphql.schema",
)
"""Loggers whose records may quote a request: a filter on a logger sees only the records
logged to it by name, not those of its children, so each is named."""


def redact(text: str) -> str:
    """``text`` with every token, credential and named secret in it replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def without_string_literals(text: str) -> str:
    """``text`` (a GraphQL error message) with every quoted string literal replaced: a caller's
    inline values are theirs, and may be secrets named in no way a pattern knows."""
    return _STRING_LITERAL.sub(f'"{REDACTED}"', text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, arguments and traceback with ``redact``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg if isinstance(record.msg, str) else str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_arg(arg) for key, arg in record.args.items()}
        if record.exc_info and not record.exc_text:
            # Formatters print exc_text when it is set: the traceback, redacted once here.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_arg(arg: object) -> object:
    """A string argument redacted; any other kept as it is unless its text holds a secret
    (numbers stay numbers, for ``%d`` and for uvicorn's access-log formatter)."""
    if isinstance(arg, int | float | bool) or arg is None:
        return arg
    text = str(arg)
    redacted = redact(text)
    if isinstance(arg, str) or redacted != text:
        return redacted
    return arg


_FILTER = RedactSecrets()


def install_redaction() -> None:
    """Put the filter on ``LOGGERS`` and on the root logger's handlers (idempotent)."""
    for target in [*(logging.getLogger(name) for name in LOGGERS), *logging.getLogger().handlers]:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
