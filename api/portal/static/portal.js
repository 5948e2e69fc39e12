// The reference portal: the portfolio, the backlog and each use case, read through the public
// GraphQL API with the token the user pasted, and kept current by its subscriptions.

import { barChart, costChart, funnelChart, shareMeter, trendChart } from "./charts.js";
import { graphql, HttpProblem, LiveConnection, ServerDown, TokenRefused } from "./graphql.js";

const TOKEN_KEY = "stagegate.token";
const STAGES = ["PROPOSED", "PILOT", "ACCEPTANCE", "DEPLOYMENT", "MEASUREMENT", "SCALE"];
const TOKEN_REFUSED_MESSAGE =
  "The server refused the token: it is unknown, expired or revoked. Paste a valid token to sign in again.";
const NOT_PERMITTED = "Not permitted for your role.";
const REFRESH_DELAY_MS = 150;

// Names for people; the codes stay on screen beside them.
const REQUIREMENT_LABELS = {
  PRIORITY_SCORED: "Priority scored",
  TECHNICAL_OWNER: "Technical owner named",
  BUSINESS_OWNER: "Business owner named",
  OWNERS_DISTINCT: "Business and technical owners are different people",
  WORKFLOW_SPECIFIED: "Workflow specified",
  ESCALATION_OUTSIDE_AI_TEAM: "Escalation starts outside the AI team",
  ACCEPTANCE_CRITERIA: "Acceptance criteria and approver defined",
  BASELINE: "Baseline captured",
  EVALUATION_PASSED: "Evaluation passed",
  ACCEPTANCE_SIGNED_OFF: "Acceptance signed off",
  PLATFORM_READY: "Platform ready",
  MONITORING_OWNER: "Monitoring owner named",
  DEPLOYED: "Deployed to production",
  AFTER_STATE_MEASURED: "After-state measured",
  IMPROVEMENT_SHOWN: "Improvement shown",
  COST_WITHIN_BUDGET: "Cost within budget",
  ADOPTION: "Adoption reached",
  VALUE_STATEMENT: "Value stated by the business owner",
  SCALE_CRITERIA_MET: "Scale criteria met",
  NO_OPEN_QUALITY_ALERT: "No open quality alert",
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  live: null,
  route: null,
  refreshTimer: null,
  asOfVersion: null, // the version the as-of control shows; null: now
  asOfRequest: 0,
};

// --- DOM helpers --------------------------------------------------------------------------

/** An element; attributes by name (on* are listeners), children as nodes or text. */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "text") element.textContent = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return element;
}

const main = () => document.getElementById("main");

function stageName(stage) {
  return stage ? stage.charAt(0) + stage.slice(1).toLowerCase() : "—";
}

function stageBadge(stage, attributes = {}) {
  return h("span", { class: `badge stage-${(stage || "none").toLowerCase()}`, ...attributes }, stageName(stage));
}

function date(iso) {
  return iso ? iso.slice(0, 10) : "—";
}

