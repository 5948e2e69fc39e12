"""Schema migrations: a database of the last release before migrations, with its data, is
upgraded and found intact, and ends where a new database starts (both stores).

The databases come from ``tests/fixtures/release_v2/``: schema and data as that release wrote
them through its own code (``make_fixture.py`` there says how), so the upgrade meets real
rows of every kind, not rows this release would write.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from domain import commands as c
from domain.usecase import UseCase, UseCaseSnapshot
from domain.usecase.events import BaselineCaptured
from domain.values import BaselineKind
from infra import migrations
from infra.audit import verify_all
from infra.bootstrap import Services, bootstrap
from infra.migrations import LEGACY_VERSION_TABLE, REVISION_TABLE, SchemaNotReady
from infra.readmodels.schema import ADOPTION, LINKS, SUMMARIES, UNMET
from infra.registries import SECRETS as REGISTRY_SECRETS
from infra.settings import Settings
from projections.readmodels import UseCaseFilter
from tests.builders import ctx

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "release_v2"
STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextlib.contextmanager
def _empty_database(store: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database: a file, or a PostgreSQL database of its own (the
    release's dump is of the ``public`` schema, as that release made it by default)."""
    if store == "sqlite":
        yield f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        return
    server = request.getfixturevalue("postgres_server_url")
    name = f"stagegate_migrate_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo_url(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def make_conninfo_url(server: str, dbname: str) -> str:
    params = conninfo_to_dict(server)
    user, password = params.get("user", "postgres"), params.get("password")
    auth = f"{user}:{password}@" if password else f"{user}@"
    return (
        f"postgresql://{auth}{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{dbname}"
    )


def _settings(url: str) -> Settings:
    return Settings(database_url=url, postgres_schema="public")


def _load_release_v2(settings: Settings) -> None:
    if settings.is_postgres:
        dump = (FIXTURES / "postgres.sql").read_text()
        with psycopg.connect(make_conninfo(**settings.postgres_params()), autocommit=True) as db:
            db.execute(dump)  # type: ignore[arg-type]  # a script: no parameters, many statements
    else:
        with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as db:
            db.executescript((FIXTURES / "sqlite.sql").read_text())


def _sqlite_tables(db: sqlite3.Connection) -> list[str]:
    return [
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]


