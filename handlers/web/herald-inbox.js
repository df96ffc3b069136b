// herald-inbox.js: the <herald-inbox> custom element, imported by herald.js
// (README, "In the browser"). A bell with the unseen count; a click opens
// the inbox. Shadow DOM, no framework; themed through CSS custom properties
// (--herald-*); English and Spanish, chosen by lang.
//
// It defines nothing by itself: herald.js calls defineInbox with its API,
// so this module has no imports (and herald.js loads outside browsers).

const pageSize = 20;

// hues tint each item's icon by its type's first word (request, build…).
const hues = [214, 262, 172, 24, 340, 146, 232, 192, 290];

/** The element's strings, by language; add a language with HeraldInbox.strings.xx = {...}. */
export const strings = {
  en: {
    title: "Notifications",
    bell: (n) => (n ? `Notifications, ${n} new` : "Notifications"),
    markAll: "Mark all as read",
    archive: "Archive",
    unread: "Unread",
    close: "Close",
    empty: "You’re all caught up",
    emptyHint: "New notifications will show up here.",
    error: "Couldn’t load your notifications.",
    retry: "Try again",
    failed: "That didn’t work. Please try again.",
    reconnecting: "Reconnecting…",
    unauthorized: "Sign in again to get new notifications.",
    fresh: (title) => `New notification: ${title}`,
  },
  es: {
    title: "Notificaciones",
    bell: (n) => (n ? `Notificaciones, ${n} ${n === 1 ? "nueva" : "nuevas"}` : "Notificaciones"),
    markAll: "Marcar todo como leído",
    archive: "Archivar",
    unread: "No leída",
    close: "Cerrar",
    empty: "Estás al día",
    emptyHint: "Las notificaciones nuevas aparecerán aquí.",
    error: "No se pudieron cargar tus notificaciones.",
    retry: "Reintentar",
    failed: "No se pudo completar. Inténtalo de nuevo.",
    reconnecting: "Reconectando…",
    unauthorized: "Vuelve a iniciar sesión para recibir notificaciones.",
    fresh: (title) => `Nueva notificación: ${title}`,
  },
};

const icons = {
  bell: `<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M18 8a6 6 0 1 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.7 21a2 2 0 0 1-3.4 0"/></svg>`,
  archive: `<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="3" y="4" width="18" height="4" rx="1"/><path d="M5 8v11a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8"/><path d="M10 12h4"/></svg>`,
  check: `<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M18 8a6 6 0 1 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.7 21a2 2 0 0 1-3.4 0"/><path d="m9 9.5 2 2 4-4"/></svg>`,
  alert: `<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="9"/><path d="M12 7.5v5"/><path d="M12 16.2v.3"/></svg>`,
  close: `<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6 6 18"/></svg>`,
};

