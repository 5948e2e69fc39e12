"""Every example in README.md and docs/*.md runs against a demo server, and succeeds.

The fenced code blocks of each page are read in order and run against a server of its own,
started as a reader would start it (``stagegate serve --demo`` in an empty folder, on SQLite):

- ``graphql``: POSTed to ``/graphql`` with the admin token; the answer must hold no errors,
  and no union member of a refusal (``GateBlocked``, ``VersionConflict``, ...);
- ``sh`` / ``bash``: run by bash (``set -euo pipefail``) in a scratch folder holding the
  repository's ``docs/``. The blocks of one page are one terminal session: a variable one
  exports, the next block (and Python block) sees;
- ``python``: run by this interpreter, in the same folder, with that session's environment.

The documents' convention for placeholders: ``$STAGEGATE_URL`` is the server's base URL and
``$STAGEGATE_TOKEN`` an admin token (``os.environ[...]`` in Python); ``stagegate`` commands
reach the server's database (``STAGEGATE_DATABASE_URL`` is set as in the server's folder).

Blocks that are output or notation, not examples, say so by their language (``json``,
``text``, ``http``); an example that cannot run here (it installs, serves until stopped, runs
the suite itself, needs Docker or a PostgreSQL superuser, or would reach a host outside this
machine) says ``no-run`` after its language. A block with no language fails the test: each
must say what it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

RUNNABLE = {"graphql", "sh", "bash", "python"}
NOT_EXAMPLES = {"json", "text", "http"}
"""Languages of blocks that show output or notation: read, never run."""
REFUSALS = {"GateBlocked", "VersionConflict", "ValidationFailed", "NotFound", "Forbidden"}
REFUSALS |= {"RuleViolated"}
"""The union members a refused command answers: an example that gets one did not succeed."""
BLOCK_DEADLINE_SECONDS = 120
"""A guard against a block that never ends, not a measure of speed."""

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
TOKEN = re.compile(r"sgt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    runs: bool
    body: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line} ({self.language})"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, in order."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        words = match["info"].split()
        language = words[0] if words else ""
        line = text.count("\n", 0, match.start()) + 1
        found.append(
            Block(page, line, language, "no-run" not in words[1:], match["body"].rstrip("\n"))
        )
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_block_says_what_it_is(page: Path) -> None:
    unnamed = [str(b) for b in blocks(page) if b.runs and b.language not in RUNNABLE | NOT_EXAMPLES]
    assert unnamed == [], (
        f"code blocks that are neither an example ({', '.join(sorted(RUNNABLE))}), nor output "
        f"or notation ({', '.join(sorted(NOT_EXAMPLES))}), nor marked no-run: {unnamed}"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_curl_example_fails_when_its_request_is_refused(page: Path) -> None:
    """curl exits 0 on a 4xx unless told otherwise, and the example would pass refused."""
    lenient = [
        str(b)
        for b in blocks(page)
        if b.runs
        and b.language in ("sh", "bash")
        and re.search(r"\bcurl\b", b.body)
        and not re.search(r"--fail-with-body|--fail\b|\s-[a-zA-Z]*f", b.body)
    ]
    assert lenient == [], f"curl examples without --fail-with-body: {lenient}"


def test_the_reader_finds_the_blocks_of_a_page() -> None:
    """The extraction itself: a block per fence, its language, its line and its flag."""
    readme = blocks(ROOT / "README.md")
    assert len(readme) >= 5
    assert readme[0].language == "sh"
    assert not readme[0].runs  # it installs, then serves until stopped
    assert any(b.language == "graphql" and b.runs for b in readme)
    first = (ROOT / "README.md").read_text().splitlines()[readme[0].line - 1]
    assert first.startswith("```sh")


@dataclass
class DemoServer:
    base_url: str
    admin_token: str
    database_url: str


@contextlib.contextmanager
def demo_server(folder: Path) -> Iterator[DemoServer]:
    """``stagegate serve --demo`` in an empty folder, as the README's first command runs it."""
    with socket_port() as port:
        database_url = f"sqlite:///{folder / 'stagegate.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEGATE_")}
        env["STAGEGATE_DATABASE_URL"] = database_url
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve", "--demo", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        banner = read_banner(process)
        token = TOKEN.search(banner)
        assert token, banner
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url)
        yield DemoServer(base_url, token.group(0), database_url)
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextlib.contextmanager
def socket_port() -> Iterator[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


def read_banner(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if "Authenticate every request" in line:
            return "".join(lines)
    pytest.fail("the demo server did not start:\n" + "".join(lines))


def wait_ready(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail("the demo server never became ready")


def refusals_in(answer: Any) -> list[dict[str, Any]]:
    """Every object in a GraphQL answer that is the union member of a refusal."""
    if isinstance(answer, dict):
        own = [answer] if answer.get("__typename") in REFUSALS else []
        return own + [r for value in answer.values() for r in refusals_in(value)]
    if isinstance(answer, list):
        return [r for value in answer for r in refusals_in(value)]
    return []


class Session:
    """A reader's terminal on one page: one environment, carried from block to block."""

    def __init__(self, server: DemoServer, folder: Path) -> None:
        self.server = server
        self.folder = folder
        (folder / "docs").symlink_to(ROOT / "docs")
        bin_dir = str(Path(sys.executable).parent)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEGATE_")}
        self.env.update(
            PATH=f"{bin_dir}{os.pathsep}{self.env.get('PATH', '')}",
            STAGEGATE_URL=server.base_url,
            STAGEGATE_TOKEN=server.admin_token,
            STAGEGATE_DATABASE_URL=server.database_url,
        )

    def run(self, block: Block) -> None:
        if block.language == "graphql":
            self.graphql(block)
        elif block.language == "python":
            self.python(block)
        else:
            self.shell(block)

    def graphql(self, block: Block) -> None:
        response = httpx.post(
            f"{self.server.base_url}/graphql",
            json={"query": block.body},
            headers={"Authorization": f"Bearer {self.env['STAGEGATE_TOKEN']}"},
            timeout=BLOCK_DEADLINE_SECONDS,
        )
        assert response.status_code == 200, f"{block}: {response.status_code} {response.text}"
        answer = response.json()
        assert "errors" not in answer, f"{block} answered errors: {answer['errors']}"
        refused = refusals_in(answer["data"])
        if block.body.lstrip().startswith("mutation"):
            # Only refusals implement Error { message }: a mutation's result that has a
            # message was refused, whether or not the example asked for __typename.
            results = answer["data"].values()
            refused += [r for r in results if isinstance(r, dict) and "message" in r]
        assert refused == [], f"{block} was refused: {refused}"

    def shell(self, block: Block) -> None:
        state = self.folder / ".session-env"
        script = f'set -euo pipefail\n{block.body}\nenv -0 > "{state}"\n'
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_DEADLINE_SECONDS,
        )
        assert result.returncode == 0, f"{block} failed:\n{result.stdout}\n{result.stderr}"
        exported = state.read_text().split("\0")
        self.env = dict(entry.split("=", 1) for entry in exported if "=" in entry)

    def python(self, block: Block) -> None:
        result = subprocess.run(
            [sys.executable, "-c", block.body],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_DEADLINE_SECONDS,
        )
        assert result.returncode == 0, f"{block} failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_example_of_a_page_runs_against_a_demo_server(page: Path, tmp_path: Path) -> None:
    examples = [b for b in blocks(page) if b.runs and b.language in RUNNABLE]
    if not examples:
        pytest.skip(f"{page.name} has no example to run")
    (tmp_path / "server").mkdir()
    (tmp_path / "reader").mkdir()
    with demo_server(tmp_path / "server") as server:
        session = Session(server, tmp_path / "reader")
        for block in examples:
            session.run(block)


def test_a_failing_example_fails_the_test(tmp_path: Path) -> None:
    """The runner is not a formality: an error, a refusal or a failing command is caught."""
    page = tmp_path / "page.md"
    page.write_text(
        '```graphql\n{ useCase(key: "invoice-triage") { nope } }\n```\n\n'
        '```graphql\nmutation { advanceStage(input: {key: "invoice-triage"}) {\n'
        "  __typename ... on UseCase { stage } } }\n```\n\n"
        '```sh\ncurl -sS --fail-with-body "$STAGEGATE_URL/graphql"\n```\n\n'
        "```python\nraise SystemExit(3)\n```\n"
    )
    (tmp_path / "server").mkdir()
    (tmp_path / "reader").mkdir()
    with demo_server(tmp_path / "server") as server:
        session = Session(server, tmp_path / "reader")
        for block in blocks(page):
            with pytest.raises(AssertionError):
                session.run(Block(ROOT / "README.md", block.line, block.language, True, block.body))


def test_a_session_carries_what_a_block_exports(tmp_path: Path) -> None:
    server = DemoServer("http://127.0.0.1:9", "sgt_none", "sqlite:///unused.db")
    session = Session(server, tmp_path)
    session.run(Block(ROOT / "README.md", 1, "sh", True, "export CARRIED=$((6 * 7))"))
    session.run(
        Block(
            ROOT / "README.md", 2, "python", True, "import os; assert os.environ['CARRIED'] == '42'"
        )
    )
    assert json.dumps(session.env["CARRIED"]) == '"42"'
