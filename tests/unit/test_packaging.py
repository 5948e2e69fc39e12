"""The files that ship stagegate stay valid where no Docker engine can check them."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]


def test_docker_compose_file_follows_the_compose_specification() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_service_builds_from_a_dockerfile_that_installs_the_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile
    for package in ("domain", "projections", "api", "infra"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert 'CMD ["stagegate", "serve"]' in dockerfile


# --- the image and the compose file, read without a Docker engine ---------------------------

APP_UID = 10001
"""The image's own user: not root, and not ``nobody``, which owns nothing it could write."""
DATA_DIR = "/data"
POSTGRES_URL = re.compile(r"^postgres(?:ql)?://[^:@/]+(?::(?P<password>.*))?@[^@]+$")
"""A PostgreSQL URL with a user and, perhaps, a password (which may hold "@", "/" or "?")."""


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions in order: continuation lines joined, comments left out."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    instructions = []
    for line in logical:
        keyword, _, arguments = line.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return instructions


def compose_file() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_the_dockerfile_reader_joins_continued_lines() -> None:
    parsed = dockerfile_instructions("FROM x\n# note\nRUN a \\\n    && b\n\nUSER 1\n")
    assert parsed == [
        Instruction("FROM", "x"),
        Instruction("RUN", "a && b"),
        Instruction("USER", "1"),
    ]


def test_the_image_runs_as_its_own_user_after_the_files_are_copied() -> None:
    instructions = dockerfile_instructions((ROOT / "Dockerfile").read_text())
    keywords = [i.keyword for i in instructions]
    users = [i for i in instructions if i.keyword == "USER"]
    assert users, "the image names no USER: it would run as root"
    last_user = max(n for n, keyword in enumerate(keywords) if keyword == "USER")
    last_copy = max(n for n, keyword in enumerate(keywords) if keyword in ("COPY", "ADD"))
    assert last_user > last_copy, "USER must come after the files are copied"
    user = instructions[last_user].arguments.split(":")[0]
    assert user not in ("root", "0", "nobody", "65534"), f"runs as {user}"
    created = [i.arguments for i in instructions if i.keyword == "RUN" and "useradd" in i.arguments]
    assert created, "no RUN creates the image's user"
    assert re.search(rf"--uid {APP_UID}\b", created[0]), created[0]
    assert user in (str(APP_UID), created[0].split()[-1]), (user, created[0])


def test_the_image_has_a_data_volume_its_user_can_write_and_keeps_sqlite_there() -> None:
    instructions = dockerfile_instructions((ROOT / "Dockerfile").read_text())
    runs = " && ".join(i.arguments for i in instructions if i.keyword == "RUN")
    assert re.search(rf"mkdir -p {DATA_DIR}\b", runs), runs
    assert re.search(rf"chown {APP_UID}(:{APP_UID})? {DATA_DIR}\b", runs), runs
    volumes = [i.arguments for i in instructions if i.keyword == "VOLUME"]
    assert any(DATA_DIR in v for v in volumes), volumes
    env = " ".join(i.arguments for i in instructions if i.keyword == "ENV")
    assert f"STAGEGATE_DATABASE_URL=sqlite:///{DATA_DIR}/stagegate.db" in env, env
    [healthcheck] = [i.arguments for i in instructions if i.keyword == "HEALTHCHECK"]
    assert "python" in healthcheck  # the slim image may have no curl
    assert "/healthz" in healthcheck


def test_compose_reads_the_password_from_the_environment() -> None:
    services = compose_file()["services"]
    required = "${POSTGRES_PASSWORD:?"
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith(required)
    for name, service in services.items():
        for variable, value in (service.get("environment") or {}).items():
            value = str(value)
            if "PASSWORD" in variable:
                assert value.startswith("${"), f"{name}: {variable} is written in the file"
            # Not urlsplit: the interpolation's "?" would start the URL's query for it.
            url = POSTGRES_URL.match(value)
            if url is not None and url["password"] is not None:
                assert url["password"].startswith(required), f"{name}: {variable} has a password"


def test_compose_publishes_ports_on_the_loopback_only() -> None:
    services = compose_file()["services"]
    published = [(name, str(p)) for name, s in services.items() for p in s.get("ports", [])]
    assert published, "the service publishes no port"
    everywhere = [(name, p) for name, p in published if not p.startswith("127.0.0.1:")]
    assert everywhere == [], f"ports published on every interface: {everywhere}"


def test_compose_checks_the_health_of_every_service() -> None:
    services = compose_file()["services"]
    unchecked = [name for name, s in services.items() if not s.get("healthcheck", {}).get("test")]
    assert unchecked == [], f"services without a health check: {unchecked}"
    stagegate_check = " ".join(services["stagegate"]["healthcheck"]["test"])
    assert "python" in stagegate_check
    assert "/healthz" in stagegate_check
    condition = services["stagegate"]["depends_on"]["db"]["condition"]
    assert condition == "service_healthy"
