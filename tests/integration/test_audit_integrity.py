"""Acceptance 3: tampering with a copy of the database is detected and located at its version.

A realistic history (use cases driven through the real commands, and the policy) is exported
first, as an auditor would keep it outside the database. Each test then tampers with a fresh
copy of the store (see ``tampering``) and verifies it, alone and against the export.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from domain.usecase import use_case_id
from infra.audit import POLICY_SUBJECT, verify_all, verify_chain
from infra.bootstrap import Services, bootstrap
from infra.chain import HASHES_TABLE
from infra.settings import Settings
from tests.integration.tampering import (
    AWKWARD_FLOATS,
    LAST,
    UNUSUAL_TITLE,
    History,
    StoreCopy,
    copier,
    export_text,
    one_byte_changed,
    record_history,
    rewrite_and_rehash,
)

VERIFY_EXPORT = Path(__file__).parents[2] / "docs" / "verify_export.py"


@pytest.fixture
def history(services: Services) -> History:
    return record_history(services)


@pytest.fixture
def copy_of(history: History, tmp_path: Path) -> Iterator[Callable[[], StoreCopy]]:
    yield from copier(history, tmp_path)


def _not_intact_elsewhere(copy: StoreCopy) -> list[str]:
    return [result.subject for result in verify_all(copy.app) if not result.report.intact]


# --- acceptance 3 -------------------------------------------------------------------------


def test_a_clean_copy_reports_every_history_intact(
    history: History, copy_of: Callable[[], StoreCopy]
) -> None:
    copy = copy_of()
    results = verify_all(copy.app, against=history.all_exported())
    assert sorted(r.subject for r in results) == sorted([*history.keys, POLICY_SUBJECT])
    assert all(r.report.intact for r in results), results
    for result in results:
        assert result.report.first_bad_version is None
        assert result.report.reason is None
        if result.subject != POLICY_SUBJECT:
            exported = history.exported(result.subject)
            assert result.report.head_version == exported.head_version
            assert result.report.head_hash == exported.hashes[exported.head_version]


@pytest.mark.parametrize("version", [1, 9, LAST])
def test_one_changed_byte_of_a_payload_is_located_at_its_version(
    history: History, copy_of: Callable[[], StoreCopy], version: int
) -> None:
    copy = copy_of()
    key = history.measured
    copy.set_event(key, version, state=one_byte_changed(copy.state(key, version)))
    report = verify_chain(copy.app, use_case_id(key))
    assert not report.intact
    assert report.first_bad_version == version
    assert report.reason == f"payload or hash of version {version} does not match its chain"
    assert _not_intact_elsewhere(copy) == [key]


@pytest.mark.parametrize(
    ("version", "hash_row_too"), [(1, False), (1, True), (9, False), (9, True), (LAST, False)]
)
def test_a_deleted_event_is_located_at_its_version(
    history: History, copy_of: Callable[[], StoreCopy], version: int, hash_row_too: bool
) -> None:
    copy = copy_of()
    copy.delete_events(history.measured, version, version, hash_rows=hash_row_too)
    report = verify_chain(copy.app, use_case_id(history.measured))
    assert (report.intact, report.first_bad_version) == (False, version)
    assert report.reason == f"version {version} is missing"


@pytest.mark.parametrize("whole_events", [False, True], ids=["payloads", "payloads-and-topics"])
def test_two_swapped_events_are_located_at_the_first(
    history: History, copy_of: Callable[[], StoreCopy], whole_events: bool
) -> None:
    copy = copy_of()
    key = history.measured
    sixth, seventh = copy.state(key, 6), copy.state(key, 7)
    assert sixth != seventh
    sixth_topic, seventh_topic = copy.topic(key, 6), copy.topic(key, 7)
    copy.set_event(key, 6, state=seventh, topic=seventh_topic if whole_events else None)
    copy.set_event(key, 7, state=sixth, topic=sixth_topic if whole_events else None)
    report = verify_chain(copy.app, use_case_id(key))
    assert (report.intact, report.first_bad_version) == (False, 6)
    assert report.reason == "payload or hash of version 6 does not match its chain"


def test_a_tail_truncated_below_the_exported_head_is_located(
    history: History, copy_of: Callable[[], StoreCopy]
) -> None:
    copy = copy_of()
    key = history.measured
    copy.delete_events(key, 16, LAST, hash_rows=True, read_side=True)

    alone = verify_chain(copy.app, use_case_id(key))
    assert (alone.intact, alone.head_version) == (True, 15)  # why heads are kept outside
    expected = f"history ends at version 15 but the exported head is at version {LAST}"
    for against in (history.exported(key), history.exported_head(key)):
        report = verify_chain(copy.app, use_case_id(key), against)
        assert (report.intact, report.first_bad_version, report.reason) == (False, 16, expected)


def test_a_history_deleted_whole_is_reported_against_its_export(
    history: History, copy_of: Callable[[], StoreCopy]
) -> None:
    copy = copy_of()
    copy.delete_events(history.measured, 1, LAST, hash_rows=True)
    results = {r.subject: r.report for r in verify_all(copy.app, against=history.all_exported())}
    gone = results.pop(history.measured)
    assert (gone.intact, gone.first_bad_version) == (False, 1)
    assert gone.reason == f"nothing is stored but the exported head is at version {LAST}"
    assert all(report.intact for report in results.values())


def test_a_recomputed_chain_is_intact_alone_but_caught_against_the_export(
    history: History, copy_of: Callable[[], StoreCopy]
) -> None:
    copy = copy_of()
    key = history.measured
    original = copy.state(key, 5)
    rewrite_and_rehash(copy, key)
    assert copy.state(key, 5) != original

    assert verify_chain(copy.app, use_case_id(key)).intact
    full = verify_chain(copy.app, use_case_id(key), history.exported(key))
    assert (full.intact, full.first_bad_version) == (False, 5)
    assert full.reason == "stored chain differs from the exported chain at version 5"
    head = verify_chain(copy.app, use_case_id(key), history.exported_head(key))
    assert (head.intact, head.first_bad_version) == (False, None)
    assert head.reason == (
        f"stored chain does not match the exported hash of version {LAST}: "
        f"a version from 1 to {LAST} was altered"
    )


def test_the_export_reproduces_the_stored_bytes_of_unusual_text_and_floats(
    history: History, tmp_path: Path
) -> None:
    unusual = history.keys[2]
    records = [json.loads(line) for line in history.exports[unusual].splitlines()]
    assert records[0]["payload"]["title"] == UNUSUAL_TITLE
    measured = [r for r in records if r.get("type") == "MeasurementRecorded"]
    values = [r["payload"]["measurement"]["value"] for r in measured]
    assert values[-len(AWKWARD_FLOATS) :] == list(AWKWARD_FLOATS)
    assert "stateBase64" not in "".join(history.exports.values())
    assert _verify_offline(tmp_path, history.exports[unusual]) == {unusual: (True, None)}


# --- PostgreSQL refuses rewrites ------------------------------------------------------------


@pytest.fixture
def postgres_history(postgres_settings: Settings) -> Iterator[History]:
    services = bootstrap(postgres_settings)
    yield record_history(services)
    services.close()


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["events", "hashes"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET originator_version = originator_version + 1000",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
    ],
)
def test_postgres_refuses_to_rewrite_the_audit_tables(
    postgres_history: History, table: str, statement: str
) -> None:
    services = postgres_history.services
    database = services.database
    name = database.table(_events_table(services) if table == "events" else HASHES_TABLE)
    conninfo = make_conninfo(**services.settings.postgres_params())
    with (
        psycopg.connect(conninfo, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
    ):
        conn.execute(statement.format(table=name).encode())
    exported = postgres_history.all_exported()
    assert all(r.report.intact for r in verify_all(services.app, against=exported))


def _events_table(services: Services) -> str:
    return str(services.app.recorder.events_table_name)  # type: ignore[attr-defined]


# --- the offline procedure agrees ---------------------------------------------------------


def _swap(copy: StoreCopy, key: str) -> None:
    sixth, seventh = copy.state(key, 6), copy.state(key, 7)
    copy.set_event(key, 6, state=seventh)
    copy.set_event(key, 7, state=sixth)


TAMPERING: dict[str, tuple[Callable[[StoreCopy, str], None], tuple[bool, int | None]]] = {
    "clean": (lambda copy, key: None, (True, None)),
    "changed-byte": (
        lambda copy, key: copy.set_event(key, 9, state=one_byte_changed(copy.state(key, 9))),
        (False, 9),
    ),
    "broken-json": (
        lambda copy, key: copy.set_event(key, 9, state=b"[" + copy.state(key, 9)[1:]),
        (False, 9),
    ),
    "not-canonical-json": (
        lambda copy, key: copy.set_event(key, 9, state=copy.state(key, 9).replace(b":", b": ", 1)),
        (False, 9),
    ),
    "deleted": (lambda copy, key: copy.delete_events(key, 9, 9, hash_rows=True), (False, 9)),
    "swapped": (_swap, (False, 6)),
    "truncated": (
        lambda copy, key: copy.delete_events(key, 16, LAST, hash_rows=True, read_side=True),
        (False, 16),
    ),
    "recomputed": (rewrite_and_rehash, (False, 5)),
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_the_offline_verifier_agrees_with_verify_chain(
    history: History, copy_of: Callable[[], StoreCopy], tmp_path: Path, tampering: str
) -> None:
    tamper, expected = TAMPERING[tampering]
    copy = copy_of()
    key = history.measured
    tamper(copy, key)
    export = export_text(copy.services, key)

    report = verify_chain(copy.app, use_case_id(key), history.exported(key))
    assert (report.intact, report.first_bad_version) == expected
    offline = _verify_offline(tmp_path, export, published=history.exports[key])
    assert offline == {key: expected}

    alone = verify_chain(copy.app, use_case_id(key))
    assert _verify_offline(tmp_path, export) == {key: (alone.intact, alone.first_bad_version)}
    assert ("stateBase64" in export) == tampering.endswith("json")


def _verify_offline(
    folder: Path, export: str, published: str | None = None
) -> dict[str, tuple[bool, int | None]]:
    """Run docs/verify_export.py as an auditor would: {key: (intact, first bad version)}."""
    export_file, published_file = folder / "offline-export.jsonl", folder / "published.jsonl"
    export_file.write_text(export, encoding="utf-8")
    args = [sys.executable, str(VERIFY_EXPORT), str(export_file)]
    if published is not None:
        published_file.write_text(published, encoding="utf-8")
        args += ["--published", str(published_file)]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    outcome = {}
    for line in run.stdout.splitlines():
        match = REPORT_LINE.match(line)
        assert match, line
        bad = match["version"]
        outcome[match["key"]] = (match["intact"] is not None, int(bad) if bad else None)
    assert run.returncode == (0 if all(intact for intact, _ in outcome.values()) else 1)
    return outcome


REPORT_LINE = re.compile(
    r"^(?P<key>\S+): (?:(?P<intact>intact) at version \d+ \([0-9a-f]{64}\)"
    r"|NOT INTACT(?:, first bad version (?P<version>\d+))?: .+)$"
)
