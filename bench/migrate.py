"""Benchmark of a schema upgrade at scale: a database of the last release before migrations,
brought to this release's revision, timed, and checked row for row.

    python bench/generate.py postgresql://postgres@127.0.0.1:5432/sg_bench_100k \\
        --use-cases 100000 --events 1000000 --create
    python bench/migrate.py postgresql://postgres@127.0.0.1:5432/sg_bench_100k

1. The generated database (at this release's revision) gets its read models rebuilt, so the
   upgrade meets every table full;
2. it is taken back to the last release before migrations by the migrations' own downgrades
   (``tests/integration/test_migrations.py`` shows that release's schema and the upgraded one
   are the same, table for table);
3. every table is fingerprinted (row count, and an order-independent digest of its rows);
4. ``stagegate db upgrade`` runs, timed as a whole process (start, lock, migrations, exit);
5. every table is fingerprinted again: all must match, bar the version record that the
   upgrade replaces with the revision.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from alembic import command
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra import migrations  # noqa: E402
from infra.bootstrap import bootstrap  # noqa: E402
from infra.settings import Settings  # noqa: E402

VERSION_RECORDS = {migrations.REVISION_TABLE, migrations.LEGACY_VERSION_TABLE}


def fingerprints(url: str) -> dict[str, tuple[int, str]]:
    """Per table: rows, and the digest of its rows' digests in sorted order."""
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
            row = db.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), ''))"
                    " FROM (SELECT md5(t::text) AS h FROM {} t) rows"
                ).format(sql.Identifier(name))
            ).fetchone()
            assert row is not None
            found[name] = (int(row[0]), str(row[1]))
        return found


def back_to_the_release_before_migrations(settings: Settings, rebuild: bool) -> None:
    services = bootstrap(settings)
    try:
        if rebuild:
            started = time.perf_counter()
            services.read_models.rebuild()
            print(f"read models rebuilt in {time.perf_counter() - started:.1f} s", flush=True)
        with migrations._alembic(services) as config:  # the same connection setup as upgrade
            command.downgrade(config, "base")
        with services.database.transaction() as curs:  # that release had no revision table
            curs.execute(f"DROP TABLE {services.database.table(migrations.REVISION_TABLE)}")
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

    back_to_the_release_before_migrations(settings, rebuild=not args.no_rebuild)
    before = fingerprints(args.url)
    revision = "present" if migrations.REVISION_TABLE in before else "absent"
    print(
        f"before: {len(before)} tables, {sum(n for n, _ in before.values()):,} rows"
        f" (a release before migrations: {migrations.LEGACY_VERSION_TABLE} present,"
        f" {migrations.REVISION_TABLE} {revision})",
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

    after = fingerprints(args.url)
    kept = {t: f for t, f in before.items() if t not in VERSION_RECORDS}
    now = {t: f for t, f in after.items() if t not in VERSION_RECORDS}
    lost = sorted(t for t in kept if now.get(t) != kept[t])
    print(
        f"after: {len(after)} tables, {sum(n for n, _ in after.values()):,} rows;"
        f" every row of {len(kept)} tables unchanged: {'yes' if not lost else 'NO: ' + str(lost)}"
    )
    if lost or set(now) != set(kept):
        sys.exit(1)


if __name__ == "__main__":
    main()
