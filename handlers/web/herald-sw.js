// Herald's service worker code, served at /herald-sw.js. A service worker
// must come from the page's own origin, so a front end serves a /sw.js of
// its own holding one line:
//
//   importScripts("https://herald.example.com/herald-sw.js");
//
// and subscribes with herald.js's subscribePush({ serviceWorker: "/sw.js" }).
// Herald pushes a notification that nobody saw in an open tab; this code
// shows it and, on a click, focuses a tab already at its url or opens it.
// The push payload is {"id","type","title","body","url","created_at"}.

self.addEventListener("push", (event) => {
  let n = {};
  try {
    n = event.data ? event.data.json() : {};
  } catch {
    n = { title: event.data.text() };
  }
  event.waitUntil(self.registration.showNotification(n.title || "Notification", {
    body: n.body || "",
    // One notification per id: a push that arrives twice replaces itself.
    tag: n.id ? "herald-" + n.id : undefined,
    timestamp: n.created_at ? Date.parse(n.created_at) : undefined,
    data: { id: n.id, type: n.type, url: n.url },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(event.notification.data?.url || "/", self.location.origin).href;
  event.waitUntil((async () => {
    const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const open = tabs.find((tab) => tab.url === target) ?? (event.notification.data?.url ? null : tabs[0]);
    if (open) return open.focus();
    return self.clients.openWindow(target);
  })());
});