function dateTime(iso) {
  if (!iso) return "—";
  const at = new Date(iso);
  return `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function money(amount, currency) {
  if (amount === null || amount === undefined) return "—";
  const value = Number(amount);
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency, maximumFractionDigits: 0 }).format(value);
  } catch {
    return `${value.toLocaleString("en")} ${currency}`;
  }
}

function percent(share, digits = 0) {
  return share === null || share === undefined ? "—" : `${(share * 100).toFixed(digits)}%`;
}

function number(value) {
  return value === null || value === undefined ? "—" : Number(value).toLocaleString("en", { maximumFractionDigits: 3 });
}

function person(who) {
  if (!who) return h("span", { class: "missing" }, "not named");
  return h("span", {}, who.name || who.id, who.team ? h("span", { class: "muted" }, ` · ${who.team}`) : null);
}

function table(caption, headers, rows, attributes = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      attributes,
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headers.map((header) => h("th", { scope: "col" }, header)))),
      h("tbody", {}, rows),
    ),
  );
}

function section(id, title, ...content) {
  return h("section", { class: "card", id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), ...content);
}

/** Where a field was refused or failed, a note in its place; null when it was answered. */
function fieldNote(answer, path) {
  const error = answer.errorAt(path);
  if (!error) return null;
  if (error.extensions?.code === "FORBIDDEN") {
    return h("p", { class: "note not-permitted", role: "note" }, NOT_PERMITTED);
  }
  return h("p", { class: "note field-error" }, `Could not be read: ${error.message}`);
}

// --- banner, sign-in, errors ---------------------------------------------------------------

function showBanner(message, { retry = false } = {}) {
  const banner = document.getElementById("banner");
  banner.replaceChildren(
    h("span", { id: "banner-message" }, message),
    retry ? h("button", { type: "button", class: "secondary", onclick: () => render() }, "Try again") : null,
  );
  banner.hidden = false;
}

function clearBanner() {
  const banner = document.getElementById("banner");
  banner.hidden = true;
  banner.replaceChildren();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  state.route = null; // a view still being read must not show over the sign-in form
  clearTimeout(state.refreshTimer);
  main().removeAttribute("aria-busy");
  state.live?.close();
  state.live = null;
  renderChrome();
  renderSignIn(message);
}

/** What every view does with a failure: back to sign-in, a banner, or a message. */
function failed(error) {
  if (error instanceof TokenRefused) {
    signOut(TOKEN_REFUSED_MESSAGE);
  } else if (error instanceof ServerDown) {
    showBanner(`${error.message} It may be down or restarting; nothing shown here is current until it answers again.`, {
      retry: true,
    });
  } else if (error instanceof HttpProblem) {
    showBanner(`The server answered ${error.status}: ${error.message}`, { retry: true });
  } else {
    showBanner(`Something went wrong: ${error.message}`, { retry: true });
    console.error(error);
  }
}

async function ask(query, variables) {
  return accepted(await graphql(state.token, query, variables));
}

/** Thrown for a render whose answer came after a newer render began: it is dropped. */
class Superseded extends Error {}

/**
 * A render's read: its answer, unless a newer render has begun (before it is sent, or by
 * the time it arrives), which then reads instead: nothing more is asked for the old one,
 * and nothing it was answered is shown, nor its banner cleared.
 */
async function askFor(route, query, variables) {
  if (superseded(route)) throw new Superseded();
  const answer = await graphql(state.token, query, variables);
  if (superseded(route)) throw new Superseded();
  return accepted(answer);
}

function accepted(answer) {
  clearBanner();
  const requestErrors = answer.requestErrors();
  if (answer.data === null && requestErrors.length) {
    throw new Error(requestErrors.map((error) => error.message).join("; "));
  }
  return answer;
}

function renderSignIn(message) {
  document.title = "Sign in · stagegate";
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-hint",
  });
  const form = h(
    "form",
    {
      class: "signin-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        try {
          const answer = await graphql(token, "query Me { me { actorId role } }");
          clearBanner();
          state.token = token;
          sessionStorage.setItem(TOKEN_KEY, token);
          state.me = answer.data.me;
          startLive();
          renderChrome();
          render({ focus: true });
        } catch (error) {
          if (error instanceof TokenRefused) renderSignIn(TOKEN_REFUSED_MESSAGE);
          else failed(error);
        }
      },
    },
    h("label", { for: "token" }, "API token"),
    input,
    h("button", { type: "submit" }, "Sign in"),
  );
  main().replaceChildren(
    h(
      "section",
      { class: "card signin", "aria-labelledby": "signin-title" },
      h("h1", { id: "signin-title", tabindex: "-1" }, "Sign in to stagegate"),
      message ? h("p", { id: "signin-message", class: "error", role: "alert" }, message) : null,
      form,
      h(
        "p",
        { id: "token-hint", class: "muted" },
        "Paste a token from ",
        h("code", {}, "stagegate token create --actor you@example.com --role viewer"),
        " (or the admin token ",
        h("code", {}, "stagegate serve"),
        " printed on its first start). It is kept for this tab only and sent to this server alone.",
      ),
    ),
  );
  input.focus();
}

function renderChrome() {
  const signedIn = Boolean(state.me);
  document.getElementById("nav").hidden = !signedIn;
  const who = document.getElementById("who");
  if (!signedIn) {
    who.replaceChildren();
    return;
  }
  who.replaceChildren(
    h("span", { id: "live", class: "live", "data-state": "connecting", role: "status" }, "Connecting…"),
    h("span", { class: "identity" }, h("span", { id: "actor" }, state.me.actorId), " ", h("span", { id: "role", class: "badge role" }, state.me.role.toLowerCase())),
    h("button", { type: "button", class: "secondary", onclick: () => signOut(null) }, "Sign out"),
  );
}

function setLiveStatus(status, label) {
  const element = document.getElementById("live");
  if (!element) return;
  const texts = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", off: "Not live" };
  element.dataset.state = status;
  element.dataset.for = label ?? "";
  element.textContent = texts[status] ?? status;
  element.title =
    status === "live" ? "Changes made by anyone appear here as they are committed." : "Live updates are not flowing now.";
}

function startLive() {
  state.live?.close();
  state.live = new LiveConnection(state.token, {
    onStatus: setLiveStatus,
    onRefused: () => signOut(TOKEN_REFUSED_MESSAGE),
    onReconnected: () => scheduleRefresh(),
    onEnded: () => scheduleRefresh(),
  });
}

/** Read the view again soon (changes often come in bursts: one read for a burst). */
function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => render({ refresh: true }), REFRESH_DELAY_MS);
}

// --- routing -------------------------------------------------------------------------------

function currentRoute() {
  const hash = window.location.hash;
  const useCase = /^#\/use-case\/([a-z0-9-]+)$/.exec(hash);
  if (useCase) return { view: "use-case", key: useCase[1], label: `use-case/${useCase[1]}` };
  if (hash === "#/backlog") return { view: "backlog", label: "backlog" };
  return { view: "portfolio", label: "portfolio" };
}

async function render({ refresh = false, focus = false } = {}) {
  if (!state.token) {
    renderSignIn(null);
    return;
  }
  const route = currentRoute();
  if (!refresh && state.route?.label !== route.label) state.asOfVersion = null;
  state.route = route;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#/${route.view}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main().setAttribute("aria-busy", "true");
  try {
    if (!state.me) {
      state.me = (await askFor(route, "query Me { me { actorId role } }")).data.me;
      renderChrome();
      startLive();
    }
    if (route.view === "use-case") await renderUseCase(route);
    else if (route.view === "backlog") await renderBacklog(route);
    else await renderPortfolio(route);
    if (focus) document.querySelector("#main h1")?.focus();
  } catch (error) {
    if (!superseded(route)) failed(error); // the newer render reports its own
  } finally {
    if (!superseded(route)) main().removeAttribute("aria-busy");
  }
}

/**
 * Whether a newer render has begun since this one (the route was followed elsewhere, or read
 * again): its answer is older than the newer one's, so it must not replace what that shows.
 * Renders overlap: a hash change while the portfolio is still being read starts the backlog's.
 */
function superseded(route) {
  return route !== state.route;
}

/** Replace the view, keeping the focused control and the scroll position across a refresh. */
function show(content, title) {
  document.title = `${title} · stagegate`;
  const focusedId = document.activeElement?.id;
  const scroll = window.scrollY;
  main().replaceChildren(...content);
  if (focusedId) document.getElementById(focusedId)?.focus({ preventScroll: true });
  window.scrollTo(0, scroll);
}

// --- portfolio -----------------------------------------------------------------------------

// What the portfolio's table shows of each use case, on its first page and the pages after.
const LISTED_USE_CASE = `
fragment ListedUseCase on UseCase {
  key title stage businessUnit stageSince
  gate { next open unmet { code } }
  returnOnInvestment { proven }
}`;

const PORTFOLIO = `
query Portfolio($after: String) {
  portfolio {
    stages { stage count averageDaysInStage }
    stuckPilots stuckAfterDays deployed deployedWithMeasuredValue measuredValueShare
    valueAgainstCost {
      currency estimatedAnnualValue annualInferenceCost
      proven { estimatedAnnualValue annualInferenceCost }
      unproven { estimatedAnnualValue annualInferenceCost }
    }
    funnel { stage reached medianDaysInStage }
  }
  useCases(first: 100, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { ...ListedUseCase } }
  }
}
${LISTED_USE_CASE}`;

const MORE_USE_CASES = `
query MoreUseCases($after: String) {
  useCases(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { ...ListedUseCase } }
  }
}
${LISTED_USE_CASE}`;

async function allUseCases(route, first) {
  const nodes = first.edges.map((edge) => edge.node);
  let page = first.pageInfo;
  while (page.hasNextPage) {
    const more = (await askFor(route, MORE_USE_CASES, { after: page.endCursor })).data.useCases;
    nodes.push(...more.edges.map((edge) => edge.node));
    page = more.pageInfo;
  }
  return nodes;
}

/**
 * Hold the view's subscriptions, unless every one is held already: the first render of a view
 * to show it subscribes, whether or not it was read again meanwhile (a read again supersedes
 * the first read, and must then subscribe in its place), and so does the render after the
 * server ended one (FELL_BEHIND).
 */
function watchView(route, subscriptions) {
  if (state.live && !state.live.holds(route.label)) state.live.watch(subscriptions, route.label);
}

function watchPortfolio(route) {
  // Every role that reads may follow `useCasesChanged` (it carries no history): a use case
  // registered or changed anywhere has the list read again.
  watchView(route, [
    {
      query: "subscription UseCases { useCasesChanged { key version } }",
      variables: {},
      onNext: () => scheduleRefresh(),
      onError: () => {},
    },
  ]);
}

async function renderPortfolio(route) {
  const answer = await askFor(route, PORTFOLIO);
  const portfolio = answer.data.portfolio;
  const useCases = await allUseCases(route, answer.data.useCases);
  const byStage = Object.fromEntries(portfolio.stages.map((figures) => [figures.stage, figures]));
  const retired = byStage.RETIRED?.count ?? 0;

  const funnel = section(
    "funnel",
    "Use cases by stage",
    funnelChart(
      STAGES.map((stage) => ({ id: stage, label: stageName(stage), value: byStage[stage]?.count ?? 0 })),
      `Use cases now in each stage: ${STAGES.map((stage) => `${stageName(stage)} ${byStage[stage]?.count ?? 0}`).join(", ")}`,
    ),
    h("p", { class: "muted" }, `${retired} retired. Mean days in stage: `, STAGES.map((stage, i) => [i ? ", " : "", `${stageName(stage)} ${number(byStage[stage]?.averageDaysInStage?.toFixed(0))}`])),
    table(
      "Pilot to production: how many of the use cases that entered pilot reached each stage",
      ["Stage", "Reached since pilot", "Median days in stage"],
      portfolio.funnel.map((step) =>
        h("tr", {}, h("td", {}, stageName(step.stage)), h("td", { class: "num" }, step.reached), h("td", { class: "num" }, step.medianDaysInStage === null ? "—" : step.medianDaysInStage.toFixed(1))),
      ),
      { class: "compact" },
    ),
  );

  const share = portfolio.measuredValueShare;
  const measured = section(
    "measured-value",
    "Measured value",
    h("p", { class: "figure", id: "measured-share" }, percent(share)),
    share === null ? null : shareMeter(share, `Measured-value share ${percent(share)}`),
    h("p", {}, `${portfolio.deployedWithMeasuredValue} of ${portfolio.deployed} use cases in production have a measured after-state that counts.`),
  );

  const stuck = section(
    "stuck-pilots",
    "Stuck pilots",
    h("p", { class: "muted" }, `Pilots with no transition for ${portfolio.stuckAfterDays} days or more, longest first.`),
    portfolio.stuckPilots.length
      ? h("ul", { class: "plain" }, portfolio.stuckPilots.map((key) => h("li", {}, h("a", { href: `#/use-case/${key}` }, key))))
      : h("p", {}, "None."),
  );

  const value = section(
    "value-against-cost",
    "Value against cost",
    portfolio.valueAgainstCost.length
      ? portfolio.valueAgainstCost.map((figures) => {
          const c = figures.currency;
          return h(
            "figure",
            { class: "currency", "data-currency": c },
            h("figcaption", {}, `${c}: stated annual value ${money(figures.estimatedAnnualValue, c)} against inference cost ${money(figures.annualInferenceCost, c)} a year`),
            barChart(
              [
                { label: "Proven value", value: Number(figures.proven.estimatedAnnualValue), text: money(figures.proven.estimatedAnnualValue, c), kind: "value" },
                { label: "Proven: cost", value: Number(figures.proven.annualInferenceCost), text: money(figures.proven.annualInferenceCost, c), kind: "cost" },
                { label: "Unproven value", value: Number(figures.unproven.estimatedAnnualValue), text: money(figures.unproven.estimatedAnnualValue, c), kind: "unproven" },
                { label: "Unproven: cost", value: Number(figures.unproven.annualInferenceCost), text: money(figures.unproven.annualInferenceCost, c), kind: "cost" },
              ],
              `${c}: proven value against its cost, and value stated but not yet proven against its cost`,
            ),
          );
        })
      : h("p", {}, "No value stated yet."),
    h("p", { class: "muted" }, "Proven: the improvement is measured and counts (IMPROVEMENT_SHOWN). Cost: inference cost reported in the last 365 days."),
  );

  const list = section(
    "use-cases",
    `All use cases (${answer.data.useCases.totalCount})`,
    table(
      "Every use case with its stage and what blocks it",
      ["Use case", "Stage", "Business unit", "Next gate", "Value"],
      useCases.map((useCase) =>
        h(
          "tr",
          { "data-key": useCase.key },
          h("td", { class: "name" }, h("a", { href: `#/use-case/${useCase.key}` }, useCase.title), h("div", { class: "muted small" }, useCase.key)),
          h("td", {}, stageBadge(useCase.stage), h("div", { class: "muted small" }, `since ${date(useCase.stageSince)}`)),
          h("td", {}, useCase.businessUnit ?? "—"),
          h(
            "td",
            {},
            useCase.gate.next === null
              ? h("span", { class: "muted" }, "none")
              : useCase.gate.open
                ? h("span", { class: "ok" }, `open into ${stageName(useCase.gate.next)}`)
                : h("span", { class: "blocked" }, `${useCase.gate.unmet.length} unmet into ${stageName(useCase.gate.next)}`),
          ),
          h("td", {}, useCase.returnOnInvestment === null ? h("span", { class: "muted" }, "not stated") : useCase.returnOnInvestment.proven ? h("span", { class: "ok" }, "proven") : h("span", { class: "blocked" }, "unproven")),
        ),
      ),
    ),
  );

  show(
    [
      h("h1", { tabindex: "-1" }, "Portfolio"),
      h("div", { class: "grid" }, funnel, h("div", { class: "stack" }, measured, stuck), value),
      list,
    ],
    "Portfolio",
  );
  watchPortfolio(route);
}

