"""Shared fixtures: a real PostgreSQL per test run (never a mock), SQLite files, the app.

PostgreSQL comes from STAGEGATE_TEST_DATABASE_URL when it is set (CI sets it), else from
testcontainers when a Docker engine answers; otherwise tests that need it fail and say how to
provide one. Each run creates its own throwaway database; each test gets its own schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from domain.application import Stagegate
from infra.bootstrap import Services, bootstrap
from infra.persistence import in_memory_env
from infra.settings import Settings

HOW_TO_PROVIDE_POSTGRES = (
    "These tests need PostgreSQL. Set STAGEGATE_TEST_DATABASE_URL to a server the tests may "
    "create databases on, e.g. postgresql://postgres@127.0.0.1:5432/postgres, or run a Docker "
    "engine so testcontainers can start one."
)


def _docker_postgres() -> Iterator[str]:
    try:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:15-alpine", driver=None)
        container.start()
    except Exception as error:
        pytest.fail(f"{HOW_TO_PROVIDE_POSTGRES} (Docker: {error})")
    try:
        yield container.get_connection_url()
    finally:
        container.stop()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server URL on which the tests may create databases."""
    url = os.environ.get("STAGEGATE_TEST_DATABASE_URL")
    if url:
        yield url
    else:
        yield from _docker_postgres()


@pytest.fixture(scope="session")
def postgres_database_url(postgres_server_url: str) -> Iterator[str]:
    """A throwaway database for this test run, dropped at the end."""
    params = conninfo_to_dict(postgres_server_url)
    name = f"stagegate_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(postgres_server_url, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.fail(f"{HOW_TO_PROVIDE_POSTGRES} (connecting failed: {error})")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params["dbname"] = name
    user = params.get("user", "postgres")
    password = params.get("password", "")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    auth = f"{user}:{password}@" if password else f"{user}@"
    yield f"postgresql://{auth}{host}:{port}/{name}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def postgres_settings(postgres_database_url: str) -> Settings:
    """Settings for PostgreSQL with a schema of this test's own."""
    return Settings(
        database_url=postgres_database_url,
        postgres_schema=f"t_{uuid.uuid4().hex[:16]}",
        postgres_pool_size=4,
        postgres_max_overflow=24,
        snapshot_interval=10,
    )


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'stagegate.db'}", snapshot_interval=10)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_settings" if request.param == "sqlite" else "postgres_settings"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    services = bootstrap(settings)
    yield services
    services.close()


@pytest.fixture
def postgres_services(postgres_settings: Settings) -> Iterator[Services]:
    """The services on PostgreSQL only, for what the SQLite store does not have."""
    services = bootstrap(postgres_settings)
    yield services
    services.close()


@pytest.fixture
def memory_app() -> Iterator[Stagegate]:
    """The application on the in-memory store, for fast unit tests with no I/O."""
    app = Stagegate(in_memory_env(), snapshot_interval=5)
    yield app
    app.close()