const css = `
:host {
  --_accent: var(--herald-accent, #2563eb);
  --_bg: var(--herald-bg, #ffffff);
  --_fg: var(--herald-fg, #111827);
  --_muted: var(--herald-muted, #6b7280);
  --_border: var(--herald-border, #e5e7eb);
  --_hover: var(--herald-hover, #f3f4f6);
  --_unread-bg: var(--herald-unread-bg, #f0f6ff);
  --_badge-bg: var(--herald-badge-bg, #dc2626);
  --_badge-fg: var(--herald-badge-fg, #ffffff);
  --_bell: var(--herald-bell-color, currentColor);
  --_bell-hover: var(--herald-bell-hover, rgb(127 127 127 / .14));
  --_radius: var(--herald-radius, 12px);
  --_width: var(--herald-panel-width, 384px);
  --_shadow: var(--herald-shadow, 0 16px 40px rgb(15 23 42 / .16), 0 2px 8px rgb(15 23 42 / .08));
  --_skeleton: var(--herald-skeleton, #eef0f3);
  display: inline-block;
  position: relative;
  font: var(--herald-font, 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  color: var(--_fg);
  -webkit-tap-highlight-color: transparent;
}
:host([theme="dark"]) {
  --_bg: var(--herald-bg, #1c2230); --_fg: var(--herald-fg, #e8ebf1); --_muted: var(--herald-muted, #9aa3b2);
  --_border: var(--herald-border, #2d3545); --_hover: var(--herald-hover, #252d3d); --_unread-bg: var(--herald-unread-bg, #1f2b45);
  --_accent: var(--herald-accent, #6ea1ff); --_skeleton: var(--herald-skeleton, #2a3242);
}
@media (prefers-color-scheme: dark) {
  :host([theme="auto"]) {
    --_bg: var(--herald-bg, #1c2230); --_fg: var(--herald-fg, #e8ebf1); --_muted: var(--herald-muted, #9aa3b2);
    --_border: var(--herald-border, #2d3545); --_hover: var(--herald-hover, #252d3d); --_unread-bg: var(--herald-unread-bg, #1f2b45);
    --_accent: var(--herald-accent, #6ea1ff); --_skeleton: var(--herald-skeleton, #2a3242);
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
svg { width: 20px; height: 20px; fill: none; stroke: currentColor; stroke-width: 1.8; stroke-linecap: round; stroke-linejoin: round; flex: none; }
button { font: inherit; color: inherit; background: none; border: 0; padding: 0; cursor: pointer; }
:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }

.bell { position: relative; display: grid; place-items: center; width: 40px; height: 40px; border-radius: 50%; color: var(--_bell); transition: background .15s; }
.bell:hover, .bell[aria-expanded="true"] { background: var(--_bell-hover); }
.bell svg { width: 22px; height: 22px; }
.bell.ring svg { animation: ring .7s ease-in-out; transform-origin: 50% 10%; }
@keyframes ring { 15% { transform: rotate(14deg) } 35% { transform: rotate(-12deg) } 55% { transform: rotate(8deg) } 75% { transform: rotate(-4deg) } }
.badge { position: absolute; top: 3px; right: 1px; min-width: 18px; height: 18px; padding: 0 5px; border-radius: 9px;
  background: var(--_badge-bg); color: var(--_badge-fg); font-size: 11px; font-weight: 700; line-height: 18px; text-align: center;
  box-shadow: 0 0 0 2px var(--herald-badge-ring, var(--_bg)); font-variant-numeric: tabular-nums; pointer-events: none; }

.panel { position: absolute; top: calc(100% + 8px); right: 0; z-index: var(--herald-z, 1000); width: min(var(--_width), calc(100vw - 16px));
  display: flex; flex-direction: column; max-height: min(600px, calc(100vh - 96px)); background: var(--_bg); color: var(--_fg);
  border: 1px solid var(--_border); border-radius: var(--_radius); box-shadow: var(--_shadow); overflow: hidden; text-align: start;
  animation: pop .14s ease-out; }
.panel.start { right: auto; left: 0; }
.panel:focus { outline: none; }
@keyframes fade { from { opacity: 0 } }
@keyframes pop { from { opacity: 0; transform: translateY(-4px) scale(.98) } }
.head { display: flex; align-items: center; gap: 8px; padding: 14px 12px 12px 18px; border-bottom: 1px solid var(--_border); }
h2 { margin: 0; font-size: 16px; font-weight: 650; letter-spacing: -.01em; flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.all { flex: none; color: var(--_accent); font-size: 13px; font-weight: 550; padding: 6px 8px; border-radius: 6px; white-space: nowrap; }
.all:hover:not(:disabled) { background: var(--_hover); }
.all:disabled { color: var(--_muted); opacity: .6; cursor: default; }
.close { display: none; flex: none; width: 32px; height: 32px; border-radius: 50%; place-items: center; color: var(--_muted); }
.close:hover { background: var(--_hover); }
.note { padding: 8px 18px; font-size: 13px; color: var(--_muted); background: var(--_hover); border-bottom: 1px solid var(--_border); }
.note.bad { color: #b42318; background: #fef3f2; }
:host([theme="dark"]) .note.bad { color: #fda29b; background: #3a1f22; }

.scroll { overflow-y: auto; overscroll-behavior: contain; flex: 1; min-height: 0; }
ul { list-style: none; margin: 0; padding: 0; }
li { position: relative; display: flex; align-items: stretch; border-bottom: 1px solid var(--_border); transition: background .15s; }
li:last-child { border-bottom: 0; }
li:hover { background: var(--_hover); }
li.unread { background: var(--_unread-bg); }
li.leaving { animation: leave .2s ease-in forwards; }
@keyframes leave { to { opacity: 0; transform: translateX(24px) } }
.main { flex: 1; min-width: 0; display: flex; gap: 12px; padding: 14px 4px 14px 18px; color: inherit; text-decoration: none; text-align: start; border-radius: 0; }
.main:focus-visible { outline-offset: -2px; }
.icon { position: relative; flex: none; width: 36px; height: 36px; border-radius: 10px; display: grid; place-items: center;
  font-weight: 700; font-size: 15px; color: hsl(var(--h) 55% 38%); background: hsl(var(--h) 70% 93%); }
:host([theme="dark"]) .icon { color: hsl(var(--h) 70% 78%); background: hsl(var(--h) 35% 24%); }
.unread .icon::after { content: ""; position: absolute; top: -3px; left: -3px; width: 10px; height: 10px; border-radius: 50%;
  background: var(--_accent); box-shadow: 0 0 0 2px var(--_unread-bg); }
.text { min-width: 0; display: flex; flex-direction: column; gap: 2px; }
.title { font-weight: 500; overflow-wrap: anywhere; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
.unread .title { font-weight: 650; }
.body { color: var(--_muted); font-size: 13px; overflow-wrap: anywhere; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
time { color: var(--_muted); font-size: 12px; margin-top: 2px; }
.unread time { color: var(--_accent); font-weight: 550; }
.archive { flex: none; align-self: center; width: 34px; height: 34px; margin-right: 10px; border-radius: 8px; display: grid; place-items: center;
  color: var(--_muted); opacity: 0; transition: opacity .15s, background .15s; }
.archive svg { width: 18px; height: 18px; }
li:hover .archive, li:focus-within .archive, .archive:focus-visible { opacity: 1; }
.archive:hover { background: var(--_bg); color: var(--_fg); }
@media (hover: none) { .archive { opacity: 1; } }

.state { display: flex; flex-direction: column; align-items: center; gap: 6px; padding: 44px 24px 48px; text-align: center; color: var(--_muted); }
.state svg { width: 44px; height: 44px; stroke-width: 1.4; margin-bottom: 8px; color: var(--_muted); opacity: .7; }
.state strong { color: var(--_fg); font-size: 15px; font-weight: 600; }
.state button { margin-top: 10px; padding: 7px 14px; border-radius: 8px; border: 1px solid var(--_border); font-weight: 550; }
.state button:hover { background: var(--_hover); }
.skeleton { padding: 4px 0; }
.skeleton div { display: flex; gap: 12px; padding: 14px 18px; }
.skeleton i { display: block; height: 10px; border-radius: 5px; background: var(--_skeleton); animation: pulse 1.2s ease-in-out infinite; }
.skeleton i:first-child { width: 36px; height: 36px; border-radius: 10px; flex: none; }
.skeleton span { flex: 1; display: flex; flex-direction: column; gap: 8px; padding-top: 4px; }
@keyframes pulse { 50% { opacity: .45 } }
.toast { margin: 8px 12px; padding: 8px 12px; border-radius: 8px; font-size: 13px; color: #b42318; background: #fef3f2; }

.scrim { display: none; }
@media (max-width: 520px) {
  .scrim { display: block; position: fixed; inset: 0; z-index: var(--herald-z, 1000); background: rgb(15 23 42 / .32); animation: fade .14s ease-out; }
  .panel, .panel.start { position: fixed; top: var(--_top, 64px); left: 8px; right: 8px; width: auto; max-height: calc(100dvh - var(--_top, 64px) - 8px); }
  .close { display: grid; }
  .head { gap: 4px; padding: 12px 8px 10px 16px; }
  h2 { font-size: 15px; }
  .main { padding-left: 14px; }
}
@media (prefers-reduced-motion: reduce) {
  *, .bell.ring svg { animation: none !important; transition: none !important; }
}
`;

