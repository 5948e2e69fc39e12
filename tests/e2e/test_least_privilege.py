"""Issue 8, finding 5: stagegate runs as a role that cannot rewrite what it records.

The schema's owner runs ``stagegate db init --grant-to <service role>``; the service then
starts as that role (no DDL at start), works a whole lifecycle over HTTP (GraphQL, CloudEvents,
a gate refusal announced to webhooks, history and integrity), and cannot change the log,
switch off its triggers or create anything.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from psycopg import sql

from domain.values import Role, Stage
from infra import migrations
from infra.audit import verify_all
from infra.bootstrap import Services, bootstrap
from infra.cli.db import db
from infra.schema import SchemaNotReady
from infra.settings import Settings
from infra.web import build_api
from tests.builders import Journey
from tests.e2e.cloudevents_helpers import adoption, post
from tests.e2e.conftest import Api, issue_tokens

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Roles:
    owner: Settings
    service: Settings
    service_role: str


def _as(url: str, role: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))


@pytest.fixture
def roles(postgres_database_url: str) -> Iterator[Roles]:
    """An owner that may create a schema in the test database, and a service role that may
    only log in; both dropped afterwards (roles outlive databases)."""
    suffix = uuid.uuid4().hex[:10]
    owner, service = f"sg_owner_{suffix}", f"sg_service_{suffix}"
    database = urlsplit(postgres_database_url).path.lstrip("/")
    with psycopg.connect(postgres_database_url, autocommit=True) as admin:
        for role in (owner, service):
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(owner)
            )
        )
    schema_name = f"lp_{suffix}"
    yield Roles(
        owner=Settings(
            database_url=_as(postgres_database_url, owner),
            postgres_schema=schema_name,
            snapshot_interval=10,
        ),
        service=Settings(
            database_url=_as(postgres_database_url, service),
            postgres_schema=schema_name,
            snapshot_interval=10,
            # Its webhook receiver is a loopback http server.
            webhook_allow_http=True,
            webhook_allowed_networks=["127.0.0.0/8"],
        ),
        service_role=service,
    )
    with psycopg.connect(postgres_database_url, autocommit=True) as admin:
        for role in (service, owner):
            admin.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _db_init(settings: Settings, *args: str) -> str:
    env = {
        "STAGEGATE_DATABASE_URL": settings.database_url,
        "STAGEGATE_POSTGRES_SCHEMA": settings.postgres_schema,
    }
    result = CliRunner().invoke(db, ["init", *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def service(roles: Roles) -> Iterator[Services]:
    output = _db_init(roles.owner, "--grant-to", roles.service_role)
    assert f"granted to {roles.service_role}" in output
    services = bootstrap(roles.service)
    yield services
    services.close()


def test_the_service_role_works_a_whole_lifecycle_over_http(
    service: Services, serve: Callable[[FastAPI], str]
) -> None:
    api = Api(serve(build_api(service)), issue_tokens(service))
    try:
        journey = Journey(service.app).register().reach(Stage.SCALE)
        other = Journey(service.app).register()
        blocked = api.mutate("advanceStage", {"key": other.key})  # announced to webhooks
        posted = post(api, adoption(journey.key))
        # Each append wrote its read-model rows, as this role: nothing is left to catch up.
        assert service.read_models.catch_up() == 0
        history = api.gql(
            "query($key: String!) { useCase(key: $key) { version"
            " history(last: 5) { edges { node { version type } } } integrity { intact } } }",
            {"key": journey.key},
            token=api.tokens.auditor,
        )
    finally:
        api.close()

    assert blocked["__typename"] == "GateBlocked", blocked
    assert posted.status_code == 200, posted.text
    use_case = history["data"]["useCase"]
    assert use_case["integrity"] == {"intact": True}
    assert use_case["history"]["edges"][-1]["node"]["version"] == use_case["version"]
    assert service.read_models.projection_faults() == (0, [])
    assert all(result.report.intact for result in verify_all(service.app))


def test_the_service_role_delivers_webhooks_and_manages_tokens(service: Services) -> None:
    received: list[str] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(json.loads(body)["type"])  # a CloudEvent
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    hooks = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
        subscription, _ = service.webhooks.subscribe(url, (), None, "admin")
        Journey(service.app).register().reach(Stage.PILOT)  # a stage move, announced
        assert service.webhooks.fan_out() >= 1
        assert service.webhooks.deliver_due() >= 1
        assert service.webhooks.unsubscribe(subscription.id) is True
        issued = service.tokens.issue("someone@example.com", Role.VIEWER)
        assert service.tokens.revoke(issued.record.token_id) is True
    finally:
        hooks.shutdown()
        hooks.server_close()

    assert "stagegate.stage.advanced" in received
    assert service.tokens.authenticate(issued.secret_token) is None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {events} SET topic = topic",
        "DELETE FROM {events}",
        "TRUNCATE {events}",
        "ALTER TABLE {events} DISABLE TRIGGER ALL",
        "DROP TRIGGER stagegate_append_only ON {events}",
        "UPDATE {hashes} SET hash = hash",
        "DELETE FROM {snapshots}",
        "UPDATE {history} SET actor_id = 'someone.else'",
        "DELETE FROM {history}",
        "CREATE TABLE {schema}.planted (x int)",
    ],
)
def test_the_service_role_cannot_rewrite_the_log_or_create_anything(
    service: Services, roles: Roles, statement: str
) -> None:
    Journey(service.app).register()
    table = service.database.table
    text = statement.format(
        events=table("stagegate_events"),
        hashes=table("stagegate_event_hashes"),
        snapshots=table("stagegate_snapshots"),
        history=table("stagegate_history"),
        schema=f'"{roles.service.postgres_schema}"',
    )
    # The privilege system refuses, before the triggers would (their refusal says
    # "append-only"): the role has no such right at all.
    with (
        psycopg.connect(roles.service.database_url) as conn,
        pytest.raises(
            psycopg.errors.InsufficientPrivilege, match=r"permission denied|must be owner"
        ),
    ):
        conn.execute(text)


def test_a_service_role_meeting_an_older_schema_says_who_must_upgrade_it(
    roles: Roles,
) -> None:
    _db_init(roles.owner, "--grant-to", roles.service_role)
    owner = bootstrap(roles.owner)
    try:
        with owner.database.transaction() as curs:
            # As if the last migration were new: the database is one revision behind.
            curs.execute(
                f"UPDATE {owner.database.table(migrations.REVISION_TABLE)} SET version_num = %s",
                (str(int(migrations.head()) - 1).zfill(4),),
            )
    finally:
        owner.close()

    with pytest.raises(SchemaNotReady, match="run 'stagegate db upgrade' as the schema's owner"):
        bootstrap(roles.service)

    _db_init(roles.owner)  # the owner brings it up to date
    bootstrap(roles.service).close()