// --- backlog -------------------------------------------------------------------------------

const BACKLOG = `
query Backlog($after: String) {
  backlog(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { rank node {
      key title stage
      priority {
        leverage { score rationale } feasibility { score rationale } readiness { score rationale }
      }
    } }
  }
}`;

function scores(priority) {
  if (!priority) return null;
  const values = [priority.leverage.score, priority.feasibility.score, priority.readiness.score];
  return { weakest: Math.min(...values), readiness: priority.readiness.score, total: values.reduce((a, b) => a + b, 0) };
}

/** Why a use case ranks below the one above it, by the backlog's own order. */
function whyHere(edge, above) {
  const mine = scores(edge.node.priority);
  if (!mine) return "Not scored yet: unscored use cases come last.";
  const own = `Weakest score ${mine.weakest}, readiness ${mine.readiness}, total ${mine.total}.`;
  if (!above) return `${own} First: strongest on its weakest dimension.`;
  const theirs = scores(above.node.priority);
  const name = above.node.title;
  if (mine.weakest !== theirs.weakest) return `${own} Below ${name}: weaker on its weakest dimension (${mine.weakest} against ${theirs.weakest}).`;
  if (mine.readiness !== theirs.readiness) return `${own} Below ${name}: same weakest score, less organisational readiness (${mine.readiness} against ${theirs.readiness}).`;
  if (mine.total !== theirs.total) return `${own} Below ${name}: same weakest score and readiness, lower total (${mine.total} against ${theirs.total}).`;
  return `${own} Tied with ${name} on all three; ordered by key.`;
}

