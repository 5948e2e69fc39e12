"""Nothing in the repository links outside it, and the domain's rules are written up inside it.

Every markdown link (``[text](target)``, ``[text]: target`` and ``<target>``) in every markdown
file of the repository either is a web address or names a file or folder that exists in the
repository: a relative path that climbs out of it (``../shared/spec.md``) or names nothing is a
dead link for whoever clones it. The same holds for a markdown file cited in code and comments
(a ``SPEC.md`` that lives elsewhere).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from domain.errors import Rule
from domain.gates import RequirementCode

ROOT = Path(__file__).resolve().parents[2]

INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]+)>")
CITED_DOCUMENT = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)*(?:docs/[\w.-]+|[A-Z][A-Z_]*)\.md)\b")
"""A document cited in any text: a page of ``docs/`` or an upper-case name (``SPEC.md``,
``bench/RESULTS.md``), not inside a URL. (Data such as a demo's ``prompts/v1.md`` is not.)"""
WEB = re.compile(r"^(https?|mailto):", re.IGNORECASE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [ROOT / name for name in listed if name and (ROOT / name).is_file()]


def markdown_files() -> list[Path]:
    return [path for path in tracked_files() if path.suffix == ".md"]


def links(text: str) -> list[str]:
    """Link targets of a markdown text, code blocks and code spans left out."""
    prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))
    return [
        *INLINE_LINK.findall(prose),
        *REFERENCE_LINK.findall(prose),
        *AUTOLINK.findall(prose),
    ]


def outside_the_repository(source: Path, target: str) -> str | None:
    """Why ``target``, linked from ``source``, does not stay in the repository (None if it does)."""
    if WEB.match(target) or target.startswith("#"):
        return None
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
        return "not a web address nor a path in the repository"
    path = target.split("#", 1)[0]
    resolved = (ROOT if path.startswith("/") else source.parent).joinpath(path.lstrip("/"))
    resolved = resolved.resolve()
    if not resolved.is_relative_to(ROOT):
        return "leaves the repository"
    if not resolved.exists():
        return "names nothing in the repository"
    return None


def test_the_link_reader_finds_every_kind_of_link() -> None:
    text = (
        "See [spec](../shared/spec.md), [a](docs/audit.md#the-chain 'title'), <https://x.org>,\n"
        "`[not](a-link)` and\n```\n[nor](this)\n```\n[ref]: ../../elsewhere.md\n"
    )
    assert sorted(links(text)) == sorted(
        ["../shared/spec.md", "docs/audit.md#the-chain", "https://x.org", "../../elsewhere.md"]
    )
    readme = ROOT / "README.md"
    assert outside_the_repository(readme, "../shared/spec.md") == "leaves the repository"
    nowhere = "docs/" + "nothing.md"  # written apart, or the citation check would find it
    assert outside_the_repository(readme, nowhere) == "names nothing in the repository"
    assert outside_the_repository(readme, "file:///etc/passwd") is not None
    assert outside_the_repository(readme, "docs/audit.md#the-chain") is None
    assert outside_the_repository(readme, "https://www.rfc-editor.org/rfc/rfc9457") is None


@pytest.mark.parametrize("page", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_markdown_link_leaves_the_repository(page: Path) -> None:
    dead = {
        target: why
        for target in links(page.read_text())
        if (why := outside_the_repository(page, target)) is not None
    }
    assert dead == {}, f"{page.relative_to(ROOT)} links outside the repository: {dead}"


def test_every_document_cited_in_the_code_exists() -> None:
    files = tracked_files()
    names = {path.name for path in files if path.suffix == ".md"}

    def found(citing: Path, name: str) -> bool:
        # From the root, beside the citing file, or by its name alone ("RESULTS.md").
        return (ROOT / name).exists() or (citing.parent / name).exists() or name in names

    missing = {
        (str(path.relative_to(ROOT)), name)
        for path in files
        if path != Path(__file__).resolve()  # its own examples name what does not exist
        and path.suffix in (".py", ".md", ".toml", ".yml", ".yaml", ".graphql", "")
        for name in CITED_DOCUMENT.findall(path.read_text(errors="replace"))
        if not found(path, name)
    }
    assert missing == set(), f"documents cited but not in the repository: {sorted(missing)}"


def test_the_domain_doc_names_every_requirement_and_rule_code() -> None:
    """docs/domain.md is the rules written up in the repository: a new gate requirement or
    rule added to the code without a word there fails here."""
    text = (ROOT / "docs" / "domain.md").read_text()
    missing = [code.value for code in [*RequirementCode, *Rule] if f"`{code.value}`" not in text]
    assert missing == [], f"codes docs/domain.md does not describe: {missing}"
