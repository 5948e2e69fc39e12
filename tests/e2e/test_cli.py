"""Acceptance 7: the README's first command starts the service on the embedded default.

``stagegate serve`` in an empty folder, with no configuration at all: it creates
./stagegate.db, prints where it listens and how to authenticate (with a first admin token),
and that token works. The token commands manage tokens on the same database.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from domain.values import RegistrySystem
from infra import migrations
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.builders import Journey, ctx

STAGEGATE = [sys.executable, "-m", "infra.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STAGEGATE_")}


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STAGEGATE, *args], cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=60
    )


@contextlib.contextmanager
def _serving(folder: Path, *args: str) -> Iterator[tuple[int, str]]:
    """``stagegate serve`` in ``folder`` with no configuration: (port, what it printed)."""
    port = _free_port()
    process = subprocess.Popen(
        [*STAGEGATE, "serve", "--port", str(port), *args],
        cwd=folder,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield port, _read_until(process, "Authenticate every request")
    finally:
        process.terminate()
        process.wait(timeout=10)


def _create_editor_token(folder: Path) -> str:
    created = _run("token", "create", "--actor", "ava@example.com", "--role", "editor", cwd=folder)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def test_serve_starts_on_sqlite_by_default_and_prints_how_to_authenticate(tmp_path: Path) -> None:
    with _serving(tmp_path, "--demo") as (port, banner):
        assert f"http://127.0.0.1:{port}/graphql" in banner
        assert "sqlite:///./stagegate.db" in banner
        assert "demo portfolio loaded: 10 use cases" in banner
        token = re.search(r"sgt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", banner)
        assert token, banner
        assert (tmp_path / "stagegate.db").exists()

        _wait_ready(port)
        response = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": '{ me { role } useCase(key: "invoice-triage") { stage } }'},
            headers={"Authorization": f"Bearer {token.group(0)}"},
        )
        assert response.json() == {"data": {"me": {"role": "ADMIN"}, "useCase": {"stage": "SCALE"}}}


def test_a_server_starts_past_an_event_a_read_model_cannot_hold_and_names_it(
    tmp_path: Path,
) -> None:
    """Issue 8: a year-1 business time stored by an earlier release stopped every later start."""
    services = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'stagegate.db'}"))
    try:
        journey = Journey(services.app).register()
        use_case = journey.use_case
        year_one = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
        use_case.record_adoption(1, 2, year_one, ctx().meta())  # past the commands' checks
        services.app.save(use_case)
    finally:
        services.close()

    with _serving(tmp_path) as (port, banner):
        token = re.search(r"sgt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", banner)
        assert token, banner
        _wait_ready(port)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
        registered = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={
                "query": 'mutation { registerUseCase(input: {key: "after-it", title: "After"})'
                " { __typename } }"
            },
            headers={"Authorization": f"Bearer {token.group(0)}"},
        )

    assert ready["status"] == "degraded"
    # The history cannot hold it, nor can the adoption readings (the summaries' table).
    assert ready["projectionFaults"] == 2
    assert sorted((f["projection"], f["useCaseId"], f["version"]) for f in ready["faults"]) == [
        ("history", str(use_case.id), 2),
        ("summaries", str(use_case.id), 2),
    ]
    # What was stored is not shown to an unauthenticated probe.
    assert all("reason" not in fault for fault in ready["faults"])
    assert registered.json() == {"data": {"registerUseCase": {"__typename": "UseCase"}}}
    status = _run("projections", "status", cwd=tmp_path).stdout
    assert "2 events set aside" in status
    assert f"history: version 2 of {use_case.id}" in status
    assert f"summaries: version 2 of {use_case.id}" in status
    assert "0001-01-01T00:30:00+01:00" in status


def test_db_upgrade_creates_the_schema_and_db_status_says_so(tmp_path: Path) -> None:
    before = _run("db", "status", cwd=tmp_path)
    created = _run("db", "upgrade", cwd=tmp_path)
    after = _run("db", "status", cwd=tmp_path)
    again = _run("db", "upgrade", cwd=tmp_path)

    head = migrations.head()
    database = f"sqlite:///./stagegate.db (the file {(tmp_path / 'stagegate.db').resolve()})"
    assert before.stdout.strip() == (
        f"{database}: schema empty: an upgrade creates the schema at revision {head}"
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"{database}: schema created at revision {head}"
    assert after.stdout.strip() == f"{database}: schema at revision {head}: current"
    assert again.stdout.strip() == f"{database}: schema already at revision {head}"


def test_db_init_again_restores_what_was_dropped(tmp_path: Path) -> None:
    assert _run("db", "init", cwd=tmp_path).returncode == 0
    with contextlib.closing(sqlite3.connect(tmp_path / "stagegate.db")) as db:
        db.execute("DROP TABLE stagegate_projection_faults")
        db.commit()

    again = _run("db", "init", cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    with contextlib.closing(sqlite3.connect(tmp_path / "stagegate.db")) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert "stagegate_projection_faults" in tables


def test_db_init_refuses_grants_on_sqlite(tmp_path: Path) -> None:
    result = _run("db", "init", "--grant-to", "someone", cwd=tmp_path)
    assert result.returncode != 0
    assert "roles and grants are PostgreSQL's; SQLite has none" in result.stderr


def test_a_second_start_prints_no_new_token(tmp_path: Path) -> None:
    _create_editor_token(tmp_path)
    with _serving(tmp_path) as (_, banner):
        assert "sgt_" not in banner


def test_token_commands_create_list_and_revoke(tmp_path: Path) -> None:
    token_id = _create_editor_token(tmp_path).split("_")[1]

    listed = _run("token", "list", cwd=tmp_path)
    assert token_id in listed.stdout
    assert "ava@example.com" in listed.stdout
    assert "active" in listed.stdout

    revoked = _run("token", "revoke", token_id, cwd=tmp_path)
    assert revoked.returncode == 0
    assert "revoked" in _run("token", "list", cwd=tmp_path).stdout


def test_a_registry_secret_is_printed_once_and_kept_for_verifying(tmp_path: Path) -> None:
    asked = ("registry", "secret", "mlflow", "invoice-router", "--by", "ops@x.com")
    made = _run(*asked, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert len(secret) >= 40
    services = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'stagegate.db'}"))
    try:
        kept = services.registry_secrets.secret_of(RegistrySystem.MLFLOW, "invoice-router")
    finally:
        services.close()
    assert kept == secret
    again = _run(
        "registry", "secret", "mlflow", "invoice-router", "--by", "ops@x.com", cwd=tmp_path
    )
    assert again.stdout.strip() != secret  # a new one: the one before stops verifying


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["registry", "secret", "sagemaker", "group", "--by", "ops@x.com"], "sagemaker"),
        (["token", "create", "--actor", "ava", "--role", "wizard"], "wizard"),
        (["token", "create", "--actor", "bad actor!", "--role", "editor"], "invalid --actor"),
        (["token", "revoke", "nope"], "no token has the id nope"),
    ],
)
def test_bad_cli_input_is_refused_with_a_clear_message(
    tmp_path: Path, args: list[str], complaint: str
) -> None:
    result = _run(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_bad_configuration_names_the_setting(tmp_path: Path) -> None:
    env = {**_clean_env(), "STAGEGATE_DATABASE_URL": "mysql://x/y"}
    result = subprocess.run(
        [*STAGEGATE, "token", "list"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "STAGEGATE_DATABASE_URL" in result.stderr
    assert "unsupported database URL scheme 'mysql'" in result.stderr


def _read_until(process: subprocess.Popen[str], marker: str) -> str:
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return "".join(lines)
    pytest.fail("server did not print its banner:\n" + "".join(lines))


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("server never became ready")


WRITING_COMMANDS = [
    pytest.param(["db", "init"], id="db init"),
    pytest.param(["demo"], id="demo"),
    pytest.param(["token", "create", "--actor", "ava@example.com", "--role", "editor"], id="token"),
    pytest.param(["projections", "rebuild"], id="projections rebuild"),
]


@pytest.mark.parametrize("args", WRITING_COMMANDS)
def test_a_command_that_writes_says_which_database_it_wrote_to(
    tmp_path: Path, args: list[str]
) -> None:
    assert _run("db", "init", cwd=tmp_path).returncode == 0
    database_file = (tmp_path / "stagegate.db").resolve()

    result = _run(*args, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert f"database: sqlite:///./stagegate.db (the file {database_file})" in result.stderr
    assert "created it" not in result.stderr  # it was there already


def test_a_token_created_in_another_folder_says_it_made_a_new_database(tmp_path: Path) -> None:
    """The surprise the issue reports: the server's database is elsewhere, so the token made
    here would be refused there with a 401. The command now says where it wrote, and that
    the database is new; what it prints on standard output is still the token alone."""
    (tmp_path / "server").mkdir()
    (tmp_path / "elsewhere").mkdir()
    assert _run("db", "init", cwd=tmp_path / "server").returncode == 0

    result = _run(
        "token",
        "create",
        "--actor",
        "ava@example.com",
        "--role",
        "editor",
        cwd=tmp_path / "elsewhere",
    )

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"sgt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n", result.stdout), result.stdout
    assert str((tmp_path / "elsewhere" / "stagegate.db").resolve()) in result.stderr
    assert "no database was there: this command created it" in result.stderr


def test_revoking_a_token_says_which_database_it_wrote_to(tmp_path: Path) -> None:
    token_id = _create_editor_token(tmp_path).split("_")[1]

    revoked = _run("token", "revoke", token_id, cwd=tmp_path)

    assert revoked.returncode == 0, revoked.stderr
    assert f"(the file {(tmp_path / 'stagegate.db').resolve()})" in revoked.stderr