function scoreCell(dimension) {
  if (!dimension) return h("td", { class: "num muted" }, "—");
  return h("td", { class: "num" }, h("span", { class: `score score-${dimension.score}`, title: dimension.rationale }, dimension.score));
}

async function renderBacklog(route) {
  const edges = [];
  let after = null;
  for (;;) {
    const page = (await askFor(route, BACKLOG, { after })).data.backlog;
    edges.push(...page.edges);
    if (!page.pageInfo.hasNextPage) break;
    after = page.pageInfo.endCursor;
  }
  const rows = edges.map((edge, index) =>
    h(
      "tr",
      { "data-key": edge.node.key, "data-rank": edge.rank },
      h("td", { class: "num rank" }, edge.rank),
      h("td", { class: "name" }, h("a", { href: `#/use-case/${edge.node.key}` }, edge.node.title), h("div", { class: "muted small" }, edge.node.key)),
      h("td", {}, stageBadge(edge.node.stage)),
      scoreCell(edge.node.priority?.leverage),
      scoreCell(edge.node.priority?.feasibility),
      scoreCell(edge.node.priority?.readiness),
      h("td", { class: "why" }, whyHere(edge, edges[index - 1])),
    ),
  );
  const rationales = edges
    .filter((edge) => edge.node.priority)
    .map((edge) =>
      h(
        "details",
        {},
        h("summary", {}, `${edge.rank}. ${edge.node.title}: why these scores`),
        h(
          "dl",
          {},
          ["leverage", "feasibility", "readiness"].map((name) => [
            h("dt", {}, `${name.charAt(0).toUpperCase()}${name.slice(1)} ${edge.node.priority[name].score}`),
            h("dd", {}, edge.node.priority[name].rationale),
          ]),
        ),
      ),
    );
  show(
    [
      h("h1", { tabindex: "-1" }, "Backlog"),
      h(
        "p",
        { class: "muted" },
        "Use cases not yet scaled or retired, strongest on all three priority dimensions first: the weakest score decides, then organisational readiness, then the total; unscored last.",
      ),
      section(
        "backlog",
        "Ranked backlog",
        table("The backlog, ranked", ["Rank", "Use case", "Stage", "Leverage", "Feasibility", "Readiness", "Why here"], rows, { id: "backlog-table" }),
      ),
      section("rationales", "Score rationales", rationales.length ? rationales : h("p", {}, "No use case is scored.")),
    ],
    "Backlog",
  );
  watchPortfolio(route);
}

// --- a use case ----------------------------------------------------------------------------

