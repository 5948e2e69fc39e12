"""Versioned schema migrations, run by Alembic on both stores.

How the schema moves between releases:

- The table definitions in the code (the recorders', ``infra.readmodels.schema``, the token and
  webhook stores) always describe this release's schema. A new, empty database is made from
  them directly and then marked as being at the newest migration (Alembic's "create, then
  stamp head"), so it never replays history it does not have.
- A database an earlier release made is brought forward by the migrations in ``versions/``,
  one transaction each, oldest first. Each records its revision in
  ``stagegate_schema_revision`` as it commits.
- A change to a table definition therefore comes with a migration that takes an older database
  to the same place. ``tests/integration/test_migrations.py`` holds both to it: a database of
  the last release before migrations, with its data, is upgraded and must match a new database
  table for table, column for column, with nothing lost.

The last release before migrations recorded a plain number in ``stagegate_schema_version``
(1 or 2). Such a database starts from the first migration (``0002``), which is written to be
harmless on either; one from before schema versions were recorded is refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from infra.database import Database
from infra.persistence import migration_engine

if TYPE_CHECKING:
    from infra.bootstrap import Services

REVISION_TABLE = "stagegate_schema_revision"
"""Where Alembic records the revision a database is at (its ``alembic_version``, renamed)."""

LEGACY_VERSION_TABLE = "stagegate_schema_version"
"""Where releases before migrations recorded a schema version number (dropped by ``0003``)."""

OLDEST_LEGACY_VERSION = 1
"""The oldest recorded schema version the migrations start from."""

_SCRIPTS = Path(__file__).resolve().parent


class SchemaNotReady(RuntimeError):
    """The schema is missing or older than this release and cannot be brought forward here."""


@dataclass(frozen=True)
class Status:
    """Where a database's schema stands against this release."""

    current: str | None
    """The revision recorded, or None (a new database, or one from before migrations)."""
    legacy_version: int | None
    """The version number a release before migrations recorded, if any."""
    head: str
    """This release's newest revision."""
    pending: tuple[str, ...]
    """The revisions an upgrade would run, oldest first."""
    empty: bool
    """No stagegate table exists yet: an upgrade creates the schema and stamps the head."""
    newer: bool = False
    """The revision recorded is one this release does not know (a newer release's)."""

    @property
    def is_current(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.is_current:
            return f"at revision {self.head}: current"
        if self.empty:
            return f"empty: an upgrade creates the schema at revision {self.head}"
        found = (
            f"at revision {self.current}"
            if self.current is not None
            else f"at schema version {self.legacy_version} (a release before migrations)"
        )
        return f"{found}; this release is at {self.head}; to run: {', '.join(self.pending)}"


def script_directory() -> ScriptDirectory:
    return ScriptDirectory(str(_SCRIPTS))


def head(scripts: ScriptDirectory | None = None) -> str:
    revision = (scripts or script_directory()).get_current_head()
    assert revision is not None, "infra/migrations/versions holds no migration"
    return revision


def status(services: Services) -> Status:
    """Where the database stands; reads only (runs as a role with no DDL)."""
    database = services.database
    current = _recorded_revision(database)
    legacy = _legacy_version(database) if current is None else None
    events_table = services.app.recorder.events_table_name  # type: ignore[attr-defined]
    empty = current is None and legacy is None and not database.table_exists(events_table)
    scripts = script_directory()  # read once: its files are parsed each time it is made
    known = [s.revision for s in scripts.walk_revisions("base", "heads")]  # newest first
    if current is None:
        pending = [] if empty else known
    elif current in known:
        pending = known[: known.index(current)]
    else:
        pending = []  # a newer release's revision: nothing this one could run
    return Status(
        current=current,
        legacy_version=legacy,
        head=head(scripts),
        pending=tuple(reversed(pending)),
        empty=empty,
        newer=current is not None and current not in known,
    )


def upgrade(services: Services, to: str = "head") -> Status:
    """Bring the schema to this release's: create it on an empty database, else run the
    pending migrations (up to revision ``to``: tests stop at an earlier one, to stand where
    an earlier release left a database). Call under ``infra.persistence.schema_lock``.
    Returns the status before."""
    before = status(services)
    if before.newer:
        raise SchemaNotReady(
            f"the database schema is at revision {before.current}, which this release does not"
            f" know (its newest is {before.head}): run the release that made it"
        )
    if before.is_current:
        return before
    unversioned = before.legacy_version is None or before.legacy_version < OLDEST_LEGACY_VERSION
    if before.current is None and not before.empty and unversioned:
        raise SchemaNotReady(
            "the database holds stagegate's tables but records no schema version (it is"
            " from a release before versions were recorded, or its creation was"
            " interrupted): upgrade it with an earlier release's 'stagegate db init',"
            " or start from an empty database"
        )
    with _alembic(services) as config:
        if before.empty:
            from infra import schema  # the table definitions; schema imports this module

            schema.create_tables(services)
            command.stamp(config, "head")
        else:
            command.upgrade(config, to)
    if not before.empty:
        # A migration may have emptied a read model whose rows it could not bring forward.
        services.read_models.rebuild_emptied()
    return before


def new_migration(message: str) -> Path:
    """Write an empty migration after the newest, for a developer to fill in."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    script = command.revision(config, message=message, rev_id=_next_revision_id())
    assert script is not None
    assert not isinstance(script, list)
    return Path(script.path)


def _next_revision_id() -> str:
    """Revisions are numbered: ``0003`` follows ``0002``, so their order reads at a glance."""
    return f"{int(head()) + 1:04d}"


def _recorded_revision(database: Database) -> str | None:
    if not database.table_exists(REVISION_TABLE):
        return None
    rows = database.select(f"SELECT version_num FROM {database.table(REVISION_TABLE)}")
    return str(rows[0]["version_num"]) if rows else None


def _legacy_version(database: Database) -> int | None:
    if not database.table_exists(LEGACY_VERSION_TABLE):
        return None
    [row] = database.select(
        f"SELECT MAX(version) AS version FROM {database.table(LEGACY_VERSION_TABLE)}"
    )
    return int(row["version"]) if row["version"] is not None else None


@contextlib.contextmanager
def _alembic(services: Services) -> Iterator[Config]:
    """An Alembic configuration with a connection of its own to the configured database."""
    engine = migration_engine(services.settings)
    try:
        with engine.connect() as connection:
            config = Config()
            config.set_main_option("script_location", str(_SCRIPTS))
            config.attributes["connection"] = connection
            snapshots = services.app.snapshots
            config.attributes["target"] = Target(
                services.database,
                services.app.recorder.events_table_name,  # type: ignore[attr-defined]
                None if snapshots is None else snapshots.recorder.events_table_name,  # type: ignore[attr-defined]
            )
            config.attributes["version_table_schema"] = services.database.namespace
            yield config
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Target:
    """What a migration script runs on."""

    database: Database
    """For qualified table names and statements that differ by store (``infra.database``);
    the statements themselves go through ``op.execute``, in the migration's transaction."""
    events_table: str
    """The log's table name (unqualified)."""
    snapshots_table: str | None
    """The snapshots' table name (unqualified), where snapshots are taken."""


def migrating() -> Target:
    """What the running migration script is migrating."""
    from alembic import context

    target: Target = context.config.attributes["target"]
    return target


def rebuild_from_the_log(projection: str, tables: tuple[str, ...]) -> None:
    """In a migration: empty ``tables`` (the projection's, named as they stand at that
    revision), forget what it set aside, and move ``projection`` back to the start of the log,
    so that ``upgrade`` rebuilds it from the log before the service starts."""
    from alembic import op

    db = migrating().database
    for table in tables:
        op.execute(f"DELETE FROM {db.table(table)}")
    op.execute(
        f"DELETE FROM {db.table('stagegate_projection_faults')} WHERE projection = '{projection}'"
    )
    op.execute(
        f"UPDATE {db.table('stagegate_projection_positions')} SET position = 0"
        f" WHERE projection = '{projection}'"
    )


def context_options(config: Config) -> dict[str, Any]:
    """The options ``env.py`` gives Alembic's migration context."""
    return {
        "version_table": REVISION_TABLE,
        "version_table_schema": config.attributes["version_table_schema"],
        # One transaction per migration, on SQLite too (its DDL is transactional).
        "transactional_ddl": True,
        "transaction_per_migration": True,
    }