def _tables(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: what "nothing lost" is checked against."""
    if settings.is_postgres:
        with psycopg.connect(make_conninfo(**settings.postgres_params())) as db:
            names = [
                name
                for (name,) in db.execute(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            ]
            return {
                name: sorted(
                    db.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(name))).fetchall(),
                    key=repr,
                )
                for name in names
            }
    with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as db:
        return {
            name: sorted(db.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
            for name in _sqlite_tables(db)
        }


def _shape(settings: Settings) -> dict[str, Any]:
    """The schema's shape: tables and their columns, indexes, triggers, functions."""
    if settings.is_postgres:
        with psycopg.connect(make_conninfo(**settings.postgres_params())) as db:

            def rows(query: str) -> list[tuple[Any, ...]]:
                return sorted(db.execute(query).fetchall(), key=repr)

            return {
                "columns": rows(
                    "SELECT table_name, column_name, data_type, is_nullable, column_default"
                    " FROM information_schema.columns WHERE table_schema = 'public'"
                ),
                "indexes": rows(
                    "SELECT tablename, indexname, indexdef FROM pg_indexes"
                    " WHERE schemaname = 'public'"
                ),
                "constraints": rows(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
                ),
                "triggers": rows(
                    "SELECT event_object_table, trigger_name, event_manipulation, action_statement"
                    " FROM information_schema.triggers WHERE trigger_schema = 'public'"
                ),
                "functions": rows(
                    "SELECT proname, pg_get_functiondef(oid) FROM pg_proc"
                    " WHERE pronamespace = 'public'::regnamespace"
                ),
                "table options": rows(
                    "SELECT relname, reloptions::text FROM pg_class"
                    " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
                ),
            }
    with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as db:
        tables = _sqlite_tables(db)
        return {
            "columns": {t: db.execute(f'PRAGMA table_info("{t}")').fetchall() for t in tables},
            "indexes": {
                t: sorted(
                    (index[1], index[2], db.execute(f'PRAGMA index_info("{index[1]}")').fetchall())
                    for index in db.execute(f'PRAGMA index_list("{t}")').fetchall()
                )
                for t in tables
            },
            "triggers": sorted(
                db.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
            ),
        }


def _read_models(services: Services) -> Any:
    read_models = services.read_models
    page = read_models.use_cases(UseCaseFilter(), 100, None)
    summaries = sorted((r.id, r.version, r.state.model_dump_json()) for r in page.items)
    ids = sorted(r.id for r in page.items)
    adoption = {
        i: [(a.version, a.active_users, a.measured_at) for a in series.items]
        for i, series in read_models.adoption_series(ids, 100, None).items()
    }
    history = [
        [
            (e.notification_id, e.version, e.event_type, e.payload)
            for e in read_models.history(r.id, 1000, None).items
        ]
        for r in sorted(page.items, key=lambda r: r.id)
    ]
    return summaries, adoption, history


@pytest.mark.parametrize("store", STORES)
def test_the_last_release_before_migrations_is_upgraded_with_nothing_lost(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    secrets = json.loads((FIXTURES / "tokens.json").read_text())[store]
    with _empty_database(store, request, tmp_path) as url:
        settings = _settings(url)
        _load_release_v2(settings)
        before = _tables(settings)
        assert before[LEGACY_VERSION_TABLE] == [(2,)]
        # The fixture's data is there to lose (the log's table is named by store).
        assert len(before.get("stagegate_events", before.get("stored_events", []))) > 100

        services = bootstrap(settings)  # a start as the owner migrates
        try:
            after = _tables(settings)
            # Every row of every table is still there, unchanged, but for what is derived
            # from a use case's state, which 0004 discards and rebuilds (its state gained
            # the costs by month); the version number gave way to the revision.
            [snapshots] = [t for t in before if t in ("stagegate_snapshots", "stored_snapshots")]
            derived = {snapshots, SUMMARIES, UNMET, REVISION_TABLE, LEGACY_VERSION_TABLE}
            derived |= {LINKS, REGISTRY_SECRETS}  # new, and empty
            derived.add(ADOPTION)  # new, and filled from the log (0007)
            assert before[SUMMARIES], "the fixture has nothing derived"
            adoption_events = [
                row
                for row in before["stagegate_history"]
                if "AdoptionRecorded" in [str(value) for value in row]
            ]
            assert adoption_events, "the fixture records no adoption"
            assert len(after[ADOPTION]) == len(adoption_events)
            assert after[snapshots] == []
            assert len(after[SUMMARIES]) == len(before[SUMMARIES])
            assert {t: rows for t, rows in after.items() if t not in derived} == {
                t: rows for t, rows in before.items() if t not in derived
            }
            assert after[REVISION_TABLE] == [(migrations.head(),)]

            app = services.app
            # Every history verifies, hash by hash, against the bytes that release stored.
            verified = verify_all(app)
            assert len(verified) > 5
            assert all(v.report.intact for v in verified)
            # Its tokens still open the door; its read models are what a rebuild makes.
            assert services.tokens.authenticate(secrets["admin"]) is not None
            assert services.tokens.authenticate(secrets["integration"]) is not None
            read_before = _read_models(services)
            services.read_models.rebuild()
            assert _read_models(services) == read_before
            # And it goes on: a new command appends after the old events, chained to them.
            version = app.use_case("invoice-triage").version
            app.execute(
                c.RaiseQualityAlert.parse(
                    {
                        "key": "invoice-triage",
                        "alertId": "after-upgrade",
                        "severity": "low",
                        "description": "raised after the upgrade",
                    }
                ),
                ctx(),
            )
            assert app.use_case("invoice-triage").version == version + 1
            assert all(v.report.intact for v in verify_all(app))
        finally:
            services.close()


@pytest.mark.parametrize("store", STORES)
def test_an_upgraded_database_has_the_shape_of_a_new_one(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with (
        _empty_database(store, request, tmp_path) as old_url,
        _empty_database(store, request, tmp_path) as new_url,
    ):
        upgraded, created = _settings(old_url), _settings(new_url)
        _load_release_v2(upgraded)
        for settings in (upgraded, created):
            bootstrap(settings).close()

        assert _shape(upgraded) == _shape(created)


@pytest.mark.parametrize("store", STORES)
def test_snapshots_without_the_costs_by_month_are_discarded_and_loading_sees_every_cost(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A snapshot from before 0004 has no costs by month in its state, and loading trusts a
    snapshot: a use case loaded from one would meet no cost at all. 0004 discards them (and the
    summaries' copies of the state), so the costs come from the events again."""
    with _empty_database(store, request, tmp_path) as url:
        settings = _settings(url)
        _load_release_v2(settings)
        services = bootstrap(settings, prepare_schema=False)
        try:
            migrations.upgrade(services, to="0003")
            app = services.app
            assert app.snapshots is not None
            costed = _use_case_with_costs(services)
            expected = costed.state.monthly_costs
            assert expected, "the fixture reported costs"
            # What the release before wrote: a snapshot whose state holds no costs by month.
            costed.state.monthly_costs = {}
            app.snapshots.put([UseCaseSnapshot.take(costed)])
        finally:
            services.close()
        services = bootstrap(settings, prepare_schema=False)  # nothing cached
        try:
            assert services.app.repository.get(costed.id).state.monthly_costs == {}
            migrations.upgrade(services)
        finally:
            services.close()
        services = bootstrap(settings)
        try:
            app = services.app
            assert app.snapshots is not None
            assert list(app.snapshots.get(costed.id)) == []
            assert app.repository.get(costed.id).state.monthly_costs == expected
            [summary] = [
                r
                for r in services.read_models.use_cases(UseCaseFilter(), 100, None).items
                if r.id == str(costed.id)
            ]
            assert summary.state.monthly_costs == expected
        finally:
            services.close()


def _use_case_with_costs(services: Services) -> UseCase:
    app = services.app
    # The query alone: the read models of revision 0003 have no judging time to look at.
    queries = services.read_models.queries
    for record in queries.use_cases(UseCaseFilter(), 100, None, datetime.now(UTC)).items:
        use_case = app.repository.get(UUID(record.id))
        if use_case.state.monthly_costs:
            return use_case
    raise AssertionError("no use case of the fixture reported a cost")


@pytest.mark.parametrize("store", STORES)
def test_db_status_and_a_second_upgrade_find_nothing_to_do(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with _empty_database(store, request, tmp_path) as url:
        settings = _settings(url)
        _load_release_v2(settings)
        services = bootstrap(settings, prepare_schema=False)
        try:
            pending = migrations.status(services)
            assert (pending.current, pending.legacy_version) == (None, 2)
            assert pending.pending == ("0002", "0003", "0004", "0005", "0006", "0007")
            assert not pending.is_current

            assert migrations.upgrade(services) == pending
            done = migrations.status(services)
            assert done.is_current
            assert done.pending == ()
            assert migrations.upgrade(services).is_current  # nothing run the second time
        finally:
            services.close()


def test_a_database_with_tables_but_no_recorded_version_is_refused(tmp_path: Path) -> None:
    settings = _settings(f"sqlite:///{tmp_path / 'unversioned.db'}")
    _load_release_v2(settings)
    with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as db:
        db.execute(f"DROP TABLE {LEGACY_VERSION_TABLE}")
        db.commit()

    with pytest.raises(SchemaNotReady, match="records no schema version"):
        bootstrap(settings)


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    settings = _settings(f"sqlite:///{tmp_path / 'newer.db'}")
    bootstrap(settings).close()
    with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as db:
        db.execute(f"UPDATE {REVISION_TABLE} SET version_num = '9999'")
        db.commit()

    with pytest.raises(SchemaNotReady, match="revision 9999, which this release does not know"):
        bootstrap(settings)


FAILING_MIGRATION = """
from alembic import op

from infra.migrations import migrating

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = migrating().database.table("stagegate_half_written")
    op.execute(f"CREATE TABLE {{table}} (x INTEGER)")
    op.execute(f"INSERT INTO {{table}} (x) VALUES (1)")
    raise RuntimeError("this migration fails after writing")


def downgrade() -> None:
    pass
"""


@pytest.mark.parametrize("store", STORES)
def test_a_migration_that_fails_leaves_nothing_half_written(
    store: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(Path(migrations.__file__).parent, scripts)
    head = migrations.head()
    failing = f"{int(head) + 1:04d}"
    (scripts / "versions" / f"{failing}_fails.py").write_text(
        FAILING_MIGRATION.format(revision=failing, down_revision=head)
    )
    with _empty_database(store, request, tmp_path) as url:
        settings = _settings(url)
        bootstrap(settings).close()  # at this release's head
        monkeypatch.setattr(migrations, "_SCRIPTS", scripts)
        services = bootstrap(settings, prepare_schema=False)
        try:
            with pytest.raises(RuntimeError, match="this migration fails after writing"):
                migrations.upgrade(services)
            assert migrations.status(services).current == head
            assert not services.database.table_exists("stagegate_half_written")
        finally:
            services.close()


@pytest.mark.parametrize("store", STORES)
def test_events_that_release_stored_load_in_this_releases_form_and_still_verify(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """``BaselineCaptured`` is at class version 2 (a baseline says whether it is an outcome or
    a guardrail); that release stored version 1. Its events load upcast, and the hash chain,
    which covers the bytes as stored, still verifies."""
    with _empty_database(store, request, tmp_path) as url:
        settings = _settings(url)
        _load_release_v2(settings)
        services = bootstrap(settings)
        try:
            app = services.app
            baselines = [
                (stored, app.mapper.to_domain_event(stored))
                for stored in app.recorder.select_notifications(start=1, limit=10_000)
                if stored.topic.endswith(":BaselineCaptured")
            ]
            assert len(baselines) >= 5
            for stored, event in baselines:
                as_stored = json.loads(stored.state)
                assert "class_version" not in as_stored  # version 1, as that release wrote it
                assert "kind" not in as_stored["baseline"]
                assert isinstance(event, BaselineCaptured)
                assert event.baseline.kind is BaselineKind.OUTCOME
                # Loaded, it is what this release would store for the same fact.
                assert json.loads(app.mapper.to_stored_event(event).state) == {
                    **as_stored,
                    "class_version": 2,
                    "baseline": {**as_stored["baseline"], "kind": "outcome"},
                }
            use_case = app.use_case("invoice-triage")
            assert use_case.state.baselines
            assert all(b.kind is BaselineKind.OUTCOME for b in use_case.state.baselines.values())
            assert all(v.report.intact for v in verify_all(app))
        finally:
            services.close()
