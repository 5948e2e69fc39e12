"""The dialect members of ``infra.database.Database``: each means the same on both stores."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain import commands as c
from domain.usecase.aggregate import use_case_id
from infra.bootstrap import Services
from infra.chain import HASHES_TABLE
from infra.readmodels.schema import ALL_TABLES, POSITIONS
from tests.builders import EDITOR, PRIORITY, Journey


def _events_table(services: Services) -> str:
    return services.database.table(services.app.recorder.events_table_name)  # type: ignore[attr-defined]


def test_the_log_position_column_and_the_stored_uuid_find_the_events(
    services: Services,
) -> None:
    db = services.database
    journey = Journey(services.app).register()
    journey.issue(c.ScorePriority, EDITOR, **PRIORITY)
    id_ = use_case_id(journey.key)
    rows = db.select(
        f"SELECT {db.log_position_column} AS n, originator_version AS v"
        f" FROM {_events_table(services)} WHERE originator_id = %s ORDER BY n",
        (db.stored_uuid(id_),),
    )
    assert [int(r["v"]) for r in rows] == [1, 2]
    assert int(rows[0]["n"]) < int(rows[1]["n"])
    literal = db.select(
        f"SELECT COUNT(*) AS n FROM {_events_table(services)}"
        f" WHERE originator_id = '{db.stored_uuid(id_)}'"
    )
    assert int(literal[0]["n"]) == 2


def test_the_uuid_form_finds_the_hashes(services: Services) -> None:
    db = services.database
    journey = Journey(services.app).register()
    rows = db.select(
        f"SELECT COUNT(*) AS n FROM {db.table(HASHES_TABLE)} WHERE originator_id = %s",
        (db.uuid(use_case_id(journey.key)),),
    )
    assert int(rows[0]["n"]) == 1


def test_days_between_and_summable_money(services: Services) -> None:
    db = services.database
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=2, hours=12)
    name = db.table("stagegate_dialect_probe")
    with db.transaction() as curs:
        curs.execute(
            f"CREATE TABLE {name} (a {db.type_of('timestamp')}, b {db.type_of('timestamp')},"
            f" amount {db.type_of('money')})"
        )
        curs.executemany(
            f"INSERT INTO {name} (a, b, amount) VALUES (%s, %s, %s)",
            [
                (db.ts(start), db.ts(end), db.money(Decimal("1.25"))),
                (None, None, db.money(Decimal(2))),
            ],
        )
    [row] = db.select(
        f"SELECT MAX({db.days_between('a', 'b')}) AS days,"
        f" SUM({db.summable_money('amount')}) AS total FROM {name}"
    )
    assert float(row["days"]) == 2.5
    assert Decimal(str(row["total"])) == Decimal("3.25")


def test_tables_exist(services: Services) -> None:
    db = services.database
    assert db.tables_exist(ALL_TABLES)
    assert not db.tables_exist((*ALL_TABLES, "stagegate_no_such_table"))


def test_rows_by_keys_finds_each_key_however_many(services: Services) -> None:
    db = services.database
    name = db.table("stagegate_keys_probe")
    keys = [(f"s{i % 3}", f"d{i}") for i in range(450)]
    with db.transaction() as curs:
        curs.execute(f"CREATE TABLE {name} (s TEXT, d TEXT, PRIMARY KEY (s, d))")
        curs.executemany(f"INSERT INTO {name} (s, d) VALUES (%s, %s)", keys)
        assert db.rows_by_keys(curs, name, ("s", "d"), []) == []
        wanted = [*keys[::2], ("s9", "missing")]
        found = db.rows_by_keys(curs, name, ("s", "d"), wanted)
    assert sorted((r["s"], r["d"]) for r in found) == sorted(keys[::2])


def test_select_for_update_keeps_other_writers_out_until_commit(services: Services) -> None:
    db = services.database
    positions = db.table(POSITIONS)
    entered = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with db.transaction() as curs:
            db.lock_log(curs)  # takes the append lock on PostgreSQL, nothing on SQLite
            db.select_for_update(curs, positions, "position", "projection = %s", ("history",))
            assert curs.fetchone() is not None
            entered.set()
            release.wait(5)
            order.append("first")

    def second() -> None:
        entered.wait(5)
        with db.transaction() as curs:
            db.select_for_update(curs, positions, "position", "projection = %s", ("history",))
            order.append("second")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    entered.wait(5)
    time.sleep(0.3)  # the second writer is waiting by now
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first", "second"]


def test_claiming_clauses_run(services: Services) -> None:
    db = services.database
    positions = db.table(POSITIONS)
    with db.transaction() as curs:
        db.take_write_lock(curs, positions, "position")
        curs.execute(
            f"SELECT p.position FROM {positions} p ORDER BY p.projection"
            f"{db.for_update_skip_locked('p')}"
        )
        assert len(curs.fetchall()) >= 2
        curs.execute(
            f"SELECT position FROM {positions} WHERE projection = %s{db.row_lock}", ("summaries",)
        )
        assert curs.fetchone() is not None


def test_a_consistent_read_sees_one_snapshot(services: Services) -> None:
    db = services.database
    name = db.table("stagegate_snapshot_probe")
    with db.transaction() as curs:
        curs.execute(f"CREATE TABLE {name} (n {db.type_of('bigint')})")
        curs.execute(f"INSERT INTO {name} (n) VALUES (1)")

    def bump() -> None:
        with db.transaction() as curs:
            curs.execute(f"UPDATE {name} SET n = n + 1")

    with db.consistent_read() as curs:
        curs.execute(f"SELECT n FROM {name}")
        assert curs.fetchall() == [{"n": 1}]
        writer = threading.Thread(target=bump)
        writer.start()
        writer.join(0.5)  # on PostgreSQL it commits; on SQLite it may wait for this read
        curs.execute(f"SELECT n FROM {name}")
        assert curs.fetchall() == [{"n": 1}]
    writer.join(10)
    assert not writer.is_alive()
    assert db.select(f"SELECT n FROM {name}") == [{"n": 2}]


class _Counted:
    """A cursor that records the statements it is given."""

    def __init__(self, curs: Any) -> None:
        self.curs = curs
        self.sent: list[str] = []

    def execute(self, sql: str, params: Any = ()) -> None:
        self.sent.append(sql)
        self.curs.execute(sql, params)

    def executemany(self, sql: str, params_seq: Any) -> None:
        self.sent.append(sql)
        self.curs.executemany(sql, params_seq)


def test_writes_together_mean_what_they_mean_one_by_one(services: Services) -> None:
    """A key deleted, then written again in the same group of writes, and a row inserted
    then updated: as each would be alone. PostgreSQL sends four writes as two statements
    (the second write to a table starts the next); SQLite runs each as it comes."""
    db = services.database
    kept, notes = db.table("stagegate_together_kept"), db.table("stagegate_together_notes")
    with db.transaction() as curs:
        curs.execute(f"CREATE TABLE {kept} (k TEXT PRIMARY KEY, v INTEGER)")
        curs.execute(f"CREATE TABLE {notes} (k TEXT PRIMARY KEY, n INTEGER)")
        curs.executemany(f"INSERT INTO {kept} (k, v) VALUES (%s, %s)", [("x", 1), ("y", 2)])
    with db.transaction() as curs:
        counted = _Counted(curs)
        with db.writes_together(counted) as writes:  # type: ignore[arg-type]
            writes.execute(f"DELETE FROM {kept} WHERE k IN (%s, %s)", ("x", "y"))
            writes.execute(f"INSERT INTO {notes} (k, n) VALUES (%s, %s)", ("x", 0))
            writes.execute(f"INSERT INTO {kept} (k, v) VALUES (%s, %s)", ("x", 10))
            writes.executemany(f"UPDATE {notes} SET n = n + %s WHERE k = %s", [(5, "x")])
        rows = {
            "kept": sorted((r["k"], r["v"]) for r in _all(curs, kept)),
            "notes": sorted((r["k"], r["n"]) for r in _all(curs, notes)),
        }
    assert rows == {"kept": [("x", 10)], "notes": [("x", 5)]}
    if db.is_postgres:
        assert len(counted.sent) == 2
        assert all(sql.startswith("WITH ") for sql in counted.sent)
    else:
        assert len(counted.sent) == 4


def _all(curs: Any, table: str) -> list[dict[str, Any]]:
    curs.execute(f"SELECT * FROM {table}")
    return curs.fetchall()


def test_writes_together_refuse_what_is_not_a_write_and_send_nothing_after_a_failure(
    services: Services,
) -> None:
    db = services.database
    probe = db.table("stagegate_together_probe")
    with db.transaction() as curs:
        curs.execute(f"CREATE TABLE {probe} (k TEXT PRIMARY KEY)")
        with db.writes_together(curs) as writes:
            with pytest.raises(ValueError, match="not a write"):
                writes.execute(f"SELECT k FROM {probe}")
            with pytest.raises(ValueError, match="not a write"):
                writes.execute(f"INSERT INTO {probe} (k) VALUES (%s) RETURNING k", ("a",))
        counted = _Counted(curs)

        def fails_half_way() -> None:
            with db.writes_together(counted) as writes:  # type: ignore[arg-type]
                writes.execute(f"INSERT INTO {probe} (k) VALUES (%s)", ("b",))
                raise RuntimeError("the rows could not all be built")

        with pytest.raises(RuntimeError):
            fails_half_way()
    assert counted.sent == ([] if db.is_postgres else [f"INSERT INTO {probe} (k) VALUES (%s)"])


def test_reads_do_not_wait_for_a_write_in_flight(services: Services) -> None:
    """On SQLite the pool lends its one writer's connection to one caller at a time: reads
    that took it waited behind every append (and its file sync) and every other read."""
    db = services.database
    writing, finish = threading.Event(), threading.Event()

    def write() -> None:
        with db.transaction() as curs:
            curs.execute(f"UPDATE {db.table(POSITIONS)} SET position = position")
            writing.set()
            finish.wait(30)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert writing.wait(30)
        with ThreadPoolExecutor(2) as pool:
            selected = pool.submit(db.select, f"SELECT COUNT(*) AS n FROM {db.table(POSITIONS)}")

            def consistently() -> int:
                with db.consistent_read() as curs:
                    curs.execute(f"SELECT COUNT(*) AS n FROM {db.table(POSITIONS)}")
                    row = curs.fetchone()
                    assert row is not None
                    return int(row["n"])

            read = pool.submit(consistently)
            # Answered while the write is still open (it ends only after).
            assert int(selected.result(timeout=10)[0]["n"]) > 0
            assert read.result(timeout=10) > 0
    finally:
        finish.set()
        writer.join()
