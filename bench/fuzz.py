"""Fuzzing the running server (issue 8): how many generated requests, how many server errors.

    python bench/fuzz.py postgresql://postgres@127.0.0.1:5432/postgres [--examples 2000]

Creates a throwaway database with a use case in production and tokens for every role,
starts ``stagegate serve`` on it (production settings), then:

- **HTTP** (schemathesis): for ``POST /v1/events``, ``GET /healthz`` and ``GET /readyz``,
  ``--examples`` cases generated from ``/openapi.json``, valid and invalid, half of the
  events aimed at the real use case, each checked for no 5xx, a documented answer and its
  content type;
- **GraphQL** (hypothesis-graphql): ``--examples`` queries and as many mutations generated
  from the schema, valid and invalid (wrong types, nulls, NUL characters), sent with the
  admin token; a failure is any answer that is not HTTP 200 JSON, and any GraphQL error
  whose message is the masked "Unexpected error." (an exception nobody expected).

Prints the counts of cases and failures per part, and the first failures, for
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from edge import DEPLOYED_KEY, SOURCE, prepare  # noqa: E402
from ingest import throwaway_database  # noqa: E402
from serve import server  # noqa: E402

from tests.e2e.cloudevents_helpers import aimed  # noqa: E402

KEY = DEPLOYED_KEY


def fuzz_http(base: str, token: str, examples: int) -> tuple[int, list[str]]:
    published = schemathesis.openapi.from_url(f"{base}/openapi.json")
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    cases, failures = 0, []
    for method, path in (("POST", "/v1/events"), ("GET", "/healthz"), ("GET", "/readyz")):
        operation = published[path][method]
        name = f"{method} {path}"
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            if case.path == "/v1/events":
                case.body = (
                    [aimed(e, KEY, SOURCE) for e in case.body]
                    if isinstance(case.body, list)
                    else aimed(case.body, KEY, SOURCE)
                )
            try:
                case.call_and_validate(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, checks=checks
                )
            except Exception as error:  # a failed check: keep going, count it
                failures.append(f"{name}: {str(error)[:300]}")  # noqa: B023 - run() runs here

        run()
    return cases, failures


def fuzz_graphql(base: str, token: str, examples: int) -> tuple[int, list[str]]:
    from api.graphql.schema import build_schema

    sdl = build_schema(12, 30).as_str()
    cases, failures = 0, []
    http = httpx.Client(base_url=base, timeout=60)
    scalars = {
        "DateTime": (st.datetimes(timezones=st.timezones()).map(str) | st.text()).map(nodes.String),
        "Decimal": (st.decimals(allow_nan=False).map(str) | st.text()).map(nodes.String),
    }
    strategy = st.one_of(
        *(
            make(sdl, mode=mode, custom_scalars=scalars)
            for make in (queries, mutations)
            for mode in (Mode.POSITIVE, Mode.NEGATIVE)
        )
    )

    @settings(
        max_examples=examples * 2,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(query=strategy)
    def run(query: str) -> None:
        nonlocal cases
        cases += 1
        response = http.post(
            "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
        )
        kind = response.headers.get("content-type", "")
        if response.status_code >= 500 or not kind.startswith(
            ("application/json", "application/problem+json")
        ):
            failures.append(f"HTTP {response.status_code} {kind}: {query[:200]}")
            return
        if response.status_code == 200:
            errors = response.json().get("errors") or []
            if any(e.get("message") == "Unexpected error." for e in errors):
                failures.append(f"Unexpected error: {query[:300]}")

    try:
        run()
    finally:
        http.close()
    return cases, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server_url")
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--port", type=int, default=8771)
    args = parser.parse_args()
    with throwaway_database(args.server_url, False) as url:
        admin, integration = prepare(url, history=1)
        with server(url, args.port, "inline") as base:
            for name, (cases, failures) in (
                ("http", fuzz_http(base, integration, args.examples)),
                ("graphql", fuzz_graphql(base, admin, args.examples)),
            ):
                print(f"{name}: {cases} cases, {len(failures)} failures", flush=True)
                for failure in failures[:5]:
                    print(f"  {failure}")


if __name__ == "__main__":
    main()
