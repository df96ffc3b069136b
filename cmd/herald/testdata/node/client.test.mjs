// A non-browser client of Herald, run by TestNodeClient (cmd/herald/node_test.go)
// against a running `herald serve --dev`: the npm eventsource package with a
// bearer header, and herald.js itself under Node. Environment: HERALD (base
// URL), JWT_SECRET (to mint HS256 tokens, as a backend would get them),
// HERALD_JS (path of handlers/web/herald.js). Exits non-zero on failure.
import { createHmac } from "node:crypto";
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { EventSource } from "eventsource";

const { HERALD, JWT_SECRET, HERALD_JS } = process.env;

// mint signs an HS256 token for user, valid for ttl seconds.
function mint(user, ttl, roles) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ user, rol: roles, iat: now, exp: now + ttl })}`;
  return `${body}.${createHmac("sha256", JWT_SECRET).update(body).digest("base64url")}`;
}

// withBearer is a fetch for the eventsource package that adds a token,
// asking token() each time: a reconnect gets a fresh one.
const withBearer = (token) => (input, init) =>
  fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token()}` } });

const publisher = mint("node-publisher", 600, ["service"]);
async function publish(title) {
  const r = await fetch(HERALD + "/notifications", {
    method: "POST",
    headers: { Authorization: `Bearer ${publisher}`, "Content-Type": "application/json" },
    body: JSON.stringify({ to: { employees: [2] }, type: "node.test", title }),
  });
  assert.equal(r.status, 201, `publish ${title}: ${r.status} ${await r.text()}`);
}

// next resolves with the next event of that name, or fails after 15 s.
function next(es, name) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} event within 15s`)), 15000);
    es.addEventListener(name, function once(e) {
      es.removeEventListener(name, once);
      clearTimeout(timer);
      resolve(e);
    });
  });
}

async function until(what, ok) {
  const deadline = Date.now() + 15000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 15s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// 1. The eventsource package: the stream's wire format, and a resume with
// ?lastEventId= after a client was away.
{
  const es = new EventSource(HERALD + "/events", { fetch: withBearer(() => mint("ben", 600)) });
  const opened = next(es, "open");
  await opened;
  const first = next(es, "notification");
  await publish("one");
  const m = await first;
  const n = JSON.parse(m.data);
  assert.equal(n.title, "one");
  assert.equal(m.lastEventId, n.id, "the id: line is the notification's id");
  assert.match(n.created_at, /^\d{4}-\d\d-\d\dT/);
  es.close();

  await publish("missed");
  const again = new EventSource(`${HERALD}/events?lastEventId=${m.lastEventId}`, { fetch: withBearer(() => mint("ben", 600)) });
  const missed = await next(again, "notification");
  assert.equal(JSON.parse(missed.data).title, "missed");
  again.close();
  console.log("eventsource: delivered, resumed with ?lastEventId=");
}

// 2. The package's own reconnect: the token expires, Herald says
// token_expired and ends the stream; the package reconnects (a fresh token
// from the fetch) with Last-Event-ID and gets what was published meanwhile.
// (The package keeps only the ids of events with data, not the stream's
// first id: line, so it needs one notification first.)
{
  const es = new EventSource(HERALD + "/events", { fetch: withBearer(() => mint("ben", 3)) });
  await next(es, "open");
  const seen = [];
  es.addEventListener("notification", (e) => seen.push(JSON.parse(e.data).title));
  const expired = next(es, "token_expired");
  await publish("before expiry");
  await until("the notification before expiry", () => seen.includes("before expiry"));
  await expired;
  await publish("while reconnecting");
  await until("the notification after the reconnect", () => seen.includes("while reconnecting"));
  es.close();
  console.log("eventsource: resumed with Last-Event-ID after token_expired");
}

// 3. herald.js under Node: the eventsource package as its EventSource,
// a bearer for the API calls; no tabs to share with (no Web Locks).
{
  const token = mint("ben", 600);
  class BearerEventSource extends EventSource {
    constructor(url, init) {
      super(url, { ...init, fetch: withBearer(() => token) });
    }
  }
  const Herald = (await import(pathToFileURL(HERALD_JS).href)).default;
  const got = [];
  const states = [];
  const conn = Herald.connect({
    url: HERALD, EventSource: BearerEventSource, token,
    onNotification: (n) => got.push(n), onState: (s) => states.push(s),
  });
  await until("herald.js live", () => conn.status.status === "live");
  assert.equal(conn.status.transport, "sse");
  assert.equal(conn.status.shared, false);
  await publish("via herald.js");
  await until("the notification via herald.js", () => got.some((n) => n.title === "via herald.js"));
  assert.equal(conn.lastEventId, got.at(-1).id);
  await until("counts after connecting", () => states.some((s) => s.op === "counts"));

  const page = await conn.list({ limit: 2 });
  assert.equal(page.notifications[0].title, "via herald.js");
  const read = await conn.read("all");
  assert.equal(read.unread_count, 0);
  const counts = await conn.counts();
  assert.equal(counts.unread_count, 0);
  await assert.rejects(Herald.list({}, { url: HERALD }), (e) => e.name === "HeraldError" && e.status === 401 && e.code === "missing_token");
  conn.close();
  assert.equal(conn.status.status, "live", "the last status stays readable");
  console.log("herald.js: delivered under Node, API calls with a bearer");
}
console.log("ok");
process.exit(0);
