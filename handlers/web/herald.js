// herald.js: Herald's browser client. One ES module, plain modern
// JavaScript, no build step, no dependency (README, "In the browser").
//
//   import { connect } from "https://herald.example.com/herald.js";
//   const conn = connect({ onNotification: (n) => console.log(n.title) });
//
// One stream per browser: the tabs of a front end's origin share one
// connection. The tab that holds a Web Lock opens the stream and relays
// every event to the others over a BroadcastChannel; both are scoped to the
// page's origin, so this works when herald.js comes from Herald's origin.
// When that tab closes, the next tab in the lock's queue takes over and
// resumes from the last id the tabs saw, so no notification is lost.

import { defineInbox } from "./herald-inbox.js";

// home is Herald's base URL by default: where this file was loaded from.
const home = new URL(".", import.meta.url).href;

// Reconnecting: exponential backoff from backoffBase to backoffCap, each
// delay drawn from its upper half so that clients dropped together (a
// restart) do not come back together.
const backoffBase = 1000;
const backoffCap = 30000;
// stableAfter: a stream that stayed open this long resets the backoff.
const stableAfter = 10000;
// switchAfter: connects in a row that fail before opening while Herald's
// API answers, after which transport "auto" tries the other transport.
const switchAfter = 3;
// recentIds: how many delivered ids a tab remembers to drop a repeat (a new
// leader may replay what the old one relayed just before it closed).
const recentIds = 256;

/** An error answer of Herald (RFC 9457 problem), or a network failure (status 0). */
export class HeraldError extends Error {
  constructor(status, problem, message) {
    super(message ?? problem?.detail ?? problem?.title ?? `Herald answered ${status}`);
    this.name = "HeraldError";
    this.status = status;
    this.code = problem?.code;
    this.problem = problem ?? null;
  }
}

// baseURL resolves a Herald URL (absolute, or relative to the page) to a
// base ending in "/", so that route paths can be appended.
function baseURL(url) {
  const u = new URL(url ?? home, globalThis.location?.href);
  if (!u.pathname.endsWith("/")) u.pathname += "/";
  u.search = u.hash = "";
  return u.href;
}

// call makes one API request: JSON in and out, the cookie sent (also
// across origins), a bearer token when one is given (non-browser clients).
async function call(method, path, { url, token, body, keepalive, signal } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const bearer = typeof token === "function" ? await token() : token;
  if (bearer) headers.Authorization = "Bearer " + bearer;
  let res;
  try {
    res = await fetch(baseURL(url) + path, {
      method, headers, credentials: "include", cache: "no-store", keepalive, signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new HeraldError(0, null, `${method} ${path}: ${e.message}`);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) throw new HeraldError(res.status, json);
  return json;
}

// idsBody is the body of the state changes: ids (one, or a list) or "all".
function idsBody(ids) {
  if (ids === "all" || ids?.all === true) return { all: true };
  return { ids: (Array.isArray(ids) ? ids : [ids]).map(String) };
}

/** GET /notifications: the inbox, newest first. query: before, limit, unread, unseen, archived, type. */
export function list(query = {}, options) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v != null && v !== false) q.set(k, String(v));
  const s = q.toString();
  return call("GET", "notifications" + (s ? "?" + s : ""), options);
}

/** GET /notifications/counts: { unread_count, unseen_count }. */
export async function counts(options) {
  try {
    return await call("GET", "notifications/counts", options);
  } catch (e) {
    if (e.status !== 404) throw e;
    // A Herald from before the notification center counts unread only.
    const page = await list({ limit: 1 }, options);
    return { unread_count: page.unread_count, unseen_count: page.unread_count };
  }
}

