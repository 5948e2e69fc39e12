"""The cut of the code that issue 9 asks to keep: checked on the source, so a change that
crosses a line fails here rather than in review."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "domain", "infra", "projections")
DIALECT_MODULE = Path("infra/database.py")
CONFIGURATION = {
    Path("infra/settings.py"),
    Path("infra/persistence.py"),
    Path("infra/cli/__init__.py"),
    Path("infra/cli/common.py"),  # how a command names the configured database to a person
}
"""Where "is it PostgreSQL?" chooses what to build, from the settings: not SQL dialect."""


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_the_domain_imports_nothing_of_the_infrastructure_or_the_api() -> None:
    crossing = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in _sources("domain")
        for module in _imported_modules(path)
        if module.split(".")[0] in ("infra", "api", "projections")
    }
    assert crossing == set()


def test_the_domain_holds_no_cache() -> None:
    cached = [
        str(path.relative_to(ROOT))
        for path in _sources("domain")
        if re.search(r"OrderedDict|LRUCache|lru_cache|functools\.cache\b", path.read_text())
    ]
    assert cached == []


def test_only_the_dialect_module_branches_on_the_database_kind() -> None:
    branching = re.compile(r"\.is_postgres\b|isinstance\([^)]*(PostgresDatastore|SQLiteDatastore)")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in PACKAGES
        for path in _sources(package)
        if path.relative_to(ROOT) not in {DIALECT_MODULE, *CONFIGURATION}
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if branching.search(line) and "assert isinstance" not in line
    ]
    assert found == []


def test_the_only_plpgsql_refuses_rewrites_or_takes_the_append_lock() -> None:
    functions = [
        (str(path.relative_to(ROOT)), text.count("LANGUAGE plpgsql"))
        for package in PACKAGES
        for path in _sources(package)
        if "LANGUAGE plpgsql" in (text := path.read_text())
    ]
    assert functions == [("infra/chain.py", 2)]
    chain = (ROOT / "infra/chain.py").read_text()
    bodies = re.findall(r"LANGUAGE plpgsql[^$]*\$\$(.*?)\$\$", chain, flags=re.S)
    assert len(bodies) == 2
    assert any("RAISE EXCEPTION" in body and "append-only" in body for body in bodies)
    assert any("LOCK TABLE" in body for body in bodies)
