"""Snapshots shortcut loading, so a forged one must not pass: the verifier replays the events
behind every snapshot, PostgreSQL refuses to rewrite them, and a damaged chain is not
extended."""

from __future__ import annotations

import json

import psycopg
import pytest

from domain import commands as c
from domain.values import Stage
from infra.audit import verify_chain
from infra.bootstrap import Services, bootstrap
from infra.chain import HASHES_TABLE
from infra.settings import Settings
from tests.builders import PRIORITY, Journey


def _forge_first_snapshot(services: Services, key_id: str) -> int:
    """As a superuser would: rewrite the title inside the use case's first snapshot."""
    db = services.database
    table = db.table(services.app.snapshots.recorder.events_table_name)  # type: ignore[union-attr]
    stored_id = key_id if db.is_postgres else key_id.replace("-", "")
    with db.transaction() as curs:
        if db.is_postgres:
            curs.execute("SET LOCAL session_replication_role = replica")
        curs.execute(
            f"SELECT originator_version, state FROM {table} WHERE originator_id = %s"
            " ORDER BY originator_version LIMIT 1",
            (stored_id,),
        )
        row = curs.fetchone()
        assert row is not None, "the journey is long enough to have been snapshotted"
        state = json.loads(bytes(row["state"]))
        state["state"]["state"]["title"] = "Forged title"
        curs.execute(
            f"UPDATE {table} SET state = %s WHERE originator_id = %s AND originator_version = %s",
            (json.dumps(state).encode(), stored_id, row["originator_version"]),
        )
    return int(row["originator_version"])


def test_a_forged_snapshot_is_found_by_replaying_its_events(services: Services) -> None:
    journey = (
        Journey(services.app).register().reach(Stage.DEPLOYMENT)
    )  # past 10 events: snapshotted
    use_case = services.app.use_case(journey.key)
    assert verify_chain(services.app, use_case.id).intact

    version = _forge_first_snapshot(services, str(use_case.id))

    report = verify_chain(services.app, use_case.id)
    assert not report.intact
    assert report.first_bad_version == version
    assert "snapshot" in (report.reason or "")


@pytest.mark.postgres
def test_postgres_refuses_to_rewrite_snapshots(postgres_settings: Settings) -> None:
    services = bootstrap(postgres_settings)
    Journey(services.app).register().reach(Stage.DEPLOYMENT)
    table = services.database.table(
        services.app.snapshots.recorder.events_table_name  # type: ignore[union-attr]
    )
    for statement in (
        f"UPDATE {table} SET state = state",
        f"DELETE FROM {table}",
        f"TRUNCATE {table}",
    ):
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            psycopg.connect(services.settings.database_url) as conn,
        ):
            conn.execute(statement)
    services.close()


def test_a_chain_missing_its_last_hash_is_not_extended(services: Services) -> None:
    journey = Journey(services.app).register()
    use_case = services.app.use_case(journey.key)
    db = services.database
    with db.transaction() as curs:
        if db.is_postgres:
            curs.execute("SET LOCAL session_replication_role = replica")
        curs.execute(
            f"DELETE FROM {db.table(HASHES_TABLE)} WHERE originator_id = %s",
            (use_case.id if db.is_postgres else str(use_case.id),),
        )

    with pytest.raises(Exception, match="no chain hash"):
        journey.issue(c.ScorePriority, **PRIORITY)

    assert services.app.use_case(journey.key).version == 1
