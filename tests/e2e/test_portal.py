"""The portal at ``/portal``, in a real headless browser against a real demo server.

Debian's ``chromium`` is driven by Selenium through Debian's ``chromedriver`` (never a driver
Selenium Manager would download). One browser and one server with the demo portfolio serve
the whole module (per xdist worker); each test signs in afresh. What the page must show is
read from the GraphQL API at the time, never written down here, and every wait is a wait for
a condition of the page.

Screenshots of each view go to ``tests/.artifacts/portal/`` (kept out of git); the three in
``docs/`` were copied from there.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.selenium_manager import SeleniumManager
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from api.graphql import feed
from domain.values import Role
from infra.bootstrap import Services, bootstrap
from infra.demo import load_demo
from infra.settings import Settings
from infra.web import build_api
from tests.e2e.conftest import RunningServer, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WAIT_SECONDS = 20.0
"""How long to wait for the page to show what it must (a wait, not a timing)."""
ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts" / "portal"
DESKTOP = (1280, 800)
NARROW = (400, 800)
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


# --- the server, the tokens and the browser ---------------------------------------------------


@dataclass
class Demo:
    services: Services
    server: RunningServer
    admin: str
    viewer: str

    @property
    def url(self) -> str:
        return self.server.base_url

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a GraphQL request as the admin (errors fail the test)."""
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.admin}"},
            timeout=30.0,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """``stagegate serve --demo`` as the e2e tests run a server: the demo portfolio on SQLite
    or PostgreSQL (where live changes travel by NOTIFY), the production-mode app on uvicorn."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("portal")
        settings = Settings(database_url=f"sqlite:///{folder / 'stagegate.db'}")
    else:
        settings = Settings(
            database_url=request.getfixturevalue("postgres_database_url"),
            postgres_schema=f"portal_{uuid.uuid4().hex[:12]}",
        )
    services = bootstrap(settings)
    load_demo(services.app)
    services.read_models.catch_up()
    admin = services.tokens.issue("ava.chen@example.com", Role.ADMIN).secret_token
    viewer = services.tokens.issue("vera.viewer@example.com", Role.VIEWER).secret_token
    server = start_server(build_api(services))
    yield Demo(services, server, admin, viewer)
    server.stop()
    services.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            "The portal's browser tests need Debian's chromium and its driver "
            f"({', '.join(missing)} missing): apt-get install chromium chromium-driver"
        )
    profile = tempfile.mkdtemp(prefix="stagegate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # The driver's path is given, so Selenium Manager (which downloads drivers and browsers)
    # must never run: were it asked, this fails the start instead.
    asked = AssertionError("Selenium Manager was asked for a driver")
    with mock.patch.object(SeleniumManager, "binary_paths", side_effect=asked):
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Portal:
    """The browser on one server's portal."""

    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url
        self.viewport(*DESKTOP)

    def viewport(self, width: int, height: int) -> None:
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def wait(self, condition: Callable[[WebDriver], Any], what: str) -> Any:
        return WebDriverWait(
            self.driver,
            WAIT_SECONDS,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        ).until(condition, f"waited {WAIT_SECONDS} s for {what}")

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text

    def start(self) -> None:
        """The page, fresh, with no token kept."""
        self.driver.get(f"{self.base_url}/portal/#/portfolio")
        self.driver.execute_script("sessionStorage.clear()")
        # A load of its own: from the same page, a new address differing by its fragment
        # alone would not load it again (the page would still hold the token it read).
        self.driver.refresh()
        self.wait(lambda d: self.find("#token").is_displayed(), "the sign-in form")

    def sign_in(self, token: str) -> None:
        self.start()
        self.find("#token").send_keys(token)
        self.find("#token").send_keys(Keys.ENTER)
        self.wait(lambda d: self.find_all("#role"), "the signed-in header")

    def go(self, route: str, ready_css: str) -> None:
        self.driver.execute_script("window.location.hash = arguments[0]", route)
        self.wait(lambda d: self.find_all(ready_css), f"{ready_css} on {route}")

    def live_for(self, label: str) -> None:
        """Wait until the server holds the subscriptions of this view."""
        self.wait(
            lambda d: (
                self.find("#live").get_attribute("data-state") == "live"
                and self.find("#live").get_attribute("data-for") == label
            ),
            f"the live subscriptions of {label}",
        )

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        return path