const USE_CASE = `
query UseCase($key: String!) {
  policy { values { minAdoption measurementWindowDays } }
  useCase(key: $key) {
    key title description businessUnit stage stageSince version registeredAt registeredBy updatedAt
    owners { business { id name team } technical { id name team } monitoring { id name team } }
    approver { id name team }
    priority { leverage { score rationale } feasibility { score rationale } readiness { score rationale } }
    workflow { steps { description performedByRole handlesExceptions } escalationPath { id name team } }
    acceptanceCriteria { metric comparator threshold }
    candidateVersion { label model prompt }
    evaluations { number version passed evaluatedAt harness dataset outcomes { criterion { metric comparator threshold } value met } }
    signOff { evaluationNumber version signedBy comment }
    readiness { item evidence confirmedBy }
    deployments { version environment deployedAt changeNumber isProduction }
    productionVersion
    changes { number fromVersion toVersion why status requestedBy approvedBy }
    improvements {
      baseline { metric unit value direction measuredAt method kind }
      afterState { value measuredAt method }
      change relativeChange counts
    }
    adoption(last: 50) { edges { node { activeUsers targetUsers rate measuredAt } } }
    costByMonth { month currency amount daysReported daysInMonth reportedInFull budget withinBudget }
    monthlyBudget { amount currency }
    returnOnInvestment { currency statedAnnualValue annualisedInferenceCost monthsCounted valueToCost proven }
    valueStatement { statement statedBy estimatedAnnualValue currency }
    scaleCriteria { criterion { dimension target description } confirmation { evidence confirmedBy } met }
    openQualityAlerts { alertId severity description raisedAt }
    gate { stage next open policyVersion unmet { code message } requirements { code met message } }
    history(first: 100) {
      pageInfo { hasNextPage endCursor }
      edges { node { version type recordedAt businessTime actorId actorRole channel reason correlationId payload } }
    }
    integrity { intact firstBadVersion reason headVersion headHash }
  }
}`;

const MORE_HISTORY = `
query MoreHistory($key: String!, $after: String) {
  useCase(key: $key) {
    history(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node { version type recordedAt businessTime actorId actorRole channel reason correlationId payload } }
    }
  }
}`;

const AS_OF = `
query AsOf($key: String!, $version: Int!) {
  useCase(key: $key) {
    asOf(version: $version) {
      version stage stageSince updatedAt
      owners { business { id name team } technical { id name team } monitoring { id name team } }
      gate { stage next open policyVersion requirements { code met message } }
    }
  }
}`;

function gateChecklist(gate, idPrefix) {
  if (gate.next === null) {
    return h("p", { class: "muted", id: `${idPrefix}-none` }, `No gate ahead: ${stageName(gate.stage)} is as far as a use case goes.`);
  }
  const unmet = gate.requirements.filter((requirement) => !requirement.met).length;
  return h(
    "div",
    { class: "gate" },
    h(
      "p",
      { class: gate.open ? "ok" : "blocked", id: `${idPrefix}-summary` },
      gate.open
        ? `Open: every requirement into ${stageName(gate.next)} is met.`
        : `Blocked: ${unmet} of ${gate.requirements.length} requirements into ${stageName(gate.next)} unmet.`,
      h("span", { class: "muted" }, ` Judged by policy version ${gate.policyVersion}.`),
    ),
    h(
      "ul",
      { class: "checklist", id: `${idPrefix}-checklist` },
      gate.requirements.map((requirement) =>
        h(
          "li",
          { class: requirement.met ? "met" : "unmet", "data-code": requirement.code, "data-met": String(requirement.met) },
          h("span", { class: "mark", "aria-hidden": "true" }, requirement.met ? "✓" : "✗"),
          h(
            "div",
            {},
            h("span", { class: "requirement" }, REQUIREMENT_LABELS[requirement.code] ?? requirement.code),
            " ",
            h("code", {}, requirement.code),
            " ",
            h("span", { class: `status ${requirement.met ? "ok" : "blocked"}` }, requirement.met ? "Met" : "Not met"),
            requirement.message ? h("p", { class: "requirement-message" }, requirement.message) : null,
          ),
        ),
      ),
    ),
  );
}

function transitionsFrom(history) {
  const transitions = [];
  for (const entry of history) {
    const payload = JSON.parse(entry.payload);
    if (entry.type === "Registered") transitions.push({ stage: "PROPOSED", entry });
    else if (payload.to_stage) transitions.push({ stage: payload.to_stage.toUpperCase(), entry });
    else if (entry.type === "Retired") transitions.push({ stage: "RETIRED", entry });
  }
  return transitions;
}

function stagePath(current) {
  return h(
    "ol",
    { class: "stage-path" },
    STAGES.map((stage) => {
      const index = STAGES.indexOf(stage);
      const reached = current === "RETIRED" ? false : index <= STAGES.indexOf(current);
      return h(
        "li",
        { class: `${reached ? "reached" : ""} ${stage === current ? "current" : ""}`, "aria-current": stage === current ? "step" : null },
        stageName(stage),
      );
    }),
    current === "RETIRED" ? h("li", { class: "current retired", "aria-current": "step" }, "Retired") : null,
  );
}

function timeline(useCase, history, answer) {
  const note = fieldNote(answer, ["useCase", "history"]);
  return section(
    "timeline",
    "Stage timeline",
    stagePath(useCase.stage),
    h("p", {}, "In ", stageBadge(useCase.stage, { id: "current-stage" }), ` since ${dateTime(useCase.stageSince)}.`),
    note
      ? [h("p", { class: "muted" }, "When each transition happened is told by the audit history:"), note]
      : h(
          "ol",
          { class: "transitions" },
          transitionsFrom(history).map(({ stage, entry }) =>
            h(
              "li",
              {},
              h("span", { class: "when" }, dateTime(entry.recordedAt)),
              " ",
              stageBadge(stage),
              h("span", { class: "muted" }, ` by ${entry.actorId} (v${entry.version})`),
              entry.reason ? h("div", { class: "small" }, entry.reason) : null,
            ),
          ),
        ),
  );
}

