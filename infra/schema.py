"""The database schema: made by its owner, checked at every start, never altered by the service.

``stagegate db init``, run as the role that owns the schema, creates every table, trigger and
function and records the schema version; with ``--grant-to ROLE`` it gives a service role
exactly what running stagegate needs, and no more (docs/audit.md). A start that finds the
schema at this release's version runs no DDL at all, so the service can run as a role that
cannot create, alter or drop anything, nor switch off the triggers that keep the log
append-only. Where the schema is missing or older, a role that may create it does so at start
(the embedded SQLite default, a development database); one that may not is stopped with a
message naming the command to run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsourcing.persistence import ProgrammingError
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from infra import chain, deliveries, outbox
from infra.readmodels import schema as readmodels
from infra.tokens import TOKENS_TABLE
from infra.webhooks import DELIVERIES as WEBHOOK_DELIVERIES
from infra.webhooks import SUBSCRIPTIONS as WEBHOOK_SUBSCRIPTIONS

if TYPE_CHECKING:
    from infra.bootstrap import Services

VERSION = 2
"""This release's schema. 0: a database from before versions were recorded. 2: the hash
chain and the outbox are written by the recorder, their PL/pgSQL triggers dropped."""
VERSION_TABLE = "stagegate_schema_version"


class SchemaNotReady(RuntimeError):
    """The schema is missing or older than this release, and this role may not change it."""


def version(services: Services) -> int:
    """The schema version the database records (0 if it records none)."""
    database = services.database
    if not database.table_exists(VERSION_TABLE):
        return 0
    [row] = database.select(f"SELECT MAX(version) AS version FROM {database.table(VERSION_TABLE)}")
    return int(row["version"]) if row["version"] is not None else 0


def ensure(services: Services) -> None:
    """At start: nothing if the schema is current; else create it, or say who must."""
    found = version(services)
    if found == VERSION:
        return
    if found > VERSION:
        raise SchemaNotReady(
            f"the database schema is at version {found}, newer than this release's {VERSION}:"
            " run the release that made it"
        )
    try:
        create(services)
    except ProgrammingError as error:  # permission denied, or must be owner
        raise SchemaNotReady(
            f"the database schema is at version {found}, this release needs {VERSION}, and "
            f"this role cannot create it ({error}); run 'stagegate db init' as the schema's "
            "owner (docs/audit.md)"
        ) from None


def create(services: Services) -> None:
    """Create (or complete) every table, trigger and function, and record the version.

    Every statement is idempotent, so running it again, or on a database an earlier release
    made, brings it to this release's schema.
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
    table = database.table(VERSION_TABLE)
    with database.transaction() as curs:
        curs.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)")
        curs.execute(f"DELETE FROM {table}")
        curs.execute(f"INSERT INTO {table} (version) VALUES (%s)", (VERSION,))


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
        sql.SQL("GRANT SELECT ON {} TO {}").format(tables([VERSION_TABLE]), grantee),
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
