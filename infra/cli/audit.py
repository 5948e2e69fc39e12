"""``stagegate audit``: verify the hash chains of the histories, and export one for auditors."""

from __future__ import annotations

import io
from pathlib import Path

import click

from domain.errors import NotFound
from domain.usecase import use_case_id
from infra.audit import (
    ExportedChain,
    ExportFormatError,
    VerifiedHistory,
    export_history,
    read_export,
    verify_all,
    verify_chain,
)
from infra.cli.common import services_from_environment


@click.group()
def audit() -> None:
    """Verify that use-case histories were not altered; export them for offline audit."""


@audit.command("verify")
@click.option("--key", default=None, help="Verify this use case only (default: every history).")
@click.option(
    "--against",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="An earlier export, or a file of published head lines, to compare the store with.",
)
def audit_verify(key: str | None, against: Path | None) -> None:
    """Print one line per history: intact, or its first bad version and why.

    Exits with status 1 if any history is not intact.
    """
    exported = _read_against(against) if against is not None else {}
    if key is not None and against is not None and key not in exported:
        raise click.ClickException(f"{against} holds no export of '{key}'")
    services = services_from_environment()
    try:
        if key is None:
            results = verify_all(services.app, against=exported)
        else:
            report = verify_chain(services.app, use_case_id(key), exported.get(key))
            if report.head_version == 0 and key not in exported:
                raise click.ClickException(NotFound(key).message)
            results = [VerifiedHistory(use_case_id(key), key, report)]
    finally:
        services.close()
    for result in results:
        click.echo(_describe(result))
    broken = sum(not result.report.intact for result in results)
    histories = "history" if len(results) == 1 else "histories"
    click.echo(f"{len(results)} {histories} verified, {broken} not intact")
    if broken:
        raise SystemExit(1)


@audit.command("export")
@click.option("--key", required=True, help="The use case to export.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    default="-",
    help="File to write (default: standard output).",
)
def audit_export(key: str, output: str) -> None:
    """Write a use case's history as JSON Lines, ending with its chain head."""
    services = services_from_environment()
    # Exported in full before the file is opened: a failed export leaves no file behind.
    buffer = io.StringIO()
    try:
        export_history(services.app, key, buffer)
        report = verify_chain(services.app, use_case_id(key))
    except NotFound as error:
        raise click.ClickException(error.message) from None
    finally:
        services.close()
    with click.open_file(output, "w", encoding="ascii") as out:
        out.write(buffer.getvalue())
    if not report.intact:
        click.echo(
            f"warning: the history of '{key}' is not intact ({report.reason}); "
            "do not publish its head",
            err=True,
        )


def _read_against(path: Path) -> dict[str, ExportedChain]:
    try:
        with path.open(encoding="utf-8") as lines:
            exported = read_export(lines)
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"cannot read {path}: {error}") from None
    except ExportFormatError as error:
        raise click.ClickException(f"{path} is not a stagegate export: {error}") from None
    if not exported:
        raise click.ClickException(f"{path} is not a stagegate export: it holds no chain")
    return exported


def _describe(result: VerifiedHistory) -> str:
    report = result.report
    if report.intact:
        return f"{result.subject}: intact at version {report.head_version} ({report.head_hash})"
    if report.first_bad_version is None:
        return f"{result.subject}: NOT INTACT: {report.reason}"
    return (
        f"{result.subject}: NOT INTACT, first bad version {report.first_bad_version}: "
        f"{report.reason}"
    )