const mark = (op) => (ids, options) => call("POST", "notifications/" + op, { ...options, body: idsBody(ids) });
/** POST /notifications/read with ids (an id, a list) or "all"; answers { marked, unread_count, unseen_count }. */
export const read = mark("read");
/** POST /notifications/unread. */
export const unread = mark("unread");
/** POST /notifications/seen. */
export const seen = mark("seen");
/** POST /notifications/archive (also marks read and seen). */
export const archive = mark("archive");
/** POST /notifications/unarchive. */
export const unarchive = mark("unarchive");
/** POST /notifications/delete: gone from the caller's inbox for good ("delete" is a reserved word). */
export const remove = mark("delete");

/** GET /preferences: { muted: [...], push: true }. */
export const preferences = (options) => call("GET", "preferences", options);
/** PUT /preferences: replaces them. */
export const setPreferences = (prefs, options) => call("PUT", "preferences", { ...options, body: prefs });

/**
 * POST /session: trades a bearer token (Azure or HS256) for the session
 * cookie the stream uses. A stream waiting to retry (its cookie had
 * expired) retries at once, in whichever tab holds it.
 */
export async function startSession(token, options) {
  await call("POST", "session", { ...options, token });
  groups.get(baseURL(options?.url))?.sessionStarted();
}
/** DELETE /session: clears the session cookie. */
export const endSession = (options) => call("DELETE", "session", options);

/**
 * Subscribes this browser to Web Push: registers the service worker (a URL
 * on the page's own origin whose file holds importScripts(".../herald-sw.js"),
 * or a ServiceWorkerRegistration), asks for permission (call it from a
 * click), subscribes with Herald's key and sends the subscription to Herald.
 */
export async function subscribePush({ serviceWorker = "/sw.js", ...options } = {}) {
  const reg = typeof serviceWorker === "string" ? await navigator.serviceWorker.register(serviceWorker) : serviceWorker;
  await activated(reg);
  if (Notification.permission !== "granted" && (await Notification.requestPermission()) !== "granted") {
    throw new HeraldError(0, null, "notifications are not allowed in this browser");
  }
  const { public_key } = await call("GET", "push/key", options);
  const key = base64url(public_key);
  let sub = await reg.pushManager.getSubscription();
  const had = sub?.options.applicationServerKey;
  if (sub && !(had && sameBytes(new Uint8Array(had), key))) {
    await sub.unsubscribe(); // made with another key (Herald's VAPID key changed)
    sub = null;
  }
  sub ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  await call("POST", "push/subscriptions", { ...options, body: sub.toJSON() });
  return sub;
}

/** Unsubscribes this browser from Web Push, at Herald and in the browser; false if it was not subscribed. */
export async function unsubscribePush({ serviceWorker = "/sw.js", ...options } = {}) {
  const reg = typeof serviceWorker === "string" ? await navigator.serviceWorker.getRegistration(serviceWorker) : serviceWorker;
  const sub = await reg?.pushManager.getSubscription();
  if (!sub) return false;
  await call("DELETE", "push/subscriptions", { ...options, body: { endpoint: sub.endpoint } });
  await sub.unsubscribe();
  return true;
}

function activated(reg) {
  if (reg.active) return Promise.resolve();
  const w = reg.installing ?? reg.waiting;
  return new Promise((resolve) => w.addEventListener("statechange", () => w.state === "activated" && resolve()));
}

