"""Issue 10, item 3: ``/metrics`` with ``STAGEGATE_WORKERS=2`` sums both processes' counts.

``stagegate serve`` makes a directory for prometheus-client's multiprocess mode and names it
in its banner; each process counts into files of its own there (``counter_<pid>.db``). The
test sends requests on fresh connections until both processes have served some (read from
their own files), then scrapes again and again: whichever process answers, the page holds
the sum. When the server stops, the directory is gone.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from domain.values import Role
from infra.settings import Settings
from tests.integration.test_two_servers import _free_port, _wait_ready, issue_token, server_env

pytestmark = pytest.mark.postgres

PROBE = "query Probe { me { role } }"
ALERT = """mutation Alert($key: String!, $alert: String!) {
  raiseQualityAlert(input: {key: $key, alertId: $alert, severity: LOW, description: "d"}) {
    __typename } }"""
MOST_REQUESTS = 400
"""Requests sent at most while waiting for both processes to have served one."""


def _counted_by_each_process(directory: Path, name: str, **labels: str) -> dict[int, float]:
    """A counter's value in each process's own file, by pid."""
    counts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == name and sample.labels == labels:
                    counts[pid] = counts.get(pid, 0.0) + sample.value
    return counts


def _scraped(url: str, token: str, name: str, **labels: str) -> float:
    with httpx.Client() as fresh:  # a connection of its own: it may land on either process
        response = fresh.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name and sample.labels == labels
    )


@contextlib.contextmanager
def _serving(
    settings: Settings, tmp_path: Path, workers: int, **env: str
) -> Iterator[tuple[str, Path | None]]:
    """``stagegate serve`` with ``workers`` processes and more ``STAGEGATE_*`` settings: its
    URL, and the metrics directory it names (with several processes); stopped afterwards."""
    port = _free_port()
    environment = {
        **server_env(settings),
        "STAGEGATE_WORKERS": str(workers),
        **{f"STAGEGATE_{name}": value for name, value in env.items()},
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    directory: Path | None = None
    with (tmp_path / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve", "--port", str(port)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        assert process.stdout is not None
        banner = ""
        for line in process.stdout:
            banner += line.decode()
            if "Authenticate every request" in banner:
                break
        found = re.search(r"metrics summed in (\S+)", banner)
        url = f"http://127.0.0.1:{port}"
        try:
            if workers > 1:
                assert found, banner
                directory = Path(found.group(1))
            _wait_ready(url, process)
            yield url, directory
        finally:
            process.terminate()
            process.wait(timeout=30)
    log = (tmp_path / "stderr.log").read_text()
    assert log.count("Started server process") == workers, log
    if directory is not None:
        assert not directory.exists(), f"{directory} was left behind"


@pytest.fixture
def two_processes(postgres_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``stagegate serve`` with two worker processes: its URL and its metrics directory."""
    with _serving(postgres_settings, tmp_path, 2) as (url, directory):
        assert directory is not None
        yield url, directory


def test_a_scrape_sums_the_counts_of_both_processes(
    postgres_settings: Settings, two_processes: tuple[str, Path]
) -> None:
    url, directory = two_processes
    editor = issue_token(postgres_settings, "eddie.editor@example.com", Role.EDITOR)
    auditor = issue_token(postgres_settings, "audrey.auditor@example.com", Role.AUDITOR)
    headers = {"Authorization": f"Bearer {editor}"}
    registered = httpx.post(
        f"{url}/graphql",
        json={
            "query": 'mutation { registerUseCase(input: {key: "counted", title: "C"}) '
            "{ __typename } }"
        },
        headers=headers,
    ).json()
    assert registered["data"]["registerUseCase"]["__typename"] == "UseCase"

    probes = alerts = 0
    probe_labels = {"operation": "Probe", "outcome": "ok"}
    while probes < MOST_REQUESTS:
        for _ in range(10):
            with httpx.Client(headers=headers) as fresh:  # new connections land on either
                body = fresh.post(f"{url}/graphql", json={"query": PROBE}).json()
                assert body == {"data": {"me": {"role": "EDITOR"}}}, body
                probes += 1
                variables = {"key": "counted", "alert": f"a{alerts}"}
                body = fresh.post(f"{url}/graphql", json={"query": ALERT, "variables": variables})
                assert body.json()["data"]["raiseQualityAlert"]["__typename"] == "UseCase"
                alerts += 1
        each = _counted_by_each_process(
            directory, "stagegate_graphql_operations_total", **probe_labels
        )
        if len([pid for pid, count in each.items() if count > 0]) >= 2:
            break
    else:
        pytest.fail(f"one process served all {probes} requests: {each}")
    assert sum(each.values()) == probes

    for _ in range(6):  # answered by either process: the same sums
        assert (
            _scraped(url, auditor, "stagegate_graphql_operations_total", **probe_labels) == probes
        )
        accepted = {"command": "RaiseQualityAlert", "outcome": "accepted"}
        assert _scraped(url, auditor, "stagegate_commands_total", **accepted) == alerts


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_on_an_address_of_their_own(
    postgres_settings: Settings, tmp_path: Path, workers: int
) -> None:
    """``STAGEGATE_METRICS=address``: the page on its own port, without a token, and not on
    the API's; with two processes, served by their parent, which sums both."""
    metrics_port = _free_port()
    address = f"127.0.0.1:{metrics_port}"
    editor = issue_token(postgres_settings, "eddie.editor@example.com", Role.EDITOR)
    admin = issue_token(postgres_settings, "ada.admin@example.com", Role.ADMIN)
    served = _serving(
        postgres_settings, tmp_path, workers, METRICS="address", METRICS_ADDRESS=address
    )
    with served as (url, _):
        on_api = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert on_api.status_code == 404

        probes = 30
        for _ in range(probes):
            with httpx.Client() as fresh:
                body = fresh.post(
                    f"{url}/graphql",
                    json={"query": PROBE},
                    headers={"Authorization": f"Bearer {editor}"},
                ).json()
            assert body == {"data": {"me": {"role": "EDITOR"}}}, body

        page = httpx.get(f"http://{address}/metrics")
        assert page.status_code == 200
        families = {family.name: family for family in text_string_to_metric_families(page.text)}
        operations = families["stagegate_graphql_operations"]
        probed = [s.value for s in operations.samples if s.labels.get("operation") == "Probe"]
        assert probed == [probes]
        lag = families["stagegate_projection_lag_events"]
        assert {s.labels["projection"]: s.value for s in lag.samples} == {
            "summaries": 0,
            "history": 0,
        }
