"""The database schema: made by its owner, brought forward by migrations, never altered by the
service.

``stagegate db upgrade`` (or ``db init``), run as the role that owns the schema, creates every
table, trigger and function on an empty database, or runs the migrations a database of an
earlier release needs (``infra.migrations``); ``db init --grant-to ROLE`` also gives a service
role exactly what running stagegate needs, and no more (docs/audit.md). A start that finds the
schema at this release's revision runs no DDL at all, so the service can run as a role that
cannot create, alter or drop anything, nor switch off the triggers that keep the log
append-only. Where the schema is missing or older, a role that may change it does so at start
(the embedded SQLite default, a development database); one that may not is stopped with a
message naming the command to run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy.exc
from eventsourcing.persistence import ProgrammingError
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from infra import chain, deliveries, migrations, outbox
from infra.migrations import REVISION_TABLE, SchemaNotReady
from infra.readmodels import schema as readmodels
from infra.registries import SECRETS as REGISTRY_SECRETS
from infra.tokens import TOKENS_TABLE
from infra.webhooks import DELIVERIES as WEBHOOK_DELIVERIES
from infra.webhooks import SUBSCRIPTIONS as WEBHOOK_SUBSCRIPTIONS

if TYPE_CHECKING:
    from infra.bootstrap import Services

__all__ = ["SchemaNotReady", "create_tables", "ensure", "grant"]


def ensure(services: Services) -> None:
    """At start: nothing if the schema is current; else bring it forward, or say who must.

    Call under ``infra.persistence.schema_lock``, so that of several processes starting on one
    database, one migrates and the others find it done.
    """
    found = migrations.status(services)
    if found.is_current:
        return
    try:
        migrations.upgrade(services)
    except (ProgrammingError, sqlalchemy.exc.ProgrammingError) as error:
        # Permission denied, or must be owner: this role may not change the schema.
        reason = getattr(error, "orig", None) or error
        raise SchemaNotReady(
            f"the database schema is {found.describe()}, and this role cannot change it"
            f" ({str(reason).strip()}); run 'stagegate db upgrade' as the schema's owner"
            " (docs/audit.md)"
        ) from None


def create_tables(services: Services) -> None:
    """Create every table, trigger and function of this release's schema, as they are defined
    in the code. Only for an empty database (``infra.migrations.upgrade`` stamps it at the
    newest revision after): an earlier release's database is brought forward by migrations.
    Each statement is idempotent, so a creation that was interrupted can run again.
    """
    app, database = services.app, services.database
    database.create_schema()
    app.recorder.create_table()  # type: ignore[attr-defined]
    if app.snapshots is not None:
        app.snapshots.recorder.create_table()  # type: ignore[attr-defined]
        # Snapshots are derived, but loading trusts them: append-only, as the log is.
        database.make_append_only(app.snapshots.recorder.events_table_name)  # type: ignore[attr-defined]
    services.tokens.create_table()
    services.read_models.create_tables()
    services.webhooks.create_tables()
    services.registry_secrets.create_table()


def grant(services: Services, role: str) -> list[str]:
    """Give ``role`` what running stagegate needs (PostgreSQL); returns the statements run.

    The log (events, their hashes, snapshots, delivery records, the outbox) and the history
    it is audited by: read and append only. Read models, tokens and webhook state: read and
    write. The lock function: execute. Nothing else: no DDL, no UPDATE or DELETE on the log.
    """
    database = services.database
    if not database.has_roles:
        raise ValueError("roles and grants are PostgreSQL's; SQLite has none")
    datastore = database.datastore
    assert isinstance(datastore, PostgresDatastore)
    app = services.app
    append_only = [
        app.recorder.events_table_name,  # type: ignore[attr-defined]
        chain.HASHES_TABLE,
        deliveries.DELIVERIES_TABLE,
        outbox.OUTBOX_TABLE,
        readmodels.HISTORY,
    ]
    if app.snapshots is not None:
        append_only.append(app.snapshots.recorder.events_table_name)  # type: ignore[attr-defined]
    read_write = [
        *(t for t in readmodels.ALL_TABLES if t != readmodels.HISTORY),
        TOKENS_TABLE,
        WEBHOOK_SUBSCRIPTIONS,
        WEBHOOK_DELIVERIES,
        REGISTRY_SECRETS,
    ]
    schema, grantee = sql.Identifier(datastore.schema), sql.Identifier(role)

    def tables(names: list[str]) -> sql.Composable:
        return sql.SQL(", ").join(sql.SQL("{}.{}").format(schema, sql.Identifier(n)) for n in names)

    statements = [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, grantee),
        sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(tables(append_only), grantee),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
            tables(read_write), grantee
        ),
        sql.SQL("GRANT SELECT ON {} TO {}").format(tables([REVISION_TABLE]), grantee),
        sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema, grantee),
        sql.SQL("GRANT EXECUTE ON FUNCTION {}() TO {}").format(
            chain.lock_function(datastore.schema), grantee
        ),
    ]
    done = []
    with datastore.transaction(commit=True) as curs:
        for statement in statements:
            curs.execute(statement)
            done.append(statement.as_string(curs))
    return done
