// Herald chat widget: a button in the corner that opens the subscriber's
// conversation with the company: the broadcasts they received, the
// messages both ways, live (typing, read marks), with attachments.
//   <script src="https://herald.example.com/widget.js" data-app="default" async></script>
// It speaks for the subscriber who opted in on this site with embed.js
// (the token embed.js keeps), or for a signed-in user of yours with
//   data-external-id="u-42" data-identity-hmac="(HMAC-SHA256 of the id with the app's identity secret)".
// Everything it draws lives in a shadow root: the host page's styles do not
// reach in, and its own do not leak out.
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || window.HeraldChat) return;
  const cfg = script.dataset;
  const api = cfg.api || new URL(script.src).origin;
  const lang = (cfg.lang || document.documentElement.lang || navigator.language || "").toLowerCase().startsWith("de") ? "de" : "en";
  const T = {
    en: { open: "Messages", close: "Close", title: "Messages", placeholder: "Write a message…", send: "Send",
      attach: "Attach a file", typing: "is typing…", seen: "Seen", sent: "Sent", failed: "Not sent. Tap to try again.",
      sending: "Sending…", empty: "Write to us: we answer here.", offline: "Reconnecting…", file: "File", you: "You",
      broadcast: "Announcement", tooBig: "That file is larger than 10 MB." },
    de: { open: "Nachrichten", close: "Schließen", title: "Nachrichten", placeholder: "Nachricht schreiben…", send: "Senden",
      attach: "Datei anhängen", typing: "schreibt…", seen: "Gelesen", sent: "Gesendet", failed: "Nicht gesendet. Zum Wiederholen tippen.",
      sending: "Wird gesendet…", empty: "Schreiben Sie uns: Wir antworten hier.", offline: "Verbindung wird wiederhergestellt…",
      file: "Datei", you: "Sie", broadcast: "Mitteilung", tooBig: "Die Datei ist größer als 10 MB." },
  }[lang];

  const css = `:host{all:initial !important}
*{box-sizing:border-box;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;margin:0}
.launch{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:var(--accent);
color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000;font-size:24px}
.launch:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #1a73e8;outline-offset:2px}
svg{width:24px;height:24px;display:block;margin:auto}
.launch svg path{fill:#fff}
form button svg{width:20px;height:20px}
form button svg path{fill:none;stroke:#333;stroke-width:2;stroke-linecap:round}
.badge{position:absolute;top:-2px;right:-2px;background:#d93025;color:#fff;border-radius:10px;padding:0 6px;font-size:12px}
.panel{position:fixed;right:20px;bottom:88px;width:360px;max-width:calc(100vw - 24px);height:520px;max-height:calc(100vh - 110px);
background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);display:flex;flex-direction:column;overflow:hidden;z-index:2147483000}
.panel[hidden]{display:none}
header{background:var(--accent);color:#fff;padding:12px 14px;display:flex;justify-content:space-between;align-items:center}
header *{color:#fff}
header h2{font-size:16px;font-weight:600}
header button{background:none;border:0;font-size:20px;cursor:pointer;padding:0 4px}
.feed{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f7f9}
.empty{color:#555;text-align:center;margin:auto}
.m{max-width:80%;padding:8px 10px;border-radius:10px;background:#fff;border:1px solid #e2e4e8;white-space:pre-wrap;overflow-wrap:anywhere}
.m.subscriber{align-self:flex-end;background:var(--accent);border-color:var(--accent)}
.m.subscriber,.m.subscriber *{color:#fff}
.m.pending{opacity:.7}.m.failed{border:2px solid #d93025;cursor:pointer}
.who,.meta{display:block;font-size:12px;color:#555}
.m.subscriber .meta{color:#fff;opacity:.85}
.b{align-self:stretch;background:#fff;border-left:4px solid var(--accent);padding:8px 10px;border-radius:6px}
.b strong{display:block;font-weight:600}
.b a{color:#1a56b0}
.m img{display:block;max-width:100%;max-height:200px;border-radius:6px;margin-top:4px}
.m a.file{display:inline-block;margin-top:4px;text-decoration:underline}
.btns{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}
.btn{border:1px solid var(--accent);color:var(--accent);background:#fff;border-radius:14px;padding:2px 10px;cursor:pointer;text-decoration:none;font-size:13px}
.typing,.status{font-size:12px;color:#555;padding:0 12px;min-height:16px}
form{display:flex;gap:6px;padding:8px;border-top:1px solid #e2e4e8;align-items:flex-end}
textarea{flex:1;resize:none;border:1px solid #c4c7cc;border-radius:8px;padding:8px;height:40px;max-height:120px}
form button{border:0;border-radius:8px;padding:0 12px;height:40px;cursor:pointer;background:#eceef1}
form button.send{background:var(--accent);color:#fff}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}`;

  const host = document.createElement("div");
  host.id = "herald-chat";
  const root = host.attachShadow({ mode: "open" });
  // A constructed sheet, not a <style>: a page whose CSP forbids inline
  // styles (Herald's own pages do) still styles the widget.
  if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && "replaceSync" in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } else {
    const style = document.createElement("style");
    style.textContent = css;
    root.append(style);
  }
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    e.append(...kids.filter((k) => k !== null && k !== undefined));
    return e;
  };

  // Icons as SVG paths: an emoji needs a font the system may not have.
  const icon = (d) => {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", d);
    svg.append(path);
    return svg;
  };
  const chatIcon = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
  const clipIcon = "M16.5 6.5l-7.8 7.8a1.5 1.5 0 0 0 2.1 2.1l7.8-7.8a3 3 0 0 0-4.2-4.2l-7.8 7.8a4.5 4.5 0 0 0 6.4 6.4l6.4-6.4";
  let token = "", events = null, open = false, seenUpTo = 0, lastTyping = 0, agentTypingTimer = 0, stopped = false;
  const attachments = new Map(); // id → its element, made once: links are signed, short-lived and never cached
  const messages = new Map(); // id or client key → message
  let broadcasts = [];
  const badge = el("span", { class: "badge", hidden: true });
  const launch = el("button", { class: "launch", type: "button", "aria-label": T.open, "aria-expanded": "false", onclick: () => toggle() }, icon(chatIcon), badge);
  const feed = el("div", { class: "feed", role: "log", "aria-live": "polite" });
  const typing = el("div", { class: "typing", "aria-live": "polite" });
  const status = el("div", { class: "status", role: "status" });
  const input = el("textarea", { id: "herald-message", "aria-label": T.placeholder, placeholder: T.placeholder, maxlength: "4000", rows: "1" });
  const file = el("input", { type: "file", class: "sr", id: "herald-file", accept: "image/jpeg,image/png,image/gif,image/webp,application/pdf", tabindex: "-1" });
  const form = el("form", {},
    el("button", { type: "button", "aria-label": T.attach, title: T.attach, onclick: () => file.click() }, icon(clipIcon)), file,
    input, el("button", { type: "submit", class: "send" }, T.send));
  const title = el("h2", {}, T.title);
  const panel = el("section", { class: "panel", hidden: true, role: "dialog", "aria-label": T.title },
    el("header", {}, title, el("button", { type: "button", "aria-label": T.close, onclick: () => toggle(false) }, "×")),
    feed, typing, status, form);
  root.append(launch, panel);
  host.style.setProperty("--accent", "#1a56b0");

  async function call(method, path, body, raw, again) {
    const headers = { Authorization: "Bearer " + token };
    if (body !== undefined && !raw) headers["Content-Type"] = "application/json";
    const res = await fetch(api + "/public/v1/conversation/" + path, {
      method, headers, body: raw ? body : body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401 && !again) {
      await session(); // the 12-hour token ran out: once
      return call(method, path, body, raw, true);
    }
    const out = res.status === 204 ? null : await res.json();
    if (!res.ok) throw new Error((out && (out.reason ? out.field + " " + out.reason : out.detail || out.title)) || res.status);
    return out;
  }

  async function session() {
    const proof = cfg.externalId
      ? { app: cfg.app, external_id: cfg.externalId, identity_hmac: cfg.identityHmac }
      : { app: cfg.app, subscriber_token: localStorage.getItem("herald_subscriber_token") };
    const res = await fetch(api + "/public/v1/conversation/session", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(proof),
    });
    if (!res.ok) {
      // A stored token that no longer holds (expired, or the person was
      // erased) is dropped: asking with it again would only count as a
      // failed proof against this browser's address.
      if (!cfg.externalId && res.status === 401) {
        localStorage.removeItem("herald_subscriber_token");
        stopped = true;
      }
      throw new Error("session " + res.status);
    }
    token = (await res.json()).token;
    stopped = false;
  }

  // Only web links become links: a campaign may carry an app's deep link,
  // which a browser cannot open, and nothing else belongs in an href.
  const web = (u) => typeof u === "string" && /^https?:\/\//i.test(u);

  function time(s) {
    return new Date(s).toLocaleString(lang, { dateStyle: "short", timeStyle: "short" });
  }

  function attachment(m) {
    const a = m.attachment;
    if (attachments.has(a.id)) return attachments.get(a.id);
    const box = el("span");
    attachments.set(a.id, box);
    if (!a.content_type.startsWith("image/")) {
      // A download asks for its short-lived link when it is clicked.
      box.append(el("a", { class: "file", href: "#", onclick: (ev) => {
        ev.preventDefault();
        call("GET", "attachments/" + a.id).then((r) => {
          if (!web(r.url)) return;
          const link = el("a", { href: r.url, download: "" });
          link.click();
        }, (e) => (status.textContent = e.message));
      } }, T.file + " (" + Math.ceil(a.size / 1024) + " KB)"));
      return box;
    }
    call("GET", "attachments/" + a.id).then((r) => {
      if (web(r.url)) box.append(el("img", { src: r.url, alt: T.file }));
    }, () => attachments.delete(a.id));
    return box;
  }

  // An agent's buttons: a link opens; an answer is sent as the
  // subscriber's message.
  function buttons(m) {
    if (!m.buttons || m.buttons.length === 0 || m.author === "subscriber") return null;
    return el("div", { class: "btns" }, ...m.buttons.map((b) => b.url
      ? (web(b.url) ? el("a", { class: "btn", href: b.url, target: "_blank", rel: "noopener" }, b.label) : null)
      : el("button", { type: "button", class: "btn", onclick: () => {
        const key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
        const answer = { author: "subscriber", body: b.label, client_key: key, created_at: new Date().toISOString() };
        messages.set(key, answer);
        send(answer);
      } }, b.label)));
  }

  function render() {
    const items = [...broadcasts.map((b) => ({ b, at: b.received_at })), ...[...messages.values()].map((m) => ({ m, at: m.created_at }))]
      .sort((x, y) => new Date(x.at) - new Date(y.at));
    const lastMine = [...messages.values()].filter((m) => m.author === "subscriber" && m.id).pop();
    feed.replaceChildren(...(items.length ? items.map(({ b, m }) => {
      if (b) {
        return el("div", { class: "b", "data-campaign": b.campaign_id }, el("span", { class: "who" }, T.broadcast + " · " + time(b.received_at)),
          el("strong", {}, b.title), b.body, web(b.url) ? el("div", {}, el("a", { href: b.url, target: "_blank", rel: "noopener" }, b.url)) : null);
      }
      const mine = m.author === "subscriber";
      let meta = time(m.created_at);
      if (m.state === "pending") meta = T.sending;
      else if (m.state === "failed") meta = T.failed;
      else if (mine && m === lastMine) meta += " · " + (m.id <= seenUpTo ? T.seen : T.sent);
      return el("div", { class: "m " + (mine ? "subscriber" : "agent") + (m.state ? " " + m.state : ""), "data-id": m.id || "",
        onclick: m.state === "failed" ? () => send(m) : null },
        mine ? null : el("span", { class: "who" }, m.author_name || ""), m.body,
        m.attachment ? attachment(m) : null, buttons(m), el("span", { class: "meta" }, meta));
    }) : [el("p", { class: "empty" }, T.empty)]));
    feed.scrollTop = feed.scrollHeight;
    markRead();
  }

  // seenAll marks what the subscriber sent so far as read by staff (by
  // message id: the browser's clock has no say).
  function seenAll() {
    for (const m of messages.values()) if (m.author === "subscriber" && m.id > seenUpTo) seenUpTo = m.id;
  }

  function unread() {
    return [...messages.values()].filter((m) => m.author !== "subscriber" && m.id && !m.read_at);
  }

  function markRead() {
    const waiting = unread();
    badge.hidden = open || waiting.length === 0;
    badge.textContent = waiting.length;
    if (!open || document.hidden || waiting.length === 0) return;
    const upTo = Math.max(...waiting.map((m) => m.id));
    waiting.forEach((m) => (m.read_at = new Date().toISOString()));
    call("POST", "read", { up_to: upTo }).catch(() => waiting.forEach((m) => (m.read_at = null)));
  }

  function add(m) {
    // The stream may repeat what the history or the send's answer had.
    for (const [k, v] of messages) {
      if (v.id === m.id || (v.client_key && v.client_key === m.client_key)) messages.delete(k);
    }
    messages.set(m.id, m);
  }

  async function send(m) {
    m.state = "pending";
    render();
    try {
      const out = await call("POST", "messages", { body: m.body, client_key: m.client_key, attachment_id: m.attachment_id });
      messages.delete(m.client_key);
      add(out);
    } catch (e) {
      m.state = "failed"; // kept with its key: a retry never makes two
      status.textContent = e.message;
    }
    render();
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = input.value.trim();
    if (!body) return;
    input.value = "";
    const key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
    const m = { author: "subscriber", body, client_key: key, created_at: new Date().toISOString() };
    messages.set(key, m);
    send(m);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    // Every request spends the subscriber's own budget: typing is told at
    // most every ten seconds.
    if (Date.now() - lastTyping > 10000) {
      lastTyping = Date.now();
      call("POST", "typing").catch(() => {});
    }
  });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    file.value = "";
    if (!f) return;
    if (f.size > 10 << 20) {
      status.textContent = T.tooBig;
      return;
    }
    try {
      const a = await call("POST", "attachments", f, true);
      const key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
      const m = { author: "subscriber", body: input.value.trim() || f.name, client_key: key, attachment_id: a.id,
        created_at: new Date().toISOString() };
      input.value = "";
      messages.set(key, m);
      send(m);
    } catch (e) {
      status.textContent = e.message;
    }
  });
  document.addEventListener("visibilitychange", markRead);

  function listen() {
    if (events) events.close();
    events = new EventSource(api + "/public/v1/conversation/events?token=" + encodeURIComponent(token));
    events.addEventListener("open", () => (status.textContent = ""));
    events.addEventListener("message", (ev) => {
      const m = JSON.parse(ev.data);
      add(m);
      if (m.author !== "subscriber") typing.textContent = "";
      render();
    });
    events.addEventListener("typing", (ev) => {
      const p = JSON.parse(ev.data);
      typing.textContent = (p.name || "") + " " + T.typing;
      clearTimeout(agentTypingTimer);
      agentTypingTimer = setTimeout(() => (typing.textContent = ""), 6000);
    });
    events.addEventListener("read", () => {
      seenAll();
      render();
    });
    events.addEventListener("error", () => {
      status.textContent = T.offline;
      if (events.readyState === EventSource.CLOSED) {
        // Closed for good (an expired token is refused): a new token, then again.
        if (!stopped) setTimeout(() => session().then(listen, () => {}), 5000);
      }
    });
  }

  function toggle(want) {
    open = want === undefined ? !open : want;
    panel.hidden = !open;
    launch.setAttribute("aria-expanded", String(open));
    if (open) {
      input.focus();
      render();
    }
  }

  async function start() {
    if (!cfg.externalId && !localStorage.getItem("herald_subscriber_token")) return false;
    await session();
    const [history, received, app] = await Promise.all([
      call("GET", "messages?limit=100"), call("GET", "broadcasts?limit=20"),
      fetch(api + "/public/v1/apps/" + encodeURIComponent(cfg.app)).then((r) => (r.ok ? r.json() : {}), () => ({})),
    ]);
    history.items.forEach(add);
    // Everything they sent was read already: their last message is seen.
    if (history.seen) seenAll();
    broadcasts = received.items;
    if (app.accent_color) host.style.setProperty("--accent", app.accent_color);
    if (app.company_name) title.textContent = app.company_name;
    document.body.append(host);
    render();
    listen();
    return true;
  }

  let started = false;
  const begin = () => {
    if (started) return;
    start().then((ok) => (started = ok), (e) => console.warn("herald chat:", e.message));
  };
  window.HeraldChat = { open: () => toggle(true), close: () => toggle(false) };
  // Opting in on this page (embed.js) is what gives a subscriber their token.
  window.addEventListener("herald:subscribed", begin);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", begin);
  else begin();
})();