/** Defines <herald-inbox> on the API herald.js passes; nothing outside browsers. */
export function defineInbox(herald) {
  if (!globalThis.customElements || customElements.get("herald-inbox")) return;

  class HeraldInbox extends HTMLElement {
    static strings = strings;
    static observedAttributes = ["lang"];

    constructor() {
      super();
      this.items = []; // newest first
      this.byId = new Map(); // id → { n, li }
      this.counts = { unread_count: 0, unseen_count: 0 };
      this.next = null; // the before= of the next page; null: no more
      this.loaded = false;
      this.arrived = []; // live notifications that came while the first page loaded
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<style>${css}</style>
<button class="bell" part="bell" type="button" aria-haspopup="dialog" aria-expanded="false" aria-controls="panel">${icons.bell}<span class="badge" part="badge" hidden></span></button>
<div class="scrim" hidden></div>
<div class="panel" part="panel" id="panel" role="dialog" aria-labelledby="title" tabindex="-1" hidden>
  <div class="head"><h2 id="title"></h2><button class="all" type="button"></button><button class="close" type="button">${icons.close}</button></div>
  <div class="note" role="status" hidden></div>
  <div class="scroll">
    <ul role="list" aria-labelledby="title"></ul>
    <div class="skeleton" aria-hidden="true" hidden>${"<div><i></i><span><i></i><i style=width:60%></i></span></div>".repeat(3)}</div>
    <div class="state empty" hidden>${icons.check}<strong></strong><span></span></div>
    <div class="state error" role="alert" hidden>${icons.alert}<strong></strong><button type="button"></button></div>
    <div class="toast" role="alert" hidden></div>
  </div>
</div>
<div class="sr" aria-live="polite"></div>`;
      const $ = (s) => root.querySelector(s);
      this.el = {
        bell: $(".bell"), badge: $(".badge"), panel: $(".panel"), scrim: $(".scrim"), title: $("h2"), all: $(".all"), close: $(".close"),
        note: $(".note"), scroll: $(".scroll"), list: $("ul"), skeleton: $(".skeleton"), empty: $(".empty"),
        error: $(".error"), toast: $(".toast"), live: $(".sr[aria-live]"),
      };
      this.el.bell.addEventListener("click", () => this.toggle());
      this.el.close.addEventListener("click", () => this.close(true));
      this.el.scrim.addEventListener("click", () => this.close(false));
      this.el.all.addEventListener("click", () => this.markAllRead());
      this.el.error.querySelector("button").addEventListener("click", () => this.reload());
      this.el.bell.addEventListener("pointerenter", () => this.prefetch(), { once: true });
      this.el.bell.addEventListener("animationend", () => this.el.bell.classList.remove("ring"));
      this.el.panel.addEventListener("keydown", (e) => this.onKey(e));
      this.el.list.addEventListener("click", (e) => this.onClick(e));
      // More on scroll. A scroll event, not an IntersectionObserver: that
      // one fires on a change only, and misses a page that arrived and a
      // scroll to the end within one frame.
      this.el.scroll.addEventListener("scroll", () => this.nearEnd() && this.loadMore(), { passive: true });
      this.outside = (e) => this.open && !e.composedPath().includes(this) && this.close(false);
      this.addEventListener("focusout", (e) => e.relatedTarget && !this.contains(e.relatedTarget) && this.close(false));
    }

    connectedCallback() {
      this.texts();
      if (this.conn) return;
      this.conn = herald.connect({
        url: this.getAttribute("url") ?? undefined,
        transport: this.getAttribute("transport") ?? undefined,
        onNotification: (n) => this.onNotification(n),
        onState: (s) => this.onState(s),
        onStatus: (s) => this.onStatus(s),
        onEvent: (name) => name === "replay_truncated" && this.loaded && this.reload(),
        onReset: () => this.reload(true),
      });
      this.refreshCounts();
      this.clock = setInterval(() => this.open && this.times(), 30000);
    }

    disconnectedCallback() {
      this.close(false);
      this.conn?.close();
      this.conn = null;
      clearInterval(this.clock);
    }

    attributeChangedCallback() {
      if (this.conn) this.texts();
    }

    // The language: the element's lang, else the nearest ancestor's, else the browser's.
    get locale() {
      return this.closest("[lang]")?.lang || globalThis.navigator?.language || "en";
    }

    get t() {
      const lang = this.locale.toLowerCase();
      return HeraldInbox.strings[lang] ?? HeraldInbox.strings[lang.split("-")[0]] ?? HeraldInbox.strings.en;
    }

    texts() {
      const t = this.t;
      this.el.title.textContent = t.title;
      this.el.all.textContent = t.markAll;
      this.el.close.setAttribute("aria-label", t.close);
      this.el.empty.querySelector("strong").textContent = t.empty;
      this.el.empty.querySelector("span").textContent = t.emptyHint;
      this.el.error.querySelector("strong").textContent = t.error;
      this.el.error.querySelector("button").textContent = t.retry;
      this.rtf = new Intl.RelativeTimeFormat(this.locale, { numeric: "auto" });
      this.dtf = new Intl.DateTimeFormat(this.locale, { dateStyle: "medium", timeStyle: "short" });
      this.badge();
      for (const { n, li } of this.byId.values()) this.fill(li, n);
      this.onStatus(this.conn?.status ?? { status: "connecting" });
    }

    // ---- counts and the badge

    async refreshCounts() {
      try { this.setCounts(await this.conn.counts()); } catch { /* the stream refetches them once it connects */ }
    }

    setCounts(c) {
      if (c?.unread_count == null) return;
      this.counts = { unread_count: c.unread_count, unseen_count: c.unseen_count ?? c.unread_count };
      this.badge();
    }

    badge() {
      const n = this.counts.unseen_count;
      this.el.badge.hidden = n === 0;
      this.el.badge.textContent = n > 99 ? "99+" : String(n);
      this.el.bell.setAttribute("aria-label", this.t.bell(n));
      this.el.all.disabled = this.counts.unread_count === 0 && !this.items.some((item) => !item.read);
    }

    // ---- opening and closing

    toggle() { this.open ? this.close(true) : this.show(); }

    async show() {
      if (this.open) return;
      this.open = true;
      this.place();
      this.el.panel.hidden = this.el.scrim.hidden = false;
      this.el.bell.setAttribute("aria-expanded", "true");
      document.addEventListener("pointerdown", this.outside, true);
      this.times();
      if (!this.loaded) await this.reload();
      if (!this.open) return;
      if (!this.focusItem(0)) this.el.panel.focus(); // empty, or an error: Escape still works
      this.markSeen(this.items);
    }

    close(refocus) {
      if (!this.open) return;
      this.open = false;
      this.el.panel.hidden = this.el.scrim.hidden = true;
      this.el.bell.setAttribute("aria-expanded", "false");
      document.removeEventListener("pointerdown", this.outside, true);
      if (refocus) this.el.bell.focus();
    }

    // place opens the panel towards the side with room; on a phone it is a
    // sheet under the bell, fixed to the viewport.
    place() {
      const r = this.getBoundingClientRect();
      const width = Math.min(this.el.panel.offsetWidth || 384, innerWidth - 16);
      this.el.panel.classList.toggle("start", r.right - width < 8);
      this.el.panel.style.setProperty("--_top", Math.round(r.bottom + 8) + "px");
    }

    // ---- loading

    prefetch() { if (!this.loaded && !this.loading) this.reload(); }

    // reload fetches the first page again; reset (another employee signed
    // in) also forgets what is shown at once.
    async reload(reset) {
      if (reset) {
        this.setCounts({ unread_count: 0, unseen_count: 0 });
        this.clear();
        this.arrived = [];
      }
      this.loaded = false;
      this.next = null;
      this.el.error.hidden = this.el.empty.hidden = true;
      this.el.skeleton.hidden = this.items.length > 0;
      const page = await this.fetchPage();
      this.el.skeleton.hidden = true;
      if (!page) {
        if (this.items.length === 0) this.el.error.hidden = false;
        return;
      }
      this.clear();
      this.loaded = true;
      this.append(page);
      // What arrived live while the page was on its way, newest last.
      for (const n of this.arrived.splice(0)) this.insert(n);
      if (reset) this.refreshCounts();
      if (this.open) this.markSeen(this.items);
    }

    clear() {
      for (const { li } of this.byId.values()) li.remove();
      this.items = [];
      this.byId.clear();
    }

    async loadMore() {
      if (!this.loaded || !this.next || this.loading) return;
      const page = await this.fetchPage(this.next);
      if (page) {
        this.append(page);
        if (this.open) this.markSeen(page.notifications);
      }
    }

    async fetchPage(before) {
      this.loading = true;
      try {
        return await this.conn.list({ limit: pageSize, before });
      } catch {
        if (before) this.toast(this.t.error);
        return null;
      } finally {
        this.loading = false;
      }
    }

    append(page) {
      for (const n of page.notifications) {
        if (this.byId.has(n.id)) continue;
        this.items.push(n);
        this.byId.set(n.id, { n, li: this.render(n) });
        this.el.list.append(this.byId.get(n.id).li);
      }
      this.next = page.next_before ?? null;
      this.after();
    }

    // after brings the empty state, the roving focus stop and the badge up to date.
    after() {
      this.el.empty.hidden = !this.loaded || this.items.length > 0;
      const stops = this.el.list.querySelectorAll(".main");
      if (stops.length && ![...stops].some((m) => m.tabIndex === 0)) this.rove(stops[0]);
      this.badge();
      // A short page may not fill the panel: keep loading.
      requestAnimationFrame(() => this.open && this.nearEnd() && this.loadMore());
    }

    nearEnd() {
      const s = this.el.scroll;
      return s.scrollTop + s.clientHeight >= s.scrollHeight - 80;
    }

    // ---- items

    render(n) {
      const li = document.createElement("li");
      li.part = "item";
      li.dataset.id = n.id;
      const href = safeURL(n.url);
      const main = document.createElement(href ? "a" : "button");
      main.className = "main";
      if (href) main.href = href;
      else main.type = "button";
      main.tabIndex = -1;
      const hue = hues[[...(n.type ?? "").split(".")[0]].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 9973, 7) % hues.length];
      main.innerHTML = `<span class="icon" aria-hidden="true" style="--h:${hue}"></span><span class="text"><span class="title"></span><span class="body"></span><time></time><span class="sr state-sr"></span></span>`;
      main.querySelector(".icon").textContent = ((n.type ?? "?").match(/[a-z0-9]/i)?.[0] ?? "•").toUpperCase();
      const archive = document.createElement("button");
      archive.type = "button";
      archive.className = "archive";
      archive.tabIndex = -1;
      archive.innerHTML = icons.archive;
      li.append(main, archive);
      this.fill(li, n);
      return li;
    }

    fill(li, n) {
      const t = this.t;
      li.classList.toggle("unread", !n.read);
      li.querySelector(".title").textContent = n.title;
      const body = li.querySelector(".body");
      body.textContent = n.body ?? "";
      body.hidden = !n.body;
      li.querySelector(".state-sr").textContent = n.read ? "" : t.unread;
      const time = li.querySelector("time");
      time.dateTime = n.created_at;
      time.title = this.dtf.format(new Date(n.created_at));
      time.textContent = this.ago(n.created_at);
      const archive = li.querySelector(".archive");
      archive.title = t.archive;
      archive.setAttribute("aria-label", `${t.archive}: ${n.title}`);
    }

    times() {
      for (const { n, li } of this.byId.values()) li.querySelector("time").textContent = this.ago(n.created_at);
    }

    ago(at) {
      const s = (new Date(at).getTime() - Date.now()) / 1000;
      const a = Math.abs(s);
      const [v, unit] = a < 45 ? [0, "second"] : a < 2700 ? [s / 60, "minute"] : a < 79200 ? [s / 3600, "hour"]
        : a < 561600 ? [s / 86400, "day"] : a < 2419200 ? [s / 604800, "week"] : a < 28512000 ? [s / 2592000, "month"] : [s / 31536000, "year"];
      return this.rtf.format(Math.sign(v) * Math.round(Math.abs(v)) || 0, unit); // 1.5 hours ago: 2 hours ago
    }

    set(ids, change) {
      for (const id of ids === "all" ? this.byId.keys() : ids) {
        const e = this.byId.get(String(id));
        if (!e) continue;
        Object.assign(e.n, change);
        this.fill(e.li, e.n);
      }
      this.badge();
    }

    drop(ids) {
      for (const id of ids === "all" ? [...this.byId.keys()] : ids) {
        const e = this.byId.get(String(id));
        if (!e) continue;
        const focused = this.shadowRoot.activeElement && e.li.contains(this.shadowRoot.activeElement);
        const next = e.li.nextElementSibling ?? e.li.previousElementSibling;
        this.byId.delete(e.n.id);
        this.items = this.items.filter((n) => n !== e.n);
        e.li.classList.add("leaving");
        setTimeout(() => e.li.remove(), 200);
        if (focused && next) this.rove(next.querySelector(".main"), true);
      }
      this.after();
    }

    // ---- actions

    async markSeen(items) {
      const ids = items.filter((n) => !n.seen).map((n) => n.id);
      if (!ids.length) return;
      for (const id of ids) this.byId.get(id) && (this.byId.get(id).n.seen = true);
      try {
        this.setCounts(await this.conn.seen(ids));
      } catch (e) {
        if (e.status !== 404) for (const id of ids) this.byId.get(id) && (this.byId.get(id).n.seen = false);
        // 404: a Herald from before the notification center has no seen state.
      }
    }

    async markAllRead() {
      const before = this.items.filter((n) => !n.read).map((n) => n.id);
      this.set("all", { read: true });
      try {
        this.setCounts(await this.conn.read("all"));
      } catch {
        this.set(before, { read: false });
        this.toast(this.t.failed);
      }
    }

    onClick(e) {
      const li = e.target.closest("li");
      const entry = li && this.byId.get(li.dataset.id);
      if (!entry) return;
      if (e.target.closest(".archive")) return this.archive(entry.n);
      const event = new CustomEvent("herald-select", { detail: { notification: entry.n }, bubbles: true, composed: true, cancelable: true });
      const follow = this.dispatchEvent(event);
      const read = entry.n.read ? Promise.resolve() : this.markRead(entry.n);
      const link = e.target.closest("a");
      if (!link) return;
      if (!follow) return e.preventDefault(); // the app routes it itself
      // A plain click leaves the page: wait (briefly) for the read to be
      // stored first. A click for a new tab leaves it open anyway.
      if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      Promise.race([read, new Promise((r) => setTimeout(r, 1000))]).then(() => location.assign(link.href));
    }

    markRead(n) {
      this.set([n.id], { read: true });
      return this.conn.read([n.id]).then((c) => this.setCounts(c), () => this.set([n.id], { read: false }));
    }

    async archive(n) {
      this.drop([n.id]);
      try {
        this.setCounts(await this.conn.archive([n.id]));
      } catch {
        this.toast(this.t.failed);
        this.reload();
      }
    }

    toast(text) {
      this.el.toast.textContent = text;
      this.el.toast.hidden = false;
      clearTimeout(this.toastTimer);
      this.toastTimer = setTimeout(() => (this.el.toast.hidden = true), 5000);
    }

    // ---- keyboard: a roving focus over the items (arrows, Home, End),
    // Delete archives, Escape closes.

    onKey(e) {
      if (e.key === "Escape") return this.close(true);
      const main = e.target.closest?.(".main, .archive")?.closest("li")?.querySelector(".main");
      if (!main) return;
      const all = [...this.el.list.querySelectorAll("li:not(.leaving) .main")];
      const i = all.indexOf(main);
      const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: all.length - 1 }[e.key];
      if (to !== undefined) {
        e.preventDefault();
        if (all[to]) this.rove(all[to], true);
      } else if (e.key === "Delete") {
        e.preventDefault();
        this.archive(this.byId.get(main.closest("li").dataset.id).n);
      }
    }

    rove(main, focus) {
      if (!main) return;
      for (const m of this.el.list.querySelectorAll(".main, .archive")) m.tabIndex = -1;
      main.tabIndex = 0;
      main.closest("li").querySelector(".archive").tabIndex = 0;
      if (focus) main.focus();
    }

    focusItem(i) {
      const main = this.el.list.querySelectorAll(".main")[i];
      this.rove(main, true);
      return !!main;
    }

    // ---- live updates

    onNotification(n) {
      if (!n?.id || this.byId.has(n.id)) return; // ephemeral, or known
      const item = { read: false, seen: false, archived: false, ...n };
      this.counts.unread_count++;
      this.counts.unseen_count++;
      if (this.loaded) this.insert(item);
      else if (this.loading) this.arrived.push(item);
      this.badge();
      this.el.live.textContent = this.t.fresh(n.title);
      this.el.bell.classList.remove("ring");
      void this.el.bell.offsetWidth; // restart the animation
      this.el.bell.classList.add("ring");
      if (this.open) this.markSeen([item]);
    }

    insert(n) {
      if (this.byId.has(n.id)) return;
      this.items.unshift(n);
      this.byId.set(n.id, { n, li: this.render(n) });
      this.el.list.prepend(this.byId.get(n.id).li);
      this.after();
    }

    onState(s) {
      const ids = s.all ? "all" : s.ids ?? [];
      switch (s.op) {
        case "read": this.set(ids, { read: true }); break;
        case "unread": this.set(ids, { read: false }); break;
        case "seen": this.set(ids, { seen: true }); break;
        case "archive": case "delete": this.drop(ids); break;
        case "unarchive": if (this.loaded) this.reload(); break;
      }
      this.setCounts(s);
    }

    onStatus(s) {
      clearTimeout(this.noteTimer);
      const text = { reconnecting: this.t.reconnecting, unauthorized: this.t.unauthorized }[s?.status];
      // A blip is not worth a banner: show it when it lasts.
      if (!text) this.el.note.hidden = true;
      else this.noteTimer = setTimeout(() => {
        this.el.note.textContent = text;
        this.el.note.classList.toggle("bad", s.status === "unauthorized");
        this.el.note.hidden = false;
      }, 2000);
      // Back after an outage: replay brought the notifications, but state
      // changes made meanwhile (reads in another browser) are not replayed.
      if (s?.status === "live" && this.down && this.loaded) this.reload();
      this.down = s?.status === "reconnecting" || s?.status === "unauthorized";
    }
  }

  customElements.define("herald-inbox", HeraldInbox);
}

// safeURL resolves a notification's url against the page: http(s) only.
function safeURL(url) {
  if (!url) return null;
  try {
    const u = new URL(url, location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}