function ownersSection(useCase) {
  return section(
    "owners",
    "Owners",
    h(
      "dl",
      { class: "pairs" },
      h("dt", {}, "Business owner"),
      h("dd", {}, person(useCase.owners.business)),
      h("dt", {}, "Technical owner"),
      h("dd", {}, person(useCase.owners.technical)),
      h("dt", {}, "Monitoring owner"),
      h("dd", {}, person(useCase.owners.monitoring)),
      h("dt", {}, "Approver"),
      h("dd", {}, person(useCase.approver)),
      h("dt", {}, "Escalation path"),
      h("dd", {}, useCase.workflow?.escalationPath?.length ? useCase.workflow.escalationPath.map((who, i) => [i ? " → " : "", who.name || who.id]) : h("span", { class: "missing" }, "none")),
    ),
    useCase.priority
      ? h(
          "p",
          { class: "small" },
          `Priority: leverage ${useCase.priority.leverage.score}, feasibility ${useCase.priority.feasibility.score}, readiness ${useCase.priority.readiness.score}.`,
        )
      : h("p", { class: "missing small" }, "Priority not scored."),
  );
}

const COMPARATORS = { GTE: "≥", GT: ">", LTE: "≤", LT: "<" };

function criterionText(criterion) {
  return `${criterion.metric} ${COMPARATORS[criterion.comparator] ?? criterion.comparator} ${criterion.threshold}`;
}