@pytest.fixture
def portal(browser: WebDriver, demo: Demo) -> Portal:
    return Portal(browser, demo.url)


# --- what the API says ------------------------------------------------------------------------

STAGES = ("PROPOSED", "PILOT", "ACCEPTANCE", "DEPLOYMENT", "MEASUREMENT", "SCALE")
GATES = """
query Gates { useCases(first: 100) { edges { node {
  key version stage gate { next open unmet { code message } requirements { code met message } }
} } } }"""


def stage_counts(demo: Demo) -> dict[str, int]:
    stages = demo.gql("{ portfolio { stages { stage count } } }")["portfolio"]["stages"]
    return {figures["stage"]: figures["count"] for figures in stages}


def use_cases(demo: Demo) -> list[dict[str, Any]]:
    return [edge["node"] for edge in demo.gql(GATES)["useCases"]["edges"]]


def funnel_on_screen(portal: Portal) -> dict[str, int]:
    return {
        row.get_attribute("data-stage") or "": int(
            row.find_element(By.CSS_SELECTOR, ".funnel-count").text
        )
        for row in portal.find_all("#funnel .funnel-row")
    }


# --- the page is served -----------------------------------------------------------------------


def test_the_page_is_served_without_a_token_from_the_package(demo: Demo) -> None:
    redirected = httpx.get(f"{demo.url}/portal")
    assert redirected.status_code == 308
    page = httpx.get(f"{demo.url}/portal", follow_redirects=True)
    assert (page.status_code, str(page.url)) == (200, f"{demo.url}/portal/")
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="portal.js">' in page.text
    script = httpx.get(f"{demo.url}/portal/portal.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    # Nothing but the package's own files: no address of anywhere else is in them (the one
    # URL is the SVG namespace, a name and never fetched).
    for file in ("index.html", "portal.js", "graphql.js", "charts.js", "portal.css"):
        body = httpx.get(f"{demo.url}/portal/{file}").text
        assert set(re.findall(r"https?://[^\s\"'`)]+", body)) <= {SVG_NAMESPACE}, file
    missing = httpx.get(f"{demo.url}/portal/no-such-file.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


# --- sign in, the portfolio, the backlog --------------------------------------------------------


def test_signing_in_shows_the_portfolio_as_the_api_answers_it(portal: Portal, demo: Demo) -> None:
    portal.sign_in(demo.admin)
    portal.wait(lambda d: portal.find_all("#funnel .funnel-row"), "the funnel chart")
    assert portal.text("#role") == "admin"
    assert portal.text("#actor") == "ava.chen@example.com"

    counts = stage_counts(demo)
    assert funnel_on_screen(portal) == {stage: counts.get(stage, 0) for stage in STAGES}

    answered = demo.gql(
        "{ portfolio { stuckPilots measuredValueShare deployed deployedWithMeasuredValue"
        " valueAgainstCost { currency } } useCases { totalCount } }"
    )
    portfolio = answered["portfolio"]
    assert portal.text("#measured-share") == f"{round(portfolio['measuredValueShare'] * 100)}%"
    assert f"{portfolio['deployedWithMeasuredValue']} of {portfolio['deployed']}" in portal.text(
        "#measured-value"
    )
    stuck = [link.text for link in portal.find_all("#stuck-pilots a")]
    assert stuck == portfolio["stuckPilots"]
    currencies = [
        figure.get_attribute("data-currency")
        for figure in portal.find_all("#value-against-cost figure")
    ]
    assert currencies == [figures["currency"] for figures in portfolio["valueAgainstCost"]]
    rows = portal.find_all("#use-cases tbody tr")
    assert len(rows) == answered["useCases"]["totalCount"]
    portal.screenshot("portfolio")

    # Each use case is a link into its own page.
    first = rows[0].find_element(By.CSS_SELECTOR, "a")
    key = rows[0].get_attribute("data-key")
    first.click()
    portal.wait(lambda d: portal.find_all("#gate"), "the use case's gate")
    assert portal.driver.current_url.endswith(f"#/use-case/{key}")


def test_the_backlog_ranks_as_the_api_does_and_says_why(portal: Portal, demo: Demo) -> None:
    portal.sign_in(demo.admin)
    portal.go("#/backlog", "#backlog-table tbody tr")
    backlog = demo.gql(
        "{ backlog(first: 100) { edges { rank node { key priority {"
        " leverage { score } feasibility { score } readiness { score } } } } } }"
    )["backlog"]["edges"]
    expected = []
    for edge in backlog:
        priority = edge["node"]["priority"]
        scores = (
            [str(priority[name]["score"]) for name in ("leverage", "feasibility", "readiness")]
            if priority is not None
            else ["—", "—", "—"]
        )
        why = f"Weakest score {min(map(int, scores))}" if priority is not None else "Not scored"
        expected.append((edge["node"]["key"], str(edge["rank"]), scores, why))

    def shown() -> list[tuple[str | None, str | None, list[str], str]]:
        rows = []
        for row in portal.find_all("#backlog-table tbody tr"):
            cells = [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td")]
            rows.append(
                (
                    row.get_attribute("data-key"),
                    row.get_attribute("data-rank"),
                    cells[3:6],
                    cells[6],
                )
            )
        return rows

    def as_the_api_says(rows: list[tuple[str | None, str | None, list[str], str]]) -> bool:
        return len(rows) == len(expected) and all(
            (key, rank, scores) == want[:3] and want[3] in why
            for (key, rank, scores, why), want in zip(rows, expected, strict=False)
        )

    # The page is live: a change another test made may still be re-read while this one
    # reads, so the table is waited for (rows re-rendered under the reader are read again).
    portal.wait(lambda d: as_the_api_says(shown()), "the backlog as the API ranks it, and why")
    rows = shown()
    assert as_the_api_says(rows), (rows, expected)
    portal.screenshot("backlog")


# Holds the page's own read of the portfolio until released; `window.heldAnswered` is set in a
# task of its own after the page has its answer, so after every step the page takes with it
# (the answer's continuations are microtasks, and the portfolio fits one page: no more reads).
HOLD_THE_PORTFOLIO_READ = """
const send = window.fetch;
window.held = [];
window.heldAnswered = false;
window.fetch = (input, init) => {
  if (!String(init?.body).includes("query Portfolio")) return send(input, init);
  return new Promise((resolve, reject) => {
    window.held.push(() =>
      send(input, init).then((response) => {
        const json = response.json.bind(response);
        response.json = async () => {
          const body = await json();
          setTimeout(() => { window.heldAnswered = true; }, 0);
          return body;
        };
        resolve(response);
      }, reject),
    );
  });
};
"""


def test_a_view_left_while_it_was_read_does_not_replace_the_one_followed(
    portal: Portal, demo: Demo
) -> None:
    # The portfolio is read once it is signed in to; the backlog is followed before its answer.
    assert not demo.gql("{ useCases(first: 100) { pageInfo { hasNextPage } } }")["useCases"][
        "pageInfo"
    ]["hasNextPage"], "the demo portfolio fits one page (the hold assumes one read)"
    portal.start()
    portal.driver.execute_script(HOLD_THE_PORTFOLIO_READ)
    portal.find("#token").send_keys(demo.admin, Keys.ENTER)
    portal.wait(lambda d: d.execute_script("return window.held.length") == 1, "the read held")
    portal.go("#/backlog", "#backlog-table tbody tr")
    portal.live_for("backlog")

    portal.driver.execute_script("window.held.forEach((release) => release())")
    portal.wait(lambda d: d.execute_script("return window.heldAnswered"), "the portfolio's answer")

    assert portal.find_all("#backlog-table tbody tr"), "the backlog is still shown"
    assert not portal.find_all("#funnel"), "the portfolio's late answer was not shown"
    assert portal.driver.title == "Backlog · stagegate"
    assert portal.find("#live").get_attribute("data-for") == "backlog"


# --- a use case -------------------------------------------------------------------------------


def test_a_use_case_blocked_at_a_gate_shows_each_unmet_requirement(
    portal: Portal, demo: Demo
) -> None:
    blocked = [uc for uc in use_cases(demo) if uc["gate"]["next"] and uc["gate"]["unmet"]]
    assert blocked, "the demo has use cases blocked at a gate"
    portal.sign_in(demo.admin)
    for use_case in blocked:
        key = use_case["key"]
        portal.go(
            f"#/use-case/{key}",
            f"#gate-checklist li[data-code='{use_case['gate']['unmet'][0]['code']}']",
        )
        version: str = f"version {use_case['version']}"
        portal.wait(
            lambda d, version=version: portal.text("#use-case-version") == version,
            f"{key} at its version",
        )
        for requirement in use_case["gate"]["unmet"]:
            item = portal.find(f"#gate-checklist li[data-code='{requirement['code']}']")
            assert item.get_attribute("data-met") == "false", requirement
            assert requirement["code"] in item.text
            assert "not met" in item.text.lower()  # said in words, not by colour alone
            assert requirement["message"] in item.text
        shown = [
            (item.get_attribute("data-code"), item.get_attribute("data-met") == "true")
            for item in portal.find_all("#gate-checklist li")
        ]
        assert shown == [(r["code"], r["met"]) for r in use_case["gate"]["requirements"]]
        unmet, listed = len(use_case["gate"]["unmet"]), len(use_case["gate"]["requirements"])
        assert f"{unmet} of {listed} requirements" in portal.text("#gate-summary")
    # The picture for the README: a use case with requirements both met and not.
    mixed = max(
        blocked,
        key=lambda uc: (
            0 < len(uc["gate"]["unmet"]) < len(uc["gate"]["requirements"]),
            len(uc["gate"]["requirements"]),
        ),
    )
    portal.go(f"#/use-case/{mixed['key']}", "#gate-checklist")
    portal.wait(lambda d: portal.find_all("#integrity-result"), "the integrity check")
    portal.driver.execute_script("window.scrollTo(0, 0)")
    portal.screenshot("use-case-blocked")


AS_OF_STAGES = """
query Stages($key: String!) { useCase(key: $key) { version stage history(first: 100) {
  edges { node { version } } } } }"""


def _earlier_version_in_another_stage(demo: Demo, key: str) -> tuple[int, dict[str, Any]]:
    """The latest version of ``key`` at which it stood in another stage than now."""
    now = demo.gql(AS_OF_STAGES, {"key": key})["useCase"]
    for version in range(now["version"] - 1, 0, -1):
        then = demo.gql(
            "query Then($key: String!, $v: Int!) { useCase(key: $key) { asOf(version: $v) {"
            " stage gate { requirements { code met } } } } }",
            {"key": key, "v": version},
        )["useCase"]["asOf"]
        if then["stage"] != now["stage"]:
            return version, then
    raise AssertionError(f"{key} has been in one stage all its life")


def test_the_as_of_control_shows_the_use_case_and_its_gate_as_they_stood(
    portal: Portal, demo: Demo
) -> None:
    key = "kyc-document-check"  # sent back from acceptance to pilot in the demo
    version, then = _earlier_version_in_another_stage(demo, key)
    now = demo.gql(AS_OF_STAGES, {"key": key})["useCase"]
    portal.sign_in(demo.admin)
    portal.go(f"#/use-case/{key}", "#asof")
    assert portal.text("#current-stage").upper() == now["stage"]
    rows = portal.find_all("#history-table tbody tr")
    assert [int(row.get_attribute("data-version") or 0) for row in rows] == [
        edge["node"]["version"] for edge in now["history"]["edges"]
    ]

    # By keyboard, as a person would: to the first version, then along to the one wanted.
    slider = portal.find("#asof")
    slider.send_keys(Keys.HOME)
    for _ in range(version - 1):
        slider.send_keys(Keys.ARROW_RIGHT)
    portal.wait(
        lambda d: portal.find(".asof-view").get_attribute("data-version") == str(version),
        f"the use case as of version {version}",
    )
    assert portal.text("#asof-stage").upper() == then["stage"] != now["stage"]
    shown = [
        (item.get_attribute("data-code"), item.get_attribute("data-met") == "true")
        for item in portal.find_all("#asof-gate-checklist li")
    ]
    assert shown == [(r["code"], r["met"]) for r in then["gate"]["requirements"]]
    selected = portal.find("#history-table tr.selected")
    assert selected.get_attribute("data-version") == str(version)
    portal.screenshot("use-case-as-of")

    portal.find("#asof-now").click()
    portal.wait(lambda d: not portal.find_all(".asof-view"), "the as-of view to close")


def test_a_viewer_sees_the_use_case_but_no_history(portal: Portal, demo: Demo) -> None:
    key = "claims-summarisation"
    refused = httpx.post(
        f"{demo.url}/graphql",
        json={"query": f'{{ useCase(key: "{key}") {{ history {{ edges {{ cursor }} }} }} }}'},
        headers={"Authorization": f"Bearer {demo.viewer}"},
    ).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    portal.sign_in(demo.viewer)
    assert portal.text("#role") == "viewer"
    portal.go(f"#/use-case/{key}", "#gate-checklist")
    assert "Not permitted for your role" in portal.text("#history")
    assert "Not permitted for your role" in portal.text("#integrity")
    assert "Not permitted for your role" in portal.text("#timeline")
    assert portal.find_all("#history-table") == []
    assert portal.find_all("#history tr") == []
    assert portal.find_all("#asof") == []
    assert portal.find_all(".transitions li") == []
    # The rest of the use case is there.
    assert portal.find_all("#gate-checklist li")
    assert portal.find_all("#improvements tbody tr")
    portal.screenshot("use-case-viewer")
    # Live all the same, on what a viewer may follow (`lifecycle`, being history, is not):
    # a use case registered by someone else appears on the portfolio.
    portal.live_for(f"use-case/{key}")
    portal.go("#/portfolio", "#funnel .funnel-row")
    portal.live_for("portfolio")
    registered = f"viewed-{uuid.uuid4().hex[:8]}"
    answer = demo.gql(REGISTER, {"key": registered})["registerUseCase"]
    assert answer["__typename"] == "UseCase", answer
    portal.wait(
        lambda d: portal.find_all(f"#use-cases tr[data-key='{registered}']"),
        "the use case registered meanwhile on the viewer's portfolio",
    )


# --- live -------------------------------------------------------------------------------------

ASSIGN_BUSINESS_OWNER = """
mutation Assign($key: String!) { assignOwner(input: {key: $key, role: BUSINESS,
  person: {id: "tom.becker@example.com", name: "Tom Becker", team: "Claims Operations"}}) {
  __typename ... on UseCase { version } ... on Error { message } } }"""
REGISTER = """
mutation Register($key: String!) { registerUseCase(input: {key: $key, title: "Seen live"}) {
  __typename ... on Error { message } } }"""
ADVANCE = """
mutation Advance($key: String!) { advanceStage(input: {key: $key}) {
  __typename ... on UseCase { stage version } ... on Error { message } } }"""


def test_the_page_follows_changes_made_by_another_client(portal: Portal, demo: Demo) -> None:
    portal.sign_in(demo.admin)

    # A use case's page: the business owner is also its technical owner (OWNERS_DISTINCT).
    found = demo.gql(
        "{ useCases(filter: {unmetCode: OWNERS_DISTINCT}) { edges { node { key version } } } }"
    )["useCases"]["edges"]
    assert found, "the demo has a use case whose owners are one person"
    key = found[0]["node"]["key"]
    portal.go(f"#/use-case/{key}", "#gate-checklist li[data-code='OWNERS_DISTINCT']")
    item = "#gate-checklist li[data-code='OWNERS_DISTINCT']"
    assert portal.find(item).get_attribute("data-met") == "false"
    portal.live_for(f"use-case/{key}")
    changed = demo.gql(ASSIGN_BUSINESS_OWNER, {"key": key})["assignOwner"]
    assert changed["__typename"] == "UseCase", changed
    portal.wait(
        lambda d: (
            portal.find(item).get_attribute("data-met") == "true"
            and portal.text("#use-case-version") == f"version {changed['version']}"
        ),
        "the page to show the new business owner",
    )
    assert "Tom Becker" in portal.text("#owners")

    # The portfolio: a use case whose gate is open moves on, and the funnel with it.
    movable = [uc for uc in use_cases(demo) if uc["gate"]["open"]]
    assert movable, "the demo has a use case that meets its next gate"
    portal.go("#/portfolio", "#funnel .funnel-row")
    portal.live_for("portfolio")
    before = funnel_on_screen(portal)
    assert before == {stage: stage_counts(demo).get(stage, 0) for stage in STAGES}
    moved = demo.gql(ADVANCE, {"key": movable[0]["key"]})["advanceStage"]
    assert moved["__typename"] == "UseCase", moved
    after = {stage: stage_counts(demo).get(stage, 0) for stage in STAGES}
    assert after != before
    portal.wait(lambda d: funnel_on_screen(portal) == after, "the funnel to follow the move")


def test_a_subscription_the_server_ends_is_taken_again(
    portal: Portal, demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    portal.sign_in(demo.admin)
    portal.go("#/portfolio", "#funnel .funnel-row")
    portal.live_for("portfolio")

    def registered_and_shown() -> None:
        key = f"ended-{uuid.uuid4().hex[:8]}"
        answer = demo.gql(REGISTER, {"key": key})["registerUseCase"]
        assert answer["__typename"] == "UseCase", answer
        portal.wait(
            lambda d: portal.find_all(f"#use-cases tr[data-key='{key}']"),
            f"{key} on the portfolio",
        )

    # The next change puts every subscription past its backlog: the server ends them all.
    monkeypatch.setattr(feed, "MAX_BACKLOG", 0)
    registered_and_shown()
    monkeypatch.undo()
    # The page read itself again and subscribed again: it hears of the next change.
    portal.live_for("portfolio")
    registered_and_shown()


# --- when things go wrong ---------------------------------------------------------------------


def test_a_refused_token_sends_the_user_back_to_sign_in_saying_why(
    portal: Portal, demo: Demo
) -> None:
    portal.start()
    portal.find("#token").send_keys("sgt_0000000000000000_" + "A" * 43)
    portal.find("#token").send_keys(Keys.ENTER)
    portal.wait(lambda d: portal.find_all("#signin-message"), "the refusal")
    assert "unknown, expired or revoked" in portal.text("#signin-message")
    portal.screenshot("sign-in-refused")

    # A token revoked while the page is open: the next call is refused the same way.
    issued = demo.services.tokens.issue("rita.revoked@example.com", Role.EDITOR)
    portal.sign_in(issued.secret_token)
    portal.wait(lambda d: portal.find_all("#funnel .funnel-row"), "the portfolio")
    assert demo.services.tokens.revoke(issued.record.token_id) is True
    portal.find("#nav a[href='#/backlog']").click()
    portal.wait(lambda d: portal.find_all("#signin-message"), "the refusal")
    assert "unknown, expired or revoked" in portal.text("#signin-message")
    assert portal.find("#nav").get_attribute("hidden") is not None
    assert portal.driver.execute_script("return sessionStorage.length") == 0
    assert portal.find("#main").get_attribute("aria-busy") is None, "the form is not busy"


def test_a_server_that_is_down_is_said_so(portal: Portal, demo: Demo) -> None:
    # A server of its own (same store), so stopping it leaves the module's running.
    server = start_server(build_api(demo.services))
    try:
        down = Portal(portal.driver, server.base_url)
        down.sign_in(demo.admin)
        down.wait(lambda d: down.find_all("#funnel .funnel-row"), "the portfolio")
    finally:
        server.stop()
    down.find("#nav a[href='#/backlog']").click()
    down.wait(lambda d: down.find("#banner").is_displayed(), "the banner")
    assert down.text("#banner-message").startswith(
        f"The server at {server.base_url} does not answer"
    )
    assert down.find("#banner button").text == "Try again"
    down.wait(
        lambda d: down.find("#live").get_attribute("data-state") == "reconnecting",
        "the live status to say it is reconnecting",
    )
    down.screenshot("server-down")


# --- usable -----------------------------------------------------------------------------------


def _overflow(portal: Portal) -> list[int]:
    """By how many pixels the page, and the main content, are wider than the window (0: not
    at all; a vertical scroll bar makes the window wider than the page)."""
    widths: list[int] = portal.driver.execute_script(
        "const main = document.getElementById('main');"
        "return [document.documentElement.scrollWidth - window.innerWidth,"
        " main.scrollWidth - main.clientWidth];"
    )
    return [max(0, width) for width in widths]


def test_every_view_reflows_on_a_narrow_screen(portal: Portal, demo: Demo) -> None:
    portal.sign_in(demo.admin)
    portal.viewport(*NARROW)
    assert portal.driver.execute_script("return window.innerWidth") == NARROW[0]
    views = {
        "portfolio": ("#/portfolio", "#funnel .funnel-row"),
        "backlog": ("#/backlog", "#backlog-table tbody tr"),
        "use-case": ("#/use-case/claims-summarisation", "#history-table tbody tr"),
    }
    for name, (route, ready) in views.items():
        portal.go(route, ready)
        assert _overflow(portal) == [0, 0], name
        portal.screenshot(f"narrow-{name}")


def test_every_control_is_labelled_and_reached_by_keyboard(portal: Portal, demo: Demo) -> None:
    portal.start()
    assert portal.find("label[for='token']").text == "API token"
    portal.sign_in(demo.admin)
    portal.go("#/use-case/claims-summarisation", "#asof")
    unnamed = portal.driver.execute_script(
        "return [...document.querySelectorAll('a, button, input')]"
        ".filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')"
        " && !el.textContent.trim()).map(el => el.outerHTML)"
    )
    assert unnamed == []

    # Tab from the top of the page reaches the views' links, the as-of control and its button.
    # From the first thing on the page (the skip link), as a keyboard user starts.
    portal.driver.execute_script("document.querySelector('.skip-link').focus()")
    reached: list[str] = []
    for _ in range(200):
        ActionChains(portal.driver).send_keys(Keys.TAB).perform()
        focused = portal.driver.switch_to.active_element
        reached.append(focused.get_attribute("id") or focused.get_attribute("href") or "")
        if reached[-1] == "asof-now":
            break
    assert any(r.endswith("#/backlog") for r in reached), reached
    assert "asof" in reached, reached
    assert "asof-now" in reached, reached
    outline = portal.driver.execute_script(
        "return getComputedStyle(document.activeElement).outlineStyle"
    )
    assert outline != "none"
