"""Secrets are rewritten out of log records, wherever in the record they are."""

from __future__ import annotations

import logging
import sys

import pytest

from api.redaction import REDACTED, RedactSecrets, redact, without_string_literals

TOKEN = "sgt_0123456789abcdef_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWpr"
SECRET = "whsec-correct-horse-battery-staple"
WHSEC = "whsec_Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5LXN0YXBsZS0xMjM0NTY3OA=="
"""A Standard Webhooks secret: redacted by its form, whatever names it."""


@pytest.mark.parametrize(
    "text",
    [
        f"token {TOKEN} refused",
        f"Authorization: Bearer {TOKEN}",
        f"Authorization: Bearer {SECRET}",
        f'createWebhookSubscription(input: {{url: "u", secret: "{SECRET}"}})',
        f'{{"url": "u", "secret": "{SECRET}"}}',
        f"got invalid value {{'url': 'u', 'secret': '{SECRET}'}}",
        f"GET /graphql?access_token={TOKEN}&webhook_secret={SECRET} HTTP/1.1",
    ],
)
def test_secrets_are_redacted(text: str) -> None:
    redacted = redact(text)

    assert TOKEN not in redacted
    assert SECRET not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    "text",
    [
        f"delivery signed with {WHSEC}",
        f"subscribe(url, (), '{WHSEC}', 'admin') failed",
        f"key={WHSEC[:20]}",
    ],
)
def test_a_whsec_secret_is_redacted_by_its_form(text: str) -> None:
    redacted = redact(text)
    assert "Y29ycmVjdC1ob3Jz" not in redacted
    assert f"whsec_{REDACTED}" in redacted


def test_a_token_keeps_its_id() -> None:
    assert redact(TOKEN) == f"sgt_0123456789abcdef_{REDACTED}"


def test_text_without_secrets_is_kept() -> None:
    text = "Unknown argument 'kee' on field 'Query.useCase'. 200 OK sgt_ is a prefix"
    assert redact(text) == text


def test_string_literals_are_removed_from_graphql_messages_and_names_kept() -> None:
    message = 'Int cannot represent non-integer value: "abc\\"def" in field \'useCases\''

    assert without_string_literals(message) == (
        f"Int cannot represent non-integer value: \"{REDACTED}\" in field 'useCases'"
    )


def _record(msg: object, args: tuple[object, ...] = (), exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"lookup of {TOKEN} failed")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_the_filter_redacts_message_arguments_and_traceback() -> None:
    record = _record("%s - %s %d", (f"client {TOKEN}", f"secret={SECRET}", 401), exc=True)

    assert RedactSecrets().filter(record) is True
    formatted = logging.Formatter().format(record)

    assert TOKEN not in formatted
    assert SECRET not in formatted
    assert record.args is not None
    assert record.args[2] == 401  # numbers stay numbers, for %d and uvicorn's access formatter
    assert "RuntimeError" in formatted


def test_the_filter_redacts_a_message_that_is_not_a_string() -> None:
    record = _record(ValueError(f"bad token {TOKEN}"))

    RedactSecrets().filter(record)

    assert TOKEN not in record.getMessage()
