// The portal's only way to the server: GraphQL over HTTP (fetch) and its subscriptions over
// WebSocket (graphql-transport-ws), both with the bearer token the user pasted.

// Relative to the page (/portal/), so the portal works under a proxy's path prefix too.
const GRAPHQL_URL = new URL("../graphql", window.location.href);

/** fetch itself failed: nothing answered (server down, network gone). */
export class ServerDown extends Error {}

/** 401: the token is unknown, revoked or expired. */
export class TokenRefused extends Error {}

/** Any other HTTP error, with its RFC 9457 problem document when the server sent one. */
export class HttpProblem extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** A GraphQL answer: `data`, and the errors by the path of the field each is about. */
export class Answer {
  constructor(data, errors) {
    this.data = data;
    this.errors = errors;
  }

  /** The error reported at exactly this path (e.g. ["useCase", "history"]), or null. */
  errorAt(path) {
    const wanted = path.join(".");
    return this.errors.find((error) => (error.path || []).join(".") === wanted) || null;
  }

  /** Errors that are about no field (the whole request failed). */
  requestErrors() {
    return this.errors.filter((error) => !error.path);
  }
}

async function readProblem(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** POST one GraphQL operation; throws ServerDown, TokenRefused or HttpProblem. */
export async function graphql(token, query, variables = {}) {
  let response;
  try {
    response = await fetch(GRAPHQL_URL, {
      method: "POST",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        Authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query, variables }),
      cache: "no-store",
    });
  } catch (error) {
    throw new ServerDown(`The server at ${GRAPHQL_URL.origin} does not answer (${error.message}).`);
  }
  if (response.status === 401) {
    const problem = await readProblem(response);
    throw new TokenRefused(problem?.detail || "The token was refused.");
  }
  if (!response.ok) {
    throw new HttpProblem(response.status, await readProblem(response));
  }
  const body = await response.json();
  return new Answer(body.data ?? null, body.errors ?? []);
}

const RECONNECT_DELAYS_MS = [500, 1000, 2000, 5000, 10000];

/**
 * One graphql-transport-ws connection, authenticated by its connection_init payload.
 *
 * `watch(subscriptions, label)` replaces every subscription held with a new set; once the
 * server has taken them (the pong to a ping sent after them: it takes a connection's messages
 * in order), `onStatus("live", label)` says so. A dropped connection is opened again and its
 * subscriptions sent again, and `onReconnected` lets the page read what it may have missed.
 * A subscription the server ends (a client too far behind: FELL_BEHIND) is no longer held:
 * `onEnded` lets the page read again and watch again (`holds` then says it must).
 */
export class LiveConnection {
  constructor(token, { onStatus, onRefused, onReconnected, onEnded }) {
    this.token = token;
    this.onStatus = onStatus;
    this.onRefused = onRefused;
    this.onReconnected = onReconnected;
    this.onEnded = onEnded;
    this.subscriptions = new Map(); // id -> {query, variables, onNext, onError}
    this.watched = 0; // how many subscriptions the current label was watched with
    this.label = null;
    this.nextId = 1;
    this.pongsAwaited = []; // the label each ping sent stands for, oldest first
    this.socket = null;
    this.acknowledged = false;
    this.closed = false;
    this.attempt = 0;
    this.everConnected = false;
    this.refused = false; // a subscription of the current view was refused (e.g. FORBIDDEN)
    this.open();
  }

  open() {
    const url = new URL(GRAPHQL_URL);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    this.acknowledged = false;
    this.refused = false;
    this.pongsAwaited = [];
    this.onStatus(this.everConnected ? "reconnecting" : "connecting", this.label);
    const socket = new WebSocket(url, "graphql-transport-ws");
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.send({ type: "connection_init", payload: { authorization: `Bearer ${this.token}` } });
    });
    socket.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => this.dropped(socket, event.code));
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  receive(message) {
    switch (message.type) {
      case "connection_ack": {
        const reconnected = this.everConnected;
        this.acknowledged = true;
        this.everConnected = true;
        this.attempt = 0;
        for (const [id, subscription] of this.subscriptions) this.sendSubscribe(id, subscription);
        this.confirmHeld();
        if (reconnected) this.onReconnected();
        break;
      }
      case "next":
        this.subscriptions.get(message.id)?.onNext(message.payload);
        break;
      case "error": {
        const subscription = this.subscriptions.get(message.id);
        if (subscription) {
          this.refused = true; // one of the view's subscriptions is not held: it is not live
          subscription.onError(message.payload);
          this.subscriptions.delete(message.id);
        }
        break;
      }
      case "complete":
        // Only the server's own end of one still held (one this page completed is gone).
        if (this.subscriptions.delete(message.id)) {
          this.onStatus("off", this.label);
          this.onEnded();
        }
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "pong": {
        const label = this.pongsAwaited.shift();
        if (label === this.label) this.onStatus(this.refused ? "off" : "live", label);
        break;
      }
      default:
        break;
    }
  }

  dropped(socket, code) {
    if (socket !== this.socket || this.closed) return;
    this.socket = null;
    if (code === 4401) {
      this.closed = true;
      this.onRefused();
      return;
    }
    if (code === 4403) {
      this.closed = true;
      this.onStatus("off", this.label);
      return;
    }
    const delay = RECONNECT_DELAYS_MS[Math.min(this.attempt, RECONNECT_DELAYS_MS.length - 1)];
    this.attempt += 1;
    this.onStatus("reconnecting", this.label);
    setTimeout(() => {
      if (!this.closed) this.open();
    }, delay);
  }

  sendSubscribe(id, { query, variables }) {
    this.send({ id, type: "subscribe", payload: { query, variables } });
  }

  confirmHeld() {
    this.pongsAwaited.push(this.label);
    this.send({ type: "ping" });
  }

  /** Whether every subscription `label` was watched with is still held (or being sent). */
  holds(label) {
    return this.label === label && this.subscriptions.size === this.watched;
  }

  /** Hold exactly these subscriptions ({query, variables, onNext, onError}) from now on. */
  watch(subscriptions, label) {
    for (const id of this.subscriptions.keys()) this.send({ id, type: "complete" });
    this.subscriptions.clear();
    this.label = label;
    this.watched = subscriptions.length;
    this.refused = false;
    for (const subscription of subscriptions) {
      const id = String(this.nextId++);
      this.subscriptions.set(id, subscription);
      if (this.acknowledged) this.sendSubscribe(id, subscription);
    }
    if (this.acknowledged) {
      this.onStatus("connecting", label);
      this.confirmHeld();
    }
  }

  close() {
    this.closed = true;
    this.socket?.close(1000);
    this.socket = null;
  }
}