function evaluationSection(useCase) {
  return section(
    "evaluations",
    "Criteria and evaluations",
    useCase.acceptanceCriteria.length
      ? h("p", {}, "Acceptance criteria: ", useCase.acceptanceCriteria.map((criterion, i) => [i ? ", " : "", h("code", {}, criterionText(criterion))]))
      : h("p", { class: "missing" }, "No acceptance criteria."),
    useCase.candidateVersion
      ? h("p", { class: "small" }, `Candidate ${useCase.candidateVersion.label}: ${useCase.candidateVersion.model}${useCase.candidateVersion.prompt ? `, ${useCase.candidateVersion.prompt}` : ""}.`)
      : null,
    useCase.evaluations.length
      ? table(
          "Evaluations",
          ["#", "Version", "Evaluated", "Outcomes", "Result"],
          useCase.evaluations.map((evaluation) =>
            h(
              "tr",
              {},
              h("td", { class: "num" }, evaluation.number),
              h("td", {}, evaluation.version),
              h("td", {}, date(evaluation.evaluatedAt), evaluation.harness ? h("div", { class: "muted small" }, evaluation.harness) : null),
              h(
                "td",
                {},
                evaluation.outcomes.map((outcome) =>
                  h("div", { class: outcome.met ? "ok small" : "blocked small" }, `${criterionText(outcome.criterion)}: ${number(outcome.value)} ${outcome.met ? "✓" : "✗"}`),
                ),
              ),
              h("td", {}, evaluation.passed ? h("span", { class: "ok" }, "passed") : h("span", { class: "blocked" }, "failed")),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No evaluation recorded."),
    useCase.signOff
      ? h("p", { class: "small" }, `Signed off by ${useCase.signOff.signedBy}: evaluation ${useCase.signOff.evaluationNumber} of ${useCase.signOff.version}${useCase.signOff.comment ? ` (“${useCase.signOff.comment}”)` : ""}.`)
      : h("p", { class: "muted small" }, "Not signed off."),
    useCase.readiness.length
      ? h("p", { class: "small" }, "Platform readiness confirmed: ", useCase.readiness.map((item) => item.item.toLowerCase().replaceAll("_", " ")).join(", "), ".")
      : null,
  );
}

function deploymentSection(useCase) {
  return section(
    "deployments",
    "Deployments",
    h("p", {}, "In production: ", useCase.productionVersion ? h("strong", {}, useCase.productionVersion) : h("span", { class: "muted" }, "nothing")),
    useCase.deployments.length
      ? table(
          "Deployments",
          ["Version", "Environment", "Deployed", "Change"],
          useCase.deployments.map((deployment) =>
            h(
              "tr",
              {},
              h("td", {}, deployment.version),
              h("td", {}, deployment.environment),
              h("td", {}, dateTime(deployment.deployedAt)),
              h("td", {}, deployment.changeNumber === null ? "—" : `#${deployment.changeNumber}`),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No deployment recorded."),
    useCase.changes.length
      ? h(
          "ul",
          { class: "plain small" },
          useCase.changes.map((change) => h("li", {}, `Change #${change.number}: ${change.fromVersion ?? "—"} → ${change.toVersion}, ${change.status.toLowerCase()} (${change.why})`)),
        )
      : null,
    useCase.openQualityAlerts.length
      ? h(
          "div",
          { class: "alerts" },
          h("h3", {}, "Open quality alerts"),
          h("ul", { class: "plain" }, useCase.openQualityAlerts.map((alert) => h("li", { class: "blocked", "data-alert": alert.alertId }, `${alert.severity} ${alert.alertId}: ${alert.description} (raised ${date(alert.raisedAt)})`))),
        )
      : h("p", { class: "muted small" }, "No open quality alert."),
  );
}

function improvementSection(useCase) {
  return section(
    "improvements",
    "Baseline against after-state",
    useCase.improvements.length
      ? table(
          "Each baseline metric against its latest after-state",
          ["Metric", "Baseline", "After-state", "Change", "Counts"],
          useCase.improvements.map((item) =>
            h(
              "tr",
              { "data-metric": item.baseline.metric },
              h("td", {}, item.baseline.metric, h("div", { class: "muted small" }, `${item.baseline.kind.toLowerCase()}, ${item.baseline.direction === "LOWER_IS_BETTER" ? "lower is better" : "higher is better"}`)),
              h("td", { class: "num" }, `${number(item.baseline.value)} `, h("span", { class: "muted small" }, item.baseline.unit), h("div", { class: "muted small" }, date(item.baseline.measuredAt))),
              h("td", { class: "num" }, item.afterState ? [number(item.afterState.value), h("div", { class: "muted small" }, date(item.afterState.measuredAt))] : h("span", { class: "muted" }, "not measured in the window")),
              h("td", { class: "num" }, item.relativeChange === null ? "—" : `${item.relativeChange > 0 ? "+" : ""}${percent(item.relativeChange, 1)}`),
              h("td", {}, item.counts ? h("span", { class: "ok" }, "✓ counts") : h("span", { class: "blocked" }, "✗ does not count")),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No baseline captured."),
  );
}

function adoptionSection(useCase, minAdoption) {
  const readings = useCase.adoption.edges.map((edge) => edge.node);
  return section(
    "adoption",
    "Adoption",
    readings.length
      ? [
          trendChart(
            readings.map((reading) => ({ at: new Date(reading.measuredAt), value: reading.rate, text: `${date(reading.measuredAt)}: ${percent(reading.rate)}` })),
            minAdoption,
            `Adoption over time, latest ${percent(readings[readings.length - 1].rate)}`,
          ),
          h(
            "p",
            { class: "small" },
            `Latest: ${readings[readings.length - 1].activeUsers} of ${readings[readings.length - 1].targetUsers} target users (${percent(readings[readings.length - 1].rate)}) on ${date(readings[readings.length - 1].measuredAt)}; the policy needs ${percent(minAdoption)}.`,
          ),
        ]
      : h("p", { class: "muted" }, "No adoption recorded."),
  );
}

function costSection(useCase) {
  const budget = useCase.monthlyBudget;
  const months = useCase.costByMonth;
  const inBudgetCurrency = budget ? months.filter((month) => month.currency === budget.currency) : months;
  const roi = useCase.returnOnInvestment;
  return section(
    "cost",
    "Cost against budget",
    budget ? h("p", {}, `Monthly budget: ${money(budget.amount, budget.currency)}.`) : h("p", { class: "muted" }, "No budget stated (cost tracking not confirmed)."),
    inBudgetCurrency.length
      ? costChart(
          inBudgetCurrency.map((month) => ({
            label: month.month,
            value: Number(month.amount),
            text: money(month.amount, month.currency),
            over: month.withinBudget === false,
            partial: !month.reportedInFull,
          })),
          budget ? Number(budget.amount) : null,
          `Inference cost per month${budget ? ` against a budget of ${money(budget.amount, budget.currency)}` : ""}`,
        )
      : h("p", { class: "muted" }, "No cost reported."),
    months.length
      ? h(
          "ul",
          { class: "plain small" },
          months.map((month) =>
            h(
              "li",
              { class: month.withinBudget === false ? "blocked" : "" },
              `${month.month}: ${money(month.amount, month.currency)}`,
              month.reportedInFull ? "" : ` (${number(month.daysReported)} of ${month.daysInMonth} days reported)`,
              month.withinBudget === null ? "" : month.withinBudget ? ", within budget" : ", over budget",
            ),
          ),
        )
      : null,
    roi
      ? h(
          "p",
          {},
          `Stated annual value ${money(roi.statedAnnualValue, roi.currency)} against ${roi.annualisedInferenceCost === null ? "no annualised cost yet" : `${money(roi.annualisedInferenceCost, roi.currency)} annualised cost`}`,
          roi.valueToCost === null ? "" : ` (${roi.valueToCost.toFixed(1)}×)`,
          ": ",
          roi.proven ? h("strong", { class: "ok" }, "proven") : h("strong", { class: "blocked" }, "not proven yet"),
          ".",
        )
      : null,
    useCase.valueStatement ? h("blockquote", {}, useCase.valueStatement.statement, h("footer", { class: "muted small" }, `— ${useCase.valueStatement.statedBy}`)) : null,
    useCase.scaleCriteria.length
      ? h(
          "ul",
          { class: "plain small" },
          useCase.scaleCriteria.map((status) => h("li", { class: status.met ? "ok" : "blocked" }, `${status.met ? "✓" : "✗"} ${status.criterion.dimension.toLowerCase().replaceAll("_", " ")}: ${status.criterion.target}`)),
        )
      : null,
  );
}

function integritySection(useCase, answer) {
  const note = fieldNote(answer, ["useCase", "integrity"]);
  const integrity = useCase.integrity;
  return section(
    "integrity",
    "Integrity",
    note ??
      (integrity.intact
        ? h(
            "p",
            { class: "ok", id: "integrity-result" },
            `✓ Intact: the hash chain and snapshots check out to version ${integrity.headVersion}. Head hash `,
            h("code", { class: "hash" }, integrity.headHash),
            ".",
          )
        : h("p", { class: "blocked", id: "integrity-result" }, `✗ Broken at version ${integrity.firstBadVersion}: ${integrity.reason}`)),
  );
}

function historySection(useCase, history, answer) {
  const note = fieldNote(answer, ["useCase", "history"]);
  if (note) return section("history", "Audit history", note);
  const selected = state.asOfVersion ?? useCase.version;
  const entryAt = (version) => history.find((entry) => entry.version === version);
  const describe = (version) => {
    const entry = entryAt(version);
    return entry ? `version ${version} of ${useCase.version}: ${entry.type}, ${dateTime(entry.recordedAt)}` : `version ${version}`;
  };
  const output = h("output", { id: "asof-value", for: "asof" }, describe(selected));
  const slider = h("input", {
    id: "asof",
    type: "range",
    min: 1,
    max: useCase.version,
    step: 1,
    value: selected,
    "aria-valuetext": describe(selected),
    oninput: (event) => {
      const version = Number(event.target.value);
      output.textContent = describe(version);
      event.target.setAttribute("aria-valuetext", describe(version));
      chooseAsOf(useCase.key, version === useCase.version ? null : version);
    },
  });
  const now = h("button", { type: "button", class: "secondary", id: "asof-now", onclick: () => chooseAsOf(useCase.key, null, { render: true }) }, "Back to now");
  return section(
    "history",
    "Audit history",
    h("div", { class: "asof" }, h("label", { for: "asof" }, "As of"), slider, output, now),
    h("div", { id: "asof-panel", "aria-live": "polite" }),
    table(
      "Every recorded event, oldest first",
      ["Version", "Event", "Recorded", "Business time", "Who", "Channel", "Reason"],
      history.map((entry) =>
        h(
          "tr",
          { class: `history-row${entry.version === selected && state.asOfVersion !== null ? " selected" : ""}`, "data-version": entry.version },
          h("td", { class: "num" }, entry.version),
          h("td", {}, entry.type),
          h("td", {}, dateTime(entry.recordedAt)),
          h("td", {}, entry.businessTime ? dateTime(entry.businessTime) : "—"),
          h("td", {}, entry.actorId, h("div", { class: "muted small" }, entry.actorRole)),
          h("td", {}, entry.channel.toLowerCase()),
          h("td", { class: "small" }, entry.reason ?? ""),
        ),
      ),
      { id: "history-table" },
    ),
  );
}

let asOfTimer = null;

/** Show the use case as it stood at `version` (null: now); reads it after the control rests. */
function chooseAsOf(key, version, { render: rerender = false } = {}) {
  state.asOfVersion = version;
  for (const row of document.querySelectorAll("#history-table tr.history-row")) {
    row.classList.toggle("selected", version !== null && Number(row.dataset.version) === version);
  }
  clearTimeout(asOfTimer);
  if (rerender) {
    render({ refresh: true });
    return;
  }
  asOfTimer = setTimeout(() => showAsOf(key, version), 120);
}

async function showAsOf(key, version) {
  const panel = document.getElementById("asof-panel");
  if (!panel) return;
  const request = ++state.asOfRequest;
  if (version === null) {
    panel.replaceChildren();
    return;
  }
  try {
    const answer = await ask(AS_OF, { key, version });
    if (request !== state.asOfRequest) return; // the control moved on meanwhile
    const note = fieldNote(answer, ["useCase", "asOf"]);
    const then = answer.data.useCase?.asOf;
    panel.replaceChildren(
      h(
        "div",
        { class: "asof-view", "data-version": version },
        h("h3", {}, `As it stood at version ${version}`),
        note ??
          (then
            ? [
                h("p", {}, "Stage: ", stageBadge(then.stage, { id: "asof-stage" }), ` since ${dateTime(then.stageSince)}.`),
                stagePath(then.stage),
                h("p", { class: "small" }, "Owners then: business ", person(then.owners.business), "; technical ", person(then.owners.technical), "; monitoring ", person(then.owners.monitoring), "."),
                gateChecklist(then.gate, "asof-gate"),
              ]
            : h("p", { class: "muted" }, "It did not exist yet.")),
      ),
    );
  } catch (error) {
    failed(error);
  }
}

async function renderUseCase(route) {
  const answer = await askFor(route, USE_CASE, { key: route.key });
  const useCase = answer.data.useCase;
  if (!useCase) {
    show([h("h1", { tabindex: "-1" }, "No such use case"), h("p", {}, `No use case has the key ${route.key}. `, h("a", { href: "#/portfolio" }, "Back to the portfolio"))], "Not found");
    return;
  }
  const history = useCase.history ? useCase.history.edges.map((edge) => edge.node) : [];
  let page = useCase.history?.pageInfo;
  while (page?.hasNextPage) {
    const more = (await askFor(route, MORE_HISTORY, { key: route.key, after: page.endCursor })).data.useCase.history;
    history.push(...more.edges.map((edge) => edge.node));
    page = more.pageInfo;
  }
  show(
    [
      h("p", { class: "crumbs" }, h("a", { href: "#/portfolio" }, "Portfolio"), " / ", useCase.key),
      h("h1", { tabindex: "-1" }, useCase.title, " ", stageBadge(useCase.stage)),
      h(
        "p",
        { class: "muted", id: "use-case-facts" },
        `${useCase.businessUnit ?? "No business unit"} · registered ${date(useCase.registeredAt)} by ${useCase.registeredBy} · `,
        h("span", { id: "use-case-version" }, `version ${useCase.version}`),
        ` · updated ${dateTime(useCase.updatedAt)}`,
      ),
      useCase.description ? h("p", {}, useCase.description) : null,
      h(
        "div",
        { class: "grid wide" },
        section("gate", useCase.gate.next ? `Gate into ${stageName(useCase.gate.next)}` : "Gate", gateChecklist(useCase.gate, "gate")),
        timeline(useCase, history, answer),
      ),
      h("div", { class: "grid wide" }, ownersSection(useCase), evaluationSection(useCase), deploymentSection(useCase), improvementSection(useCase), adoptionSection(useCase, answer.data.policy.values.minAdoption), costSection(useCase)),
      historySection(useCase, history, answer),
      integritySection(useCase, answer),
    ],
    useCase.title,
  );
  if (state.asOfVersion !== null) showAsOf(useCase.key, state.asOfVersion);
  watchView(route, [
    {
      query: "subscription Changed($key: String!) { useCaseChanged(key: $key) { version } }",
      variables: { key: useCase.key },
      onNext: () => scheduleRefresh(),
      onError: () => {},
    },
  ]);
}

// --- start ---------------------------------------------------------------------------------

window.addEventListener("hashchange", () => {
  // Only the views' own routes (#/...): an in-page anchor such as the skip link is not one.
  if (window.location.hash.startsWith("#/") || window.location.hash === "") render({ focus: true });
});
renderChrome();
render();
