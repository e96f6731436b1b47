// Herald service worker: shows pushed messages and opens their links.
// Serve it from the root of your site (as Herald does at /sw.js) so that it
// controls every page; the embed script registers it.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let msg = {};
  try {
    msg = event.data ? event.data.json() : {};
  } catch (e) {
    msg = { title: event.data ? event.data.text() : "New message" };
  }
  const actions = (msg.actions || []).slice(0, 2).map((a) => ({ action: a.action, title: a.title }));
  const data = msg.data || {};
  event.waitUntil(Promise.all([
    self.registration.showNotification(msg.title || "New message", {
      body: msg.body || "",
      image: msg.image || undefined,
      tag: msg.tag || undefined,
      actions: actions,
      data: { url: msg.url || "", actions: msg.actions || [], data: data },
    }),
    receipt(data, "delivered"),
  ]));
});

// receipt confirms a delivery or an open with the message's signed token:
// counted per campaign, or shown to the agent on a conversation message.
function receipt(data, kind) {
  if (!data || !data.receipt) return Promise.resolve();
  return fetch(new URL("/public/v1/receipts", self.location.origin), {
    method: "POST", headers: { "Content-Type": "application/json" }, keepalive: true,
    body: JSON.stringify({ token: data.receipt, event: kind }),
  }).catch(() => {});
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const d = event.notification.data || {};
  let url = d.url;
  const action = (d.actions || []).find((a) => a.action === event.action);
  if (action && action.url) url = action.url;
  const work = [receipt(d.data, "read")];
  // An answer button of a conversation message comes back as the
  // subscriber's message.
  if (action && !action.url && d.data && d.data.herald_type === "message") {
    work.push(fetch(new URL("/public/v1/message-actions", self.location.origin), {
      method: "POST", headers: { "Content-Type": "application/json" }, keepalive: true,
      body: JSON.stringify({ token: d.data.receipt, button: event.action }),
    }).catch(() => {}));
    event.waitUntil(Promise.all(work));
    return;
  }
  // Campaign action taps are counted per campaign (no personal data).
  // A reply button sends the per-person reply_token so the reply lands in a conversation.
  const token = d.data && (action && !action.url && d.data.reply_token ? d.data.reply_token : d.data.campaign);
  if (action && token) {
    work.push(fetch(new URL("/public/v1/campaign-actions", self.location.origin), {
      method: "POST", headers: { "Content-Type": "application/json" }, keepalive: true,
      body: JSON.stringify({ token: token, action: event.action }),
    }).catch(() => {}));
  }
  if (url && !(action && action.url && action.url.indexOf("/u/") >= 0)) work.push(self.clients.openWindow(url));
  else if (url) work.push(fetch(url, { method: "POST", body: "List-Unsubscribe=One-Click", headers: { "Content-Type": "application/x-www-form-urlencoded" } }).catch(() => {}));
  event.waitUntil(Promise.all(work));
});
