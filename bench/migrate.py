"""Benchmark of a schema upgrade at scale: a database of the last release before migrations,
brought to this release's revision, timed, and checked row for row.

    python bench/generate.py postgresql://postgres@127.0.0.1:5432/sg_bench_100k \\
        --use-cases 100000 --events 1000000 --workers 1 --create
    python bench/migrate.py postgresql://postgres@127.0.0.1:5432/sg_bench_100k

1. The generated database (at this release's revision) gets its read models rebuilt, so the
   upgrade meets every table full; every table is fingerprinted ("full");
2. it is taken back to the last release before migrations by the migrations' own downgrades
   (``tests/integration/test_migrations.py`` shows that release's schema and the upgraded one
   are the same, table for table). ``0004``'s downgrade leaves the summaries projection empty
   (its tables in their earlier shape), so its rows are put back from a copy taken in 1, in
   that shape, with its position: the database then holds what that release left, full;
3. every table is fingerprinted (row count, and an order-independent digest of its rows);
4. ``stagegate db upgrade`` runs, timed as a whole process (start, lock, migrations, the
   rebuild of what a migration emptied, exit);
5. every table is fingerprinted again. What ``0004`` discards and rebuilds is checked for what
   it must be: the snapshots are empty; the summaries have one row per registered use case
   and, but for when they were judged, equal those of step 1 (the same code judged both);
   the unmet requirements equal step 1's; the stage periods and inference costs, which come
   from the events alone, equal what they were before. Every other table must match row for
   row, bar the version record that the upgrade replaces with the revision. Anything else
   fails the run (exit status 1).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import psycopg
from alembic import command
from eventsourcing.utils import get_topic
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from domain.usecase import events as use_case_events  # noqa: E402
from infra import migrations  # noqa: E402
from infra.bootstrap import bootstrap  # noqa: E402
from infra.readmodels.schema import COSTS, PERIODS, POSITIONS, SUMMARIES, UNMET  # noqa: E402
from infra.settings import Settings  # noqa: E402

VERSION_RECORDS = {migrations.REVISION_TABLE, migrations.LEGACY_VERSION_TABLE}
SNAPSHOTS = "stagegate_snapshots"
FROM_EVENTS = (PERIODS, COSTS)
"""Emptied by 0004 and rebuilt from the events alone: must come back exactly as they were."""
SUMMARIES_PROJECTION = (SUMMARIES, UNMET, *FROM_EVENTS)
DERIVED = {SNAPSHOTS, *SUMMARIES_PROJECTION}
"""What 0004 discards or empties and the upgrade rebuilds: checked apart from the rest."""
JUDGING = ("value_proven", "judged_at")
"""The summaries' columns since 0004."""
KEPT = "stagegate_bench_kept"
"""A schema of this benchmark's own, outside the fingerprints: the summaries projection's rows
of step 1, put back after the downgrade."""

Fingerprints = dict[str, tuple[int, str]]


def fingerprints(url: str, leave_out: Mapping[str, tuple[str, ...]] | None = None) -> Fingerprints:
    """Per table: rows, and the digest of its rows' digests in sorted order (of each row's
    columns but those ``leave_out`` names for its table)."""
    leave_out = leave_out or {}
    with psycopg.connect(url) as db:
        tables = [
            name
            for (name,) in db.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
            )
        ]
        found = {}
        for name in tables:
            row_text: sql.Composable = sql.SQL("t::text")
            if name in leave_out:
                columns = [
                    c
                    for (c,) in db.execute(
                        "SELECT column_name FROM information_schema.columns"
                        " WHERE table_schema = 'public' AND table_name = %s"
                        " ORDER BY ordinal_position",
                        (name,),
                    )
                    if c not in leave_out[name]
                ]
                row_text = sql.SQL("ROW({})::text").format(
                    sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in columns)
                )
            row = db.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), ''))"
                    " FROM (SELECT md5({}) AS h FROM {} t) rows"
                ).format(row_text, sql.Identifier(name))
            ).fetchone()
            assert row is not None
            found[name] = (int(row[0]), str(row[1]))
        return found


def registered_use_cases(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT count(*) FROM stagegate_events WHERE originator_version = 1 AND topic = %s",
            (get_topic(use_case_events.Registered),),
        ).fetchone()
        assert row is not None
        return int(row[0])