function base64url(s) {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// helpers binds every API call to one Herald and credential.
function helpers(options) {
  return {
    list: (query, o) => list(query, { ...options, ...o }),
    counts: (o) => counts({ ...options, ...o }),
    read: (ids, o) => read(ids, { ...options, ...o }),
    unread: (ids, o) => unread(ids, { ...options, ...o }),
    seen: (ids, o) => seen(ids, { ...options, ...o }),
    archive: (ids, o) => archive(ids, { ...options, ...o }),
    unarchive: (ids, o) => unarchive(ids, { ...options, ...o }),
    remove: (ids, o) => remove(ids, { ...options, ...o }),
    preferences: (o) => preferences({ ...options, ...o }),
    setPreferences: (prefs, o) => setPreferences(prefs, { ...options, ...o }),
    subscribePush: (o) => subscribePush({ ...options, ...o }),
    unsubscribePush: (o) => unsubscribePush({ ...options, ...o }),
  };
}

// groups holds this tab's shared stream per Herald base URL: every
// connect() of the tab (the page's own, each <herald-inbox>) joins it.
const groups = new Map();

/**
 * Opens (or joins) the stream of the signed-in employee.
 *
 * options: url (Herald's base URL; by default where herald.js came from),
 * transport ("auto" | "sse" | "ws"), onNotification(n), onState(s),
 * onStatus(s), onEvent(name, data) (replay_truncated, ephemeral events;
 * list their names in events: [...] for SSE), session (a function giving a
 * bearer token: herald.js then makes the session cookie itself when it is
 * missing or expired), token (a bearer for the API calls, outside
 * browsers), share (false: a stream of this tab's own), lastEventId (resume
 * point), EventSource and WebSocket (constructors, outside browsers).
 *
 * Returns a connection: status, lastEventId, close(), restart() (start over
 * after signing in as someone else) and the API calls bound to this Herald.
 */
export function connect(options = {}) {
  const base = baseURL(options.url);
  let group = groups.get(base);
  if (group) group.merge(options);
  else groups.set(base, (group = new Group(base, options)));
  const { onNotification, onState, onStatus, onEvent, onReset } = options;
  const listener = { onNotification, onState, onStatus, onEvent, onReset };
  group.add(listener);
  return {
    get status() { return group.status; },
    get lastEventId() { return group.lastId; },
    close: () => group.remove(listener),
    restart: () => group.restart(),
    ...helpers({ url: base, token: options.token ?? group.options.token }),
  };
}

// Group is one tab's membership in the browser's shared stream: it holds
// the stream while its tab leads, relays between the stream, the other tabs
// and this tab's listeners, and remembers the last id it delivered.
class Group {
  constructor(base, options) {
    this.base = base;
    this.options = { ...options };
    this.events = new Set(options.events ?? []);
    this.listeners = new Set();
    this.status = { status: "connecting", transport: null, leader: false, shared: false };
    this.lastId = options.lastEventId != null ? String(options.lastEventId) : "";
    this.recent = [];
    // Start once the current task's other connect() calls have joined, so
    // that their options (session, events) are there for the first connect.
    queueMicrotask(() => this.start());
  }

  merge(options) {
    for (const k of ["session", "token", "EventSource", "WebSocket"]) this.options[k] ??= options[k];
    for (const e of options.events ?? []) this.events.add(e);
    if (options.session) this.stream?.nudge();
  }

  add(listener) {
    this.listeners.add(listener);
    queueMicrotask(() => this.listeners.has(listener) && notify(listener.onStatus, this.status));
  }

  remove(listener) {
    this.listeners.delete(listener);
    if (this.listeners.size === 0) this.stop();
  }

  start() {
    if (this.stopped) return;
    const name = "herald " + this.base;
    const canShare = this.options.share !== false && typeof BroadcastChannel === "function" && globalThis.navigator?.locks;
    if (!canShare) return this.lead();
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = (e) => this.fromPeer(e.data);
    this.abort = new AbortController();
    const held = new Promise((resolve) => { this.unlock = resolve; });
    navigator.locks.request(name, { signal: this.abort.signal }, () => { this.lead(); return held; })
      .catch((e) => {
        if (e.name === "AbortError" || this.stopped) return; // left before its turn
        this.channel.close(); // no locks here (an opaque origin): a stream of its own
        this.channel = null;
        this.lead();
      });
    this.post({ k: "hello" });
  }

  // lead runs when this tab got the lock: it opens the stream.
  lead() {
    if (this.stopped) return;
    this.stream = new Stream(this);
    this.stream.start();
  }

  fromPeer(m) {
    switch (m?.k) {
      case "hello": // a new tab: tell it where things stand
        if (this.stream) this.post({ k: "status", status: this.status, id: this.lastId });
        break;
      case "ev":
        this.deliver(m.name, m.id, m.data);
        break;
      case "status":
        if (this.stream) break;
        if (m.id && !this.lastId) this.lastId = m.id;
        this.setStatus({ ...m.status, leader: false });
        break;
      case "restart":
        this.reset();
        this.stream?.restart();
        break;
      case "session":
        this.stream?.retryNow();
        break;
    }
  }

  // sessionStarted: a new session cookie; the stream may retry at once.
  sessionStarted() {
    if (this.stream) this.stream.retryNow();
    else this.post({ k: "session" });
  }

  // fromStream delivers what the stream received and relays it.
  fromStream(name, id, data) {
    if (this.deliver(name, id, data)) this.post({ k: "ev", name, id, data });
  }

  // deliver hands an event to this tab's listeners, once per id.
  deliver(name, id, data) {
    if (id) {
      if (this.recent.includes(id)) return false;
      this.recent.push(id);
      if (this.recent.length > recentIds) this.recent.shift();
      this.lastId = id;
    }
    for (const l of this.listeners) {
      if (name === "notification") notify(l.onNotification, data);
      else if (name === "state") notify(l.onState, data);
      else notify(l.onEvent, name, data);
    }
    return true;
  }

  setStatus(status) {
    this.status = status;
    for (const l of this.listeners) notify(l.onStatus, status);
    if (this.stream) this.post({ k: "status", status, id: this.lastId });
  }

  restart() {
    this.post({ k: "restart" });
    this.reset();
    this.stream?.restart();
  }

  reset() {
    this.lastId = "";
    this.recent = [];
    for (const l of this.listeners) notify(l.onReset);
  }

  post(message) {
    try { this.channel?.postMessage(message); } catch (e) { report(e); }
  }

  stop() {
    this.stopped = true;
    groups.delete(this.base);
    this.stream?.stop();
    this.abort?.abort();
    this.unlock?.();
    this.channel?.close();
  }
}

function notify(fn, ...args) {
  if (!fn) return;
  try { fn(...args); } catch (e) { report(e); }
}

function report(e) {
  if (globalThis.reportError) globalThis.reportError(e);
  else console.error(e);
}

// Stream is the leader's connection to Herald: one transport at a time,
// reconnected with backoff, resumed from the last id the tabs saw.
class Stream {
  constructor(group) {
    this.g = group;
    this.mode = group.options.transport ?? "auto";
    this.kind = this.mode === "ws" || (this.mode === "auto" && !this.EventSource()) ? "ws" : "sse";
    this.gen = 0; // the current connection; handlers of older ones do nothing
    this.attempt = 0; // for the backoff
    this.failed = 0; // connects in a row that failed before opening while the API answered
    this.online = () => this.retryNow();
    globalThis.addEventListener?.("online", this.online);
  }

  EventSource() { return this.g.options.EventSource ?? globalThis.EventSource; }
  WebSocket() { return this.g.options.WebSocket ?? globalThis.WebSocket; }
  api() { return { url: this.g.base, token: this.g.options.token }; }

  status(status, extra) {
    return { status, transport: this.kind, leader: true, shared: !!this.g.channel, ...extra };
  }

  start() { this.open(); }

  // newestId reads the newest id of the inbox, archived items included
  // (the inbox leaves them out by default, and they would be replayed).
  async newestId() {
    const newest = async (query) => (await list({ limit: 1, ...query }, this.api())).notifications[0]?.id ?? "0";
    for (let i = 0; ; i++) {
      try {
        const ids = await Promise.all([newest({}), newest({ archived: true })]);
        return String(Math.max(...ids.map(Number)));
      } catch (e) {
        if (i > 0 || !isAuth(e) || !(await this.renew())) return "";
      }
    }
  }

  // renew makes a new session cookie when connect() was given a session
  // provider; true when it did.
  async renew() {
    const session = this.g.options.session;
    if (!session) return false;
    try {
      await startSession(await session(), { url: this.g.base });
      return true;
    } catch (e) {
      report(e);
      return false;
    }
  }

  // open makes a connection. A tab that has seen no id yet asks the inbox
  // for the newest one first, so that a stream that drops before its first
  // event still resumes from where it started.
  async open() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    this.isOpen = false;
    if (this.g.status.status !== "unauthorized") {
      this.g.setStatus(this.status(this.everOpen ? "reconnecting" : "connecting"));
    }
    if (!this.g.lastId) {
      const gen = this.gen;
      const id = await this.newestId();
      if (gen !== this.gen || this.stopped) return; // closed, restarted or stopped meanwhile
      if (!this.g.lastId) this.g.lastId = id;
    }
    try {
      if (this.kind === "ws") this.openWS();
      else this.openSSE();
    } catch (e) { // a URL or policy the browser refuses outright
      report(e);
      this.dropped();
    }
  }

  resumeQuery() {
    const id = this.g.lastId;
    return id ? "?lastEventId=" + encodeURIComponent(id) : "";
  }

  openSSE() {
    const gen = ++this.gen;
    const es = new (this.EventSource())(this.g.base + "events" + this.resumeQuery(), { withCredentials: true });
    this.conn = es;
    es.onopen = () => gen === this.gen && this.opened();
    // Any error: close and reconnect ourselves, with backoff, jitter and
    // the last id the tabs saw, instead of EventSource's fixed delay.
    es.onerror = () => {
      if (gen !== this.gen) return;
      es.close();
      this.dropped();
    };
    const names = ["notification", "state", "replay_truncated", "token_expired", "closed", "message", ...this.g.events];
    for (const name of new Set(names)) {
      es.addEventListener(name, (e) => gen === this.gen && this.received(name, parse(e.data)));
    }
  }

  openWS() {
    const gen = ++this.gen;
    const ws = new (this.WebSocket())(this.g.base.replace(/^http/, "ws") + "ws" + this.resumeQuery());
    this.conn = ws;
    ws.onopen = () => gen === this.gen && this.opened();
    ws.onmessage = (m) => {
      if (gen !== this.gen) return;
      const f = parse(m.data);
      if (f?.event) this.received(f.event, f.data, f.id);
    };
    ws.onclose = (c) => {
      if (gen !== this.gen) return;
      // The close codes of the README's WebSocket section.
      const reasons = { 4001: "token_expired", 1008: "employee_deleted", 1012: "shutdown" };
      if (reasons[c.code]) this.ended(reasons[c.code]);
      else this.dropped();
    };
  }

  opened() {
    this.isOpen = this.everOpen = true;
    this.openedAt = Date.now();
    this.failed = 0;
    this.g.setStatus(this.status("live"));
    this.refreshCounts();
  }

  // refreshCounts refetches the counts after each connect, since state
  // changes made while the stream was down were not replayed; they reach
  // every tab as a state event { op: "counts", unread_count, unseen_count }.
  async refreshCounts() {
    const gen = this.gen;
    try {
      const c = await counts(this.api());
      if (gen === this.gen && !this.stopped) this.g.fromStream("state", undefined, { op: "counts", ...c });
    } catch { /* the stream says more */ }
  }

  received(name, data, id) {
    switch (name) {
      case "token_expired":
      case "closed":
        return this.ended(name === "closed" ? data?.reason ?? "closed" : name);
      case "notification":
        id ??= data?.id; // ephemeral notifications have none
        break;
      case "replay_truncated":
        id ??= data?.latest;
        break;
    }
    this.g.fromStream(name, id == null ? undefined : String(id), data);
  }

  // ended handles a stream that Herald ended on purpose and said why.
  async ended(reason) {
    this.close();
    const gen = this.gen;
    if (reason === "employee_deleted") {
      this.stopped = true;
      this.g.setStatus(this.status("closed", { reason }));
      return;
    }
    if (reason === "token_expired") {
      // The cookie is read again at the reconnect: renew it if we can.
      this.g.setStatus(this.status("reconnecting", { reason }));
      await this.renew();
      if (gen === this.gen) this.schedule(250 + Math.random() * 750, "reconnecting", { reason });
      return;
    }
    if (reason === "shutdown") {
      // The instance is going away and every client with it: spread them.
      return this.schedule(500 + Math.random() * 4500, "reconnecting", { reason });
    }
    this.dropped(reason);
  }

  // dropped handles a connection that failed or broke: reconnect with
  // backoff. After a connect that failed before opening, ask the API why:
  // a credential problem (renew the session, or say "unauthorized"), or,
  // when the API answers but the stream keeps failing, the transport (with
  // "auto", try the other one).
  async dropped(reason) {
    const wasOpen = this.isOpen;
    this.close();
    if (wasOpen && Date.now() - this.openedAt >= stableAfter) this.attempt = 0;
    let status = "reconnecting";
    let extra = { reason };
    if (!wasOpen) {
      const gen = this.gen;
      const { code, reachable } = await this.probe();
      if (gen !== this.gen || this.stopped) return;
      if (code) {
        if (!(await this.renew())) {
          status = "unauthorized";
          extra = { reason: code, code };
        }
      } else if (reachable && ++this.failed >= switchAfter && this.mode === "auto" && this.otherTransport()) {
        this.kind = this.kind === "sse" ? "ws" : "sse";
        this.failed = 0;
      }
    }
    const d = Math.min(backoffCap, backoffBase * 2 ** this.attempt++);
    this.schedule(d / 2 + (Math.random() * d) / 2, status, extra);
  }

  otherTransport() {
    return this.kind === "sse" ? !!this.WebSocket() : !!this.EventSource();
  }

  // probe asks the API (GET /notifications?limit=1, the cheapest call an
  // employee can make) what a transport cannot say about its failed
  // connect: code, the problem code of a 401 or 403; reachable, whether
  // Herald answered at all.
  async probe() {
    try {
      await list({ limit: 1 }, this.api());
      return { reachable: true };
    } catch (e) {
      if (isAuth(e)) return { code: e.code ?? String(e.status), reachable: true };
      return { reachable: e.status > 0 };
    }
  }

  schedule(ms, status, extra) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), ms);
    this.g.setStatus(this.status(status, { ...extra, retryIn: Math.round(ms) }));
  }

  // nudge retries at once when a session provider arrived while the stream
  // was waiting to retry without one.
  async nudge() {
    if (!this.timer || this.g.status.status !== "unauthorized") return;
    if (await this.renew()) this.retryNow();
  }

  // retryNow cuts short the wait before a reconnect.
  retryNow() {
    if (this.timer) this.open();
  }

  close() {
    this.gen++;
    this.isOpen = false;
    this.conn?.close();
    this.conn = null;
  }

  restart() {
    this.close();
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = this.failed = 0;
    this.everOpen = false;
    this.g.setStatus(this.status("connecting"));
    this.start();
  }

  stop() {
    this.stopped = true;
    this.close();
    clearTimeout(this.timer);
    globalThis.removeEventListener?.("online", this.online);
  }
}

const isAuth = (e) => e?.status === 401 || e?.status === 403;

function parse(s) {
  try { return JSON.parse(s); } catch { return s; }
}

/** Every function of this module, as one object. */
const Herald = {
  connect, list, counts, read, unread, seen, archive, unarchive, remove,
  preferences, setPreferences, startSession, endSession, subscribePush, unsubscribePush, HeraldError,
};
export default Herald;

defineInbox(Herald);
