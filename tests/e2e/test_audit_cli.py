"""``stagegate audit verify`` and ``stagegate audit export``, run as commands on a SQLite file.

The commands find a tampered copy, name the first bad version, catch a recomputed chain only
against an earlier export, and refuse unknown keys and unreadable export files clearly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.audit import POLICY_SUBJECT
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.integration.tampering import (
    History,
    StoreCopy,
    copier,
    one_byte_changed,
    record_history,
    rewrite_and_rehash,
)


@pytest.fixture
def sqlite_history(sqlite_settings: Settings) -> Iterator[History]:
    services = bootstrap(sqlite_settings)
    yield record_history(services)
    services.close()


def _stagegate(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEGATE_")}
    env["STAGEGATE_DATABASE_URL"] = f"sqlite:///{database}"
    command = [sys.executable, "-m", "infra.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def copy_of_sqlite(sqlite_history: History, tmp_path: Path) -> Iterator[Callable[[], StoreCopy]]:
    yield from copier(sqlite_history, tmp_path)


def test_the_cli_exports_and_verifies_end_to_end(
    sqlite_history: History, copy_of_sqlite: Callable[[], StoreCopy], tmp_path: Path
) -> None:
    history, key = sqlite_history, sqlite_history.measured
    database = history.services.settings.sqlite_path
    export_file = tmp_path / "export.jsonl"

    exported = _stagegate(database, "audit", "export", "--key", key, "--output", str(export_file))
    assert exported.returncode == 0, exported.stderr
    assert export_file.read_text(encoding="ascii") == history.exports[key]
    assert _stagegate(database, "audit", "export", "--key", key).stdout == history.exports[key]

    clean = _stagegate(database, "audit", "verify")
    assert clean.returncode == 0, clean.stderr
    subjects = sorted([*history.keys, POLICY_SUBJECT])
    assert [line.split(":")[0] for line in clean.stdout.splitlines()[:-1]] == subjects
    assert all(": intact at version " in line for line in clean.stdout.splitlines()[:-1])
    assert clean.stdout.splitlines()[-1] == "4 histories verified, 0 not intact"

    changed = copy_of_sqlite()
    changed.set_event(key, 9, state=one_byte_changed(changed.state(key, 9)))
    tampered = _stagegate(changed.services.settings.sqlite_path, "audit", "verify")
    assert tampered.returncode == 1
    assert (
        f"{key}: NOT INTACT, first bad version 9: "
        "payload or hash of version 9 does not match its chain"
    ) in tampered.stdout.splitlines()
    assert tampered.stdout.splitlines()[-1] == "4 histories verified, 1 not intact"

    recomputed = copy_of_sqlite()
    rewrite_and_rehash(recomputed, key)
    forged_database = recomputed.services.settings.sqlite_path
    assert _stagegate(forged_database, "audit", "verify", "--key", key).returncode == 0
    for args in (("--against", str(export_file)), ("--key", key, "--against", str(export_file))):
        caught = _stagegate(forged_database, "audit", "verify", *args)
        assert caught.returncode == 1
        assert (
            f"{key}: NOT INTACT, first bad version 5: "
            "stored chain differs from the exported chain at version 5"
        ) in caught.stdout.splitlines()


def test_the_cli_names_what_it_cannot_do(sqlite_history: History, tmp_path: Path) -> None:
    database = sqlite_history.services.settings.sqlite_path
    output = tmp_path / "nope.jsonl"
    unknown = _stagegate(database, "audit", "export", "--key", "nope", "--output", str(output))
    assert (unknown.returncode, unknown.stderr) == (1, "Error: no use case has the key 'nope'\n")
    assert not output.exists()
    unknown = _stagegate(database, "audit", "verify", "--key", "nope")
    assert (unknown.returncode, unknown.stderr) == (1, "Error: no use case has the key 'nope'\n")

    key = sqlite_history.measured
    export = sqlite_history.exports[key]
    bad_files = {
        "not json\n": "line 1 is not JSON",
        export.rsplit("\n", 2)[0] + "\n": f"the export of {key} has no head line",
        export.replace('"version": 9,', '"version": 90,'): f"the export of {key} is not every",
        export.replace(key, "other-key"): "line 1: originatorId is not the id of other-key",
    }
    for content, message in bad_files.items():
        against = tmp_path / "against.jsonl"
        against.write_text(content, encoding="utf-8")
        refused = _stagegate(database, "audit", "verify", "--against", str(against))
        assert refused.returncode == 1
        assert f"{against} is not a stagegate export: {message}" in refused.stderr
    missing = _stagegate(database, "audit", "verify", "--against", str(tmp_path / "absent"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    against.write_text(export, encoding="utf-8")
    elsewhere = _stagegate(database, "audit", "verify", "--key", "other", "--against", str(against))
    assert (elsewhere.returncode, elsewhere.stderr) == (
        1,
        f"Error: {against} holds no export of 'other'\n",
    )