def rebuild_read_models(settings: Settings) -> None:
    services = bootstrap(settings)
    try:
        started = time.perf_counter()
        services.read_models.rebuild()
        print(f"read models rebuilt in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        services.close()


def back_to_the_release_before_migrations(settings: Settings) -> None:
    services = bootstrap(settings)
    db = services.database
    try:
        with db.transaction() as curs:  # the summaries projection's rows, as they are now
            curs.execute(f"DROP SCHEMA IF EXISTS {KEPT} CASCADE")
            curs.execute(f"CREATE SCHEMA {KEPT}")
            for table in SUMMARIES_PROJECTION:
                curs.execute(f"CREATE TABLE {KEPT}.{table} AS SELECT * FROM {db.table(table)}")
            curs.execute(
                f"CREATE TABLE {KEPT}.{POSITIONS} AS SELECT * FROM {db.table(POSITIONS)}"
                " WHERE projection = 'summaries'"
            )
        with migrations._alembic(services) as config:  # the same connection setup as upgrade
            command.downgrade(config, "base")
        with db.transaction() as curs:
            # That release had no revision table.
            curs.execute(f"DROP TABLE {db.table(migrations.REVISION_TABLE)}")
            # Its summaries projection was full (0004's downgrade empties it), in its shape.
            curs.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                (SUMMARIES,),
            )
            columns = [row["column_name"] for row in curs.fetchall()]
            assert not set(JUDGING) & set(columns), "the downgrade left the judging columns"
            for table in SUMMARIES_PROJECTION:
                listed = ", ".join(columns) if table == SUMMARIES else "*"
                into = f"({listed})" if table == SUMMARIES else ""
                curs.execute(
                    f"INSERT INTO {db.table(table)} {into} SELECT {listed} FROM {KEPT}.{table}"
                )
            curs.execute(
                f"UPDATE {db.table(POSITIONS)} p SET position = k.position"
                f" FROM {KEPT}.{POSITIONS} k WHERE p.projection = k.projection"
            )
            curs.execute(f"DROP SCHEMA {KEPT} CASCADE")
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="a database made by bench/generate.py")
    parser.add_argument(
        "--no-rebuild", action="store_true", help="the read models are full already (a rerun)"
    )
    args = parser.parse_args()
    settings = Settings(database_url=args.url)
    judged = {SUMMARIES: ("judged_at",)}  # when, not what: the upgrade judges them again

    if not args.no_rebuild:
        rebuild_read_models(settings)
    full = fingerprints(args.url, judged)
    back_to_the_release_before_migrations(settings)
    before = fingerprints(args.url)
    revision = "present" if migrations.REVISION_TABLE in before else "absent"
    print(
        f"before: {len(before)} tables, {sum(n for n, _ in before.values()):,} rows"
        f" (a release before migrations: {migrations.LEGACY_VERSION_TABLE} present,"
        f" {migrations.REVISION_TABLE} {revision}; {before[SNAPSHOTS][0]:,} snapshots,"
        f" {before[SUMMARIES][0]:,} summaries)",
        flush=True,
    )

    env = {**os.environ, "STAGEGATE_DATABASE_URL": args.url}
    started = time.perf_counter()
    upgraded = subprocess.run(
        [sys.executable, "-m", "infra.cli", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - started
    if upgraded.returncode != 0:
        sys.exit(f"db upgrade failed: {upgraded.stderr}")
    print(f"stagegate db upgrade: {took:.2f} s  ({upgraded.stdout.strip()})", flush=True)
    for line in upgraded.stderr.splitlines():  # what it logged (the rebuild's start)
        print(f"  | {line}")

    after = fingerprints(args.url, judged)
    kept = {t: f for t, f in before.items() if t not in VERSION_RECORDS | DERIVED}
    now = {t: f for t, f in after.items() if t not in VERSION_RECORDS | DERIVED}
    lost = sorted(t for t in kept.keys() | now.keys() if now.get(t) != kept.get(t))
    use_cases = registered_use_cases(args.url)
    checks = [
        (
            f"every row of the {len(kept)} other tables unchanged",
            not lost,
            f"changed, added or gone: {lost}",
        ),
        (
            f"snapshots discarded ({before[SNAPSHOTS][0]:,} before, {after[SNAPSHOTS][0]:,} after)"
            + ("" if before[SNAPSHOTS][0] else ": vacuous, there were none"),
            after[SNAPSHOTS][0] == 0,
            "some are left",
        ),
        (
            f"summaries put back full before the upgrade ({before[SUMMARIES][0]:,} rows)",
            all(before[t][0] == full[t][0] for t in SUMMARIES_PROJECTION)
            and all(before[t] == full[t] for t in (UNMET, *FROM_EVENTS)),
            "the downgraded database is not what the release before left",
        ),
        (
            f"one summary per registered use case ({after[SUMMARIES][0]:,} rows,"
            f" {use_cases:,} registered)",
            after[SUMMARIES][0] == use_cases,
            "rows missing or extra",
        ),
        (
            "summaries as this release rebuilds them (every column but judged_at)",
            after[SUMMARIES] == full[SUMMARIES],
            "differ (a month turned between the rebuild and the upgrade?)",
        ),
        (
            f"unmet requirements as this release rebuilds them ({after[UNMET][0]:,} rows)",
            after[UNMET] == full[UNMET],
            "differ",
        ),
        *(
            (
                f"{table} as before, from the events alone ({after[table][0]:,} rows)",
                after[table] == before[table] and after[table][0] > 0,
                f"before {before[table]}, after {after[table]}",
            )
            for table in FROM_EVENTS
        ),
    ]
    print(f"after: {len(after)} tables, {sum(n for n, _ in after.values()):,} rows")
    for what, ok, otherwise in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}" + ("" if ok else f": {otherwise}"))
    if not all(ok for _, ok, _ in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
