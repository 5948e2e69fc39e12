"""The SQLite store's connections keep the statements an append runs prepared, and are what
the library's were otherwise: write-ahead logging on the file, rows by name, autocommit."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from domain import commands as c
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.builders import EDITOR, PRIORITY, Journey


def test_connections_cache_more_statements_than_an_append_runs(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library asked for ``cached_statements=True``: a cache of one statement, so each of
    an append's statements was parsed and planned again every time."""
    opened: list[dict[str, Any]] = []
    connect = sqlite3.connect

    def recorded(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(kwargs)
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", recorded)
    services = bootstrap(sqlite_settings)
    try:
        journey = Journey(services.app).register()
        journey.issue(c.ScorePriority, EDITOR, **PRIORITY)
        with services.database.transaction() as curs:
            curs.execute("PRAGMA journal_mode")
            assert curs.fetchone() == {"journal_mode": "wal"}
    finally:
        services.close()
    # The store's connections (the migrations' SQLAlchemy engine opens its own).
    store = [kwargs for kwargs in opened if "cached_statements" in kwargs]
    assert store
    assert all(kwargs["cached_statements"] is not True for kwargs in store)
    assert all(kwargs["cached_statements"] >= 64 for kwargs in store)
    assert all(kwargs["isolation_level"] is None for kwargs in store)
