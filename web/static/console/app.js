// Herald's console: a small client app on /api/v1, the API integrators
// use. Preact, htm and signals are vendored ES modules: no build step.
import { h, render } from "./vendor/preact.js";
import { useEffect } from "./vendor/hooks.js";
import { signal, useSignal } from "./vendor/signals.js";
import htm from "./vendor/htm.js";
import { t, lang } from "./i18n.js";
import { Users, Teams, Apps, AppPage } from "./admin.js";
import { Import } from "./import.js";

export const html = htm.bind(h);

// The signed-in person ({user, csrf_token, ...}) and the page (the hash).
export const session = signal(null);
const route = signal(location.hash || "#/campaigns");
window.addEventListener("hashchange", () => (route.value = location.hash || "#/campaigns"));

// api calls /api/v1 as the session, with its CSRF token on every write; a
// problem document becomes an Error whose message is its detail.
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && session.value) headers["X-CSRF-Token"] = session.value.csrf_token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch("/api/v1" + path, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    location.href = "/sign-in?next=" + encodeURIComponent(location.pathname + location.hash);
    throw new Error(t("signedOut"));
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const field = data && data.field ? data.field + ": " : "";
    throw new Error(field + ((data && (data.reason || data.detail || data.title)) || res.statusText));
  }
  return data;
}

// upload sends a file's bytes as the body (a logo, a CSV file), with the
// session's CSRF token, and answers as api does.
export async function upload(method, path, file, contentType) {
  const res = await fetch("/api/v1" + path, {
    method, credentials: "same-origin", body: file,
    headers: { Accept: "application/json", "X-CSRF-Token": session.value.csrf_token,
      "Content-Type": contentType || file.type || "application/octet-stream" },
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const field = data && data.field ? data.field + ": " : "";
    throw new Error(field + ((data && (data.reason || data.detail || data.title)) || res.statusText));
  }
  return data;
}

// attempt runs a change and shows its failure in error; it reports
// whether the change worked.
export async function attempt(error, fn) {
  error.value = "";
  try {
    await fn();
    return true;
  } catch (e) {
    error.value = e.message;
    return false;
  }
}

const number = new Intl.NumberFormat(lang);
export const fmt = (n) => number.format(n || 0);
export const when = (s) => (s ? new Date(s).toLocaleString(lang) : "");

function Shell({ children }) {
  const s = session.value;
  return html`<a class="skip" href="#content">${t("skip")}</a>
    <header class="bar">
      <a class="brand" href="#/campaigns">Herald</a>
      <nav aria-label=${t("navigation")}>
        ${s && s.role !== "agent" &&
        html`<a href="#/campaigns" aria-current=${route.value.startsWith("#/campaigns") ? "page" : null}>${t("campaigns")}</a>
          <a href="#/lists" aria-current=${route.value.startsWith("#/lists") ? "page" : null}>${t("lists")}</a>`}
        ${s && s.role !== "marketer" &&
        html`<a href="#/inbox" aria-current=${route.value.startsWith("#/inbox") ? "page" : null}>${t("inbox")}
          ${counts.value && counts.value.unassigned > 0 ? html` <span class="badge" id="unassigned-badge">${counts.value.unassigned}</span>` : ""}</a>`}
        <a href="#/subscribers" aria-current=${route.value.startsWith("#/subscribers") ? "page" : null}>${t("subscribers")}</a>
        ${s && s.role === "admin" &&
        html`<a href="#/admin/users" aria-current=${route.value.startsWith("#/admin") ? "page" : null}>${t("admin")}</a>`}
        <a href="/account">${s && s.user ? s.user.name : ""}</a>
      </nav>
    </header>
    <main id="content" class="console">${children}</main>`;
}

const campaigns = signal(null);
const listError = signal("");

function CampaignList() {
  useEffect(() => {
    api("GET", "/campaigns?limit=100").then((r) => (campaigns.value = r.items), (e) => (listError.value = e.message));
  }, []);
  if (listError.value) return html`<p class="error" role="alert">${listError.value}</p>`;
  if (!campaigns.value) return html`<p class="loading">${t("loading")}</p>`;
  return html`<h1>${t("campaigns")}</h1>
    <p><a class="button" id="new-campaign" href="#/campaigns/new">${t("newCampaign")}</a></p>
    ${campaigns.value.length === 0
      ? html`<p>${t("noCampaigns")}</p>`
      : html`<table class="list">
          <thead><tr><th>${t("name")}</th><th>${t("status")}</th><th>${t("created")}</th></tr></thead>
          <tbody>${campaigns.value.map(
            (c) => html`<tr key=${c.id}>
              <td><a href=${"#/campaigns/" + c.id}>${c.name}</a></td>
              <td><span class=${"status " + c.status}>${t("status_" + c.status)}</span></td>
              <td>${when(c.created_at)}</td></tr>`,
          )}</tbody></table>`}`;
}

// CampaignPage shows a campaign's progress, read from its counters (an
// O(1) stats call) every second while it may still change, and its
// controls.
function CampaignPage({ id }) {
  const campaign = useSignal(null);
  const stats = useSignal(null);
  const error = useSignal("");
  const busy = useSignal(false);
  useEffect(() => {
    let stop = false;
    let timer;
    async function refresh() {
      try {
        const [c, st] = await Promise.all([api("GET", "/campaigns/" + id), api("GET", "/campaigns/" + id + "/stats")]);
        campaign.value = c;
        stats.value = st;
        error.value = "";
        if (!stop && ["draft", "scheduled", "running", "paused"].includes(st.status)) timer = setTimeout(refresh, 1000);
      } catch (e) {
        error.value = e.message;
        if (!stop) timer = setTimeout(refresh, 3000);
      }
    }
    refresh();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [id]);
  async function act(action) {
    busy.value = true;
    try {
      await api("POST", "/campaigns/" + id + "/" + action);
      stats.value = await api("GET", "/campaigns/" + id + "/stats");
      campaign.value = await api("GET", "/campaigns/" + id);
    } catch (e) {
      error.value = e.message;
    } finally {
      busy.value = false;
    }
  }
  return html`<${CampaignView} campaign=${campaign} stats=${stats} error=${error} busy=${busy} act=${act} />`;
}

// Audience is who a draft would reach now, by platform.
function Audience({ id }) {
  const preview = useSignal(null);
  useEffect(() => {
    api("GET", "/campaigns/" + id + "/preview").then((r) => (preview.value = r), () => {});
  }, [id]);
  const p = preview.value;
  if (!p) return null;
  return html`<p id="audience">${t("audience")}: <strong id="audience-devices">${fmt(p.devices)}</strong> ${t("devices")}
    (${Object.entries(p.by_platform || {}).map(([k, v]) => k + " " + fmt(v)).join(", ")})</p>`;
}

function CampaignView({ campaign, stats, error, busy, act }) {
  const c = campaign.value;
  const st = stats.value;
  if (!c || !st) {
    return error.value ? html`<p class="error" role="alert">${error.value}</p>` : html`<p class="loading">${t("loading")}</p>`;
  }
  const total = st.audience_size || 0;
  const figures = [
    ["delivered", st.delivered], ["failed", st.failed], ["unknown", st.unknown], ["in_flight", st.in_flight],
    ["clicks", st.clicks], ["opens", st.opens], ["replies", st.replies],
  ];
  const reasons = Object.entries(st.failed_by_reason || {});
  const can = {
    schedule: st.status === "draft",
    pause: st.status === "running" || st.status === "scheduled",
    resume: st.status === "paused",
    cancel: ["draft", "scheduled", "running", "paused"].includes(st.status),
    "retry-failed": st.status === "finished" && st.failed > 0,
  };
  const done = st.sent;
  return html`<p><a href="#/campaigns">← ${t("campaigns")}</a></p>
    <h1 id="campaign-name">${c.name}</h1>
    <p>${t("status")}: <strong id="campaign-status" class=${"status " + st.status}>${t("status_" + st.status)}</strong></p>
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    ${st.status === "draft" && html`<${Audience} id=${c.id} />`}
    <div class="progress" role="progressbar" aria-label=${t("progress")} aria-valuemin="0" aria-valuemax=${total}
      aria-valuenow=${done}>
      <div class="done" style=${"width:" + (total ? Math.min(100, (100 * done) / total) : 0) + "%"}></div>
    </div>
    <p class="muted"><span id="sent">${fmt(done)}</span> / ${fmt(total)} ${t("devices")}</p>
    <dl class="figures">${figures.map(
      ([k, v]) => html`<div key=${k}><dt>${t(k)}</dt><dd id=${"figure-" + k}>${fmt(v)}</dd></div>`,
    )}</dl>
    ${reasons.length > 0 &&
    html`<h2>${t("failedByReason")}</h2><ul class="reasons">${reasons.map(
      ([r, n]) => html`<li key=${r}><code>${r}</code>: ${fmt(n)}</li>`,
    )}</ul>`}
    <div class="actions">${Object.entries(can)
      .filter(([, ok]) => ok)
      .map(
        ([a]) => html`<button key=${a} id=${"action-" + a} type="button" class=${a === "cancel" ? "secondary" : ""}
          disabled=${busy.value} onClick=${() => act(a)}>${t("action_" + a)}</button>`,
      )}</div>
    ${st.status !== "draft" && html`<${Chart} id=${c.id} live=${["scheduled", "running", "paused"].includes(st.status)} />`}
    ${(st.status === "draft" || st.status === "scheduled") && html`<${TestSend} id=${c.id} />`}`;
}

// Chart is the campaign's deliveries over time, from its timeline counters
// (GET /campaigns/{id}/timeline), read every five seconds while it sends.
function Chart({ id, live }) {
  const tl = useSignal(null);
  useEffect(() => {
    let timer;
    const load = () =>
      api("GET", "/campaigns/" + id + "/timeline").then((r) => {
        tl.value = r;
        if (live) timer = setTimeout(load, 5000);
      }, () => {});
    load();
    return () => clearTimeout(timer);
  }, [id, live]);
  const x = tl.value;
  if (!x || x.points.length === 0) return null;
  const width = 640, height = 160, pad = 24;
  const max = Math.max(1, ...x.points.map((p) => p.delivered + p.failed + p.unknown));
  const t0 = new Date(x.points[0].at).getTime();
  // At least twelve buckets wide: a short send is a bar, not the whole chart.
  const t1 = Math.max(new Date(x.points[x.points.length - 1].at).getTime() + x.bucket_seconds * 1000, t0 + 12 * x.bucket_seconds * 1000);
  const bw = Math.max(2, ((width - pad) * x.bucket_seconds * 1000) / Math.max(1, t1 - t0) - 1);
  const px = (at) => pad + ((width - pad) * (new Date(at).getTime() - t0)) / Math.max(1, t1 - t0);
  const py = (n) => ((height - pad) * n) / max;
  return html`<h2>${t("overTime")}</h2>
    <svg id="timeline" class="chart" viewBox=${"0 0 " + width + " " + height} role="img"
      data-delivered=${x.points.reduce((n, p) => n + p.delivered, 0)}
      aria-label=${t("overTime") + ": " + x.points.map((p) => new Date(p.at).toLocaleTimeString(lang) + " " + p.delivered).join(", ")}>
      <line x1=${pad} y1=${height - pad} x2=${width} y2=${height - pad} stroke="#8a8f98" />
      <text x="0" y="12" font-size="10" fill="#555">${fmt(max)}</text>
      <text x=${pad} y=${height - 6} font-size="10" fill="#555">${new Date(t0).toLocaleTimeString(lang)}</text>
      <text x=${width} y=${height - 6} font-size="10" fill="#555" text-anchor="end">${new Date(t1).toLocaleTimeString(lang)}</text>
      ${x.points.map((p) => {
        const xx = px(p.at);
        const d = py(p.delivered), f = py(p.failed), u = py(p.unknown);
        const base = height - pad;
        return html`<g key=${p.at}><title>${new Date(p.at).toLocaleTimeString(lang)}: ${t("delivered")} ${fmt(p.delivered)}, ${t("failed")} ${fmt(p.failed)}, ${t("unknown")} ${fmt(p.unknown)}</title>
          <rect x=${xx} y=${base - d} width=${bw} height=${d} fill="#1a7f37" />
          <rect x=${xx} y=${base - d - f} width=${bw} height=${f} fill="#b3261e" />
          <rect x=${xx} y=${base - d - f - u} width=${bw} height=${u} fill="#9a6700" /></g>`;
      })}
    </svg>
    <p class="small">${t("overTimeHelp").replace("{s}", x.bucket_seconds)}</p>`;
}

// TestSend sends a draft or scheduled campaign now to chosen subscribers
// (found by email, external id or id), marked [Test], and shows what each
// provider said.
function TestSend({ id }) {
  const chosen = useSignal([]);
  const query = useSignal("");
  const report = useSignal(null);
  const error = useSignal("");
  async function add(ev) {
    ev.preventDefault();
    const q = query.value.trim();
    if (!q) return;
    await attempt(error, async () => {
      let sub;
      if (/^\d+$/.test(q)) sub = await api("GET", "/subscribers/" + q);
      else {
        const r = await api("GET", "/subscribers?" + (q.includes("@") ? "email=" : "external_id=") + encodeURIComponent(q));
        sub = r.items[0];
      }
      if (!sub) throw new Error(t("noSubscribers"));
      if (!chosen.value.some((s) => s.id === sub.id)) chosen.value = [...chosen.value, sub];
      query.value = "";
    });
  }
  const send = () => attempt(error, async () => {
    report.value = await api("POST", "/campaigns/" + id + "/test-send", { subscriber_ids: chosen.value.map((s) => s.id) });
  });
  const r = report.value;
  return html`<section id="test-send"><h2>${t("testSend")}</h2>
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    <form onSubmit=${add} class="inline">
      <label for="test-to">${t("searchLabel")}</label>
      <input id="test-to" type="text" value=${query.value} onInput=${(e) => (query.value = e.target.value)} />
      <button type="submit" class="secondary" id="test-add">${t("add")}</button>
    </form>
    ${chosen.value.length > 0 && html`<ul id="test-chosen">${chosen.value.map((s) => html`<li key=${s.id}>${s.email || s.external_id || "#" + s.id}
      <button type="button" class="secondary small" onClick=${() => (chosen.value = chosen.value.filter((x) => x.id !== s.id))}>${t("remove")}</button></li>`)}</ul>
      <button type="button" id="test-send-button" onClick=${send}>${t("sendTest")}</button>`}
    ${r && html`<ul id="test-results">${r.results.map((x) => html`<li key=${x.device_id}>#${x.subscriber_id} · ${t("deviceID")} ${x.device_id}:
        <strong>${x.outcome.class}</strong>${x.outcome.reason ? " · " + x.outcome.reason : ""}</li>`)}
      ${r.skipped.map((x) => html`<li key=${"s" + x.subscriber_id}>#${x.subscriber_id}: ${x.reason}</li>`)}</ul>`}
  </section>`;
}

function Lists() {
  const lists = useSignal(null);
  const error = useSignal("");
  const form = useSignal({ name: "", slug: "", description: "", optin: "double", visibility: "public", consent_text: "" });
  const load = () => api("GET", "/lists?limit=1000").then((r) => (lists.value = r.items), (e) => (error.value = e.message));
  useEffect(() => {
    load();
  }, []);
  async function create(ev) {
    ev.preventDefault();
    if (await attempt(error, () => api("POST", "/lists", form.value))) {
      form.value = { name: "", slug: "", description: "", optin: "double", visibility: "public", consent_text: "" };
      load();
    }
  }
  async function listLogo(l, ev) {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (file && (await attempt(error, () => upload("PUT", "/lists/" + encodeURIComponent(l.slug) + "/logo", file)))) load();
  }
  const f = form.value;
  // The slug follows the name until someone types one.
  const slugOf = (name) => name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 63);
  return html`<h1>${t("lists")}</h1>
    <p class="actions"><a class="button secondary" href="#/lists/import" id="import-link">${t("importTitle")}</a></p>
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    ${!lists.value ? html`<p class="loading">${t("loading")}</p>` : html`<table class="list" id="lists">
      <thead><tr><th>${t("name")}</th><th>${t("slug")}</th><th>${t("optin")}</th><th>${t("visibility")}</th><th></th><th>${t("logo")}</th></tr></thead>
      <tbody>${lists.value.map(
        (l) => html`<tr key=${l.id}>
          <td><a href=${"#/subscribers?list=" + encodeURIComponent(l.slug)}>${l.name}</a></td>
          <td><code>${l.slug}</code></td><td>${t("optin_" + l.optin)}</td><td>${t("visibility_" + l.visibility)}</td>
          <td>${l.visibility === "public" && html`<a href=${"/l/" + encodeURIComponent(l.slug)} target="_blank" rel="noopener">${t("optinPage")}</a>`}</td>
          <td>${l.has_logo && html`<img class="list-logo" src=${"/brand/lists/" + l.slug + "/logo?v=" + Date.parse(l.updated_at)} alt=${t("logo")} height="24" />`}
            <label class="file secondary small">${t("logo")}<input type="file" class="sr" accept="image/png,image/jpeg,image/webp"
              aria-label=${t("logo") + ": " + l.name} onChange=${(e) => listLogo(l, e)} /></label></td></tr>`,
      )}</tbody></table>`}
    <form id="list-form" onSubmit=${create}>
      <h2>${t("newList")}</h2>
      <label for="l-name">${t("name")}</label>
      <input id="l-name" type="text" required maxlength="200" value=${f.name}
        onInput=${(e) => (form.value = { ...f, name: e.target.value, slug: f.slug === slugOf(f.name) ? slugOf(e.target.value) : f.slug })} />
      <label for="l-slug">${t("slug")}</label>
      <input id="l-slug" type="text" required pattern="[a-z0-9-]{1,63}" value=${f.slug} onInput=${(e) => (form.value = { ...f, slug: e.target.value })} />
      <label for="l-description">${t("description")}</label>
      <input id="l-description" type="text" value=${f.description} onInput=${(e) => (form.value = { ...f, description: e.target.value })} />
      <label for="l-consent">${t("consentText")}</label>
      <textarea id="l-consent" rows="3" value=${f.consent_text} onInput=${(e) => (form.value = { ...f, consent_text: e.target.value })}></textarea>
      <label for="l-optin">${t("optin")}</label>
      <select id="l-optin" value=${f.optin} onChange=${(e) => (form.value = { ...f, optin: e.target.value })}>
        <option value="double">${t("optin_double")}</option><option value="single">${t("optin_single")}</option></select>
      <label for="l-visibility">${t("visibility")}</label>
      <select id="l-visibility" value=${f.visibility} onChange=${(e) => (form.value = { ...f, visibility: e.target.value })}>
        <option value="public">${t("visibility_public")}</option><option value="private">${t("visibility_private")}</option></select>
      <button type="submit" id="l-add">${t("add")}</button>
    </form>`;
}

// Subscribers pages through subscribers by id (keyset pages of 50), found
// by email or external id, or a list's members.
function Subscribers({ query }) {
  const page = useSignal(null);
  const error = useSignal("");
  const after = useSignal([]); // the cursors of the pages before this one
  const q = useSignal(query.get("q") || "");
  function load(cursor) {
    const params = new URLSearchParams({ limit: "50" });
    const text = (query.get("q") || "").trim();
    if (text) params.set(text.includes("@") ? "email" : "external_id", text);
    if (query.get("list")) params.set("list", query.get("list"));
    if (cursor) params.set("after", cursor);
    api("GET", "/subscribers?" + params).then((r) => (page.value = r), (e) => (error.value = e.message));
  }
  useEffect(() => {
    after.value = [];
    load(null);
  }, [query.toString()]);
  function search(ev) {
    ev.preventDefault();
    const params = new URLSearchParams(query);
    params.set("q", q.value.trim());
    location.hash = "#/subscribers?" + params;
  }
  const p = page.value;
  return html`<h1>${t("subscribers")}${query.get("list") ? html` · <code>${query.get("list")}</code>` : ""}</h1>
    <form class="search" role="search" onSubmit=${search}>
      <label for="q">${t("searchLabel")}</label>
      <input id="q" type="search" value=${q.value} onInput=${(e) => (q.value = e.target.value)} autocomplete="off" />
      <button type="submit">${t("search")}</button>
    </form>
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    ${!p
      ? html`<p class="loading">${t("loading")}</p>`
      : p.items.length === 0
        ? html`<p id="no-subscribers">${t("noSubscribers")}</p>`
        : html`<table class="list" id="subscribers">
            <thead><tr><th>ID</th><th>${t("externalId")}</th><th>${t("email")}</th><th>${t("state")}</th></tr></thead>
            <tbody>${p.items.map(
              (x) => html`<tr key=${x.id}><td><a href=${"#/subscribers/" + x.id}>${x.id}</a></td>
                <td>${x.external_id || ""}</td><td>${x.email || ""}</td><td>${t("state_" + x.state)}</td></tr>`,
            )}</tbody></table>`}
    <div class="actions">
      ${after.value.length > 0 &&
      html`<button type="button" class="secondary" onClick=${() => {
        const prev = after.value.slice(0, -1);
        after.value = prev;
        load(prev[prev.length - 1] || null);
      }}>${t("previous")}</button>`}
      ${p && p.next_after &&
      html`<button type="button" id="next-page" onClick=${() => {
        after.value = [...after.value, String(p.next_after)];
        load(String(p.next_after));
      }}>${t("next")}</button>`}
    </div>`;
}

// ConsentHistory is what the subscriber agreed to and when, newest first.
function ConsentHistory({ id }) {
  const items = useSignal(null);
  useEffect(() => {
    api("GET", "/subscribers/" + id + "/consent?limit=50").then((r) => (items.value = r.items), () => (items.value = []));
  }, [id]);
  if (!items.value) return null;
  return html`<h2>${t("consentHistory")}</h2>
    ${items.value.length === 0 ? html`<p>–</p>` : html`<table class="list" id="consent"><thead><tr><th>${t("when")}</th>
      <th>${t("action")}</th><th>${t("lists")}</th><th>${t("source")}</th><th>${t("consentVersion")}</th></tr></thead>
      <tbody>${items.value.map((r) => html`<tr key=${r.id}><td>${when(r.created_at)}</td><td><code>${r.action}</code></td>
        <td>${r.list || ""}</td><td>${r.source}${r.detail ? " · " + r.detail : ""}${r.ip ? " · " + r.ip : ""}</td>
        <td>${r.consent_version ?? ""}</td></tr>`)}</tbody></table>`}`;
}

function SubscriberPage({ id }) {
  const sub = useSignal(null);
  const error = useSignal("");
  useEffect(() => {
    api("GET", "/subscribers/" + id).then((r) => (sub.value = r), (e) => (error.value = e.message));
  }, [id]);
  if (error.value) return html`<p class="error" role="alert">${error.value}</p>`;
  const x = sub.value;
  if (!x) return html`<p class="loading">${t("loading")}</p>`;
  return html`<p><a href="#/subscribers">← ${t("subscribers")}</a></p>
    <h1 id="subscriber-name">${x.email || x.external_id || "#" + x.id}</h1>
    <dl class="fields">
      <dt>ID</dt><dd>${x.id}</dd>
      <dt>${t("externalId")}</dt><dd>${x.external_id || "–"}</dd>
      <dt>${t("email")}</dt><dd>${x.email || "–"}</dd>
      <dt>${t("locale")}</dt><dd>${x.locale || "–"}</dd>
      <dt>${t("timezone")}</dt><dd>${x.timezone || "–"}</dd>
      <dt>${t("state")}</dt><dd>${t("state_" + x.state)}</dd>
    </dl>
    <h2>${t("memberships")}</h2>
    ${x.memberships.length === 0
      ? html`<p>${t("noMemberships")}</p>`
      : html`<ul id="memberships">${x.memberships.map(
          (m) => html`<li key=${m.list_id}><strong>${m.list_name}</strong> · ${t("membership_" + m.status)}</li>`,
        )}</ul>`}
    ${session.value.role !== "agent" && html`<${ConsentHistory} id=${id} />`}
    <h2>${t("devicesLabel")}</h2>
    ${x.devices.length === 0
      ? html`<p>${t("noDevices")}</p>`
      : html`<ul id="devices">${x.devices.map(
          (d) => html`<li key=${d.id}>${d.platform} <code>${d.address || ""}</code> · ${d.active ? t("active") : t("inactive")}
            ${session.value.role === "admin" && html` · ${t("deviceID")} ${d.id}${d.test_device ? " · " + t("testDevice") : ""}
              <button type="button" class="secondary small" id=${"test-device-" + d.id} onClick=${() =>
                api("PUT", "/subscribers/" + id + "/devices/" + d.id, { test_device: !d.test_device }).then(() =>
                  api("GET", "/subscribers/" + id).then((r) => (sub.value = r)), (e) => (error.value = e.message))}>
                ${d.test_device ? t("unmarkTest") : t("markTest")}</button>`}</li>`,
        )}</ul>`}
    ${session.value.role !== "marketer" && html`<${SubscriberConversations} id=${id} />`}
    ${session.value.role === "admin" && x.state !== "erased" && html`<${PersonalData} sub=${x} reload=${() =>
      api("GET", "/subscribers/" + id).then((r) => (sub.value = r), (e) => (error.value = e.message))} />`}`;
}

function SubscriberConversations({ id }) {
  const items = useSignal(null);
  useEffect(() => {
    api("GET", "/subscribers/" + id + "/conversations").then((r) => (items.value = r.items), () => (items.value = []));
  }, [id]);
  if (!items.value) return null;
  return html`<h2>${t("conversations")}</h2>
    ${items.value.length === 0 ? html`<p>${t("noConversations")}</p>` : html`<ul id="subscriber-conversations">${items.value.map(
      (c) => html`<li key=${c.id}><a href=${"#/inbox/" + c.id}>${t("cstatus_" + c.status)}</a>
        · ${when(c.last_message_at)}${c.assignee_name ? " · " + c.assignee_name : ""}</li>`)}</ul>`}`;
}

// PersonalData: an admin's export (everything held, as a JSON file) and
// erasure (after a confirmation: it cannot be undone).
function PersonalData({ sub, reload }) {
  const error = useSignal("");
  const busy = useSignal(false);
  const exportData = () => attempt(error, async () => {
    const data = await api("GET", "/subscribers/" + sub.id + "/export");
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
    a.download = "subscriber-" + sub.id + ".json";
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });
  async function erase() {
    if (!confirm(t("eraseConfirm"))) return;
    busy.value = true;
    await attempt(error, async () => {
      await api("POST", "/subscribers/" + sub.id + "/erase");
      await reload();
    });
    busy.value = false;
  }
  return html`<h2>${t("personalData")}</h2>
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    <p class="actions"><button type="button" class="secondary" id="export" onClick=${exportData}>${t("exportData")}</button>
      <button type="button" class="danger" id="erase" disabled=${busy.value} onClick=${erase}>${t("eraseData")}</button></p>
    <p class="small">${t("eraseHelp")}</p>`;
}

// Composer writes a campaign: its content in the default language and,
// optionally, German, with up to three buttons; its lists, narrowed by a
// segment, with a live count by platform; when to send (now, at a time, at
// a local time in each subscriber's zone, outside quiet hours) and how fast.
// The preview shows the notification as iOS, Android and a desktop browser
// would, as you type.
let countAsked = 0;

function Composer() {
  const lists = useSignal([]);
  const error = useSignal("");
  const busy = useSignal(false);
  const count = useSignal(null);
  const form = useSignal({ name: "", app: "default", title: "", body: "", url: "", variants: [{ locale: "de", title: "", body: "" }],
    lists: [], mode: "now", at: "", localDate: "", localTime: "09:00", zone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    quiet: false, quietStart: "22:00", quietEnd: "08:00", throttle: "", actions: [], conds: [] });
  useEffect(() => {
    api("GET", "/lists?limit=1000").then((r) => (lists.value = r.items), (e) => (error.value = e.message));
  }, []);
  const f = form.value;
  const set = (k) => (e) => (form.value = { ...form.value, [k]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  const toggle = (slug) => (e) => {
    const chosen = new Set(form.value.lists);
    e.target.checked ? chosen.add(slug) : chosen.delete(slug);
    form.value = { ...form.value, lists: [...chosen] };
  };
  const segment = () => {
    const rules = f.conds.filter((c) => c.name && (c.op === "exists" || c.value !== "")).map((c) => {
      const rule = { [c.kind]: c.name, op: c.op };
      if (c.op !== "exists") {
        const one = (v) => (c.number && v.trim() !== "" && !isNaN(Number(v)) ? Number(v) : v.trim());
        rule.value = c.op === "in" ? c.value.split(",").map(one) : one(c.value);
      }
      return c.not ? { not: rule } : rule;
    });
    return rules.length === 0 ? undefined : rules.length === 1 ? rules[0] : { and: rules };
  };
  const audience = () => {
    const a = { lists: f.lists };
    const seg = segment();
    if (seg) a.segment = seg;
    return a;
  };
  // The live count: a moment after the audience last changed.
  const audienceKey = JSON.stringify([f.app, audience()]);
  useEffect(() => {
    // An answer for an audience changed since is dropped: only the newest
    // question's answer shows.
    const asked = ++countAsked;
    if (f.lists.length === 0) {
      count.value = null;
      return undefined;
    }
    const timer = setTimeout(() => api("POST", "/audience-preview", { app: f.app, audience: audience() })
      .then((p) => asked === countAsked && (count.value = p), (e) => asked === countAsked && (count.value = { error: e.message })), 400);
    return () => clearTimeout(timer);
  }, [audienceKey]);
  const setVariant = (i, k, v) => (form.value = { ...f, variants: f.variants.map((x, j) => (j === i ? { ...x, [k]: v } : x)) });
  // The preview shows the default text, or a language's.
  const shownIn = useSignal("");
  const shown = f.variants.find((v) => v.locale && v.locale === shownIn.value);
  const setAction = (i, k, v) => (form.value = { ...f, actions: f.actions.map((a, j) => (j === i ? { ...a, [k]: v } : a)) });
  const setCond = (i, k, v) => (form.value = { ...f, conds: f.conds.map((c, j) => (j === i ? { ...c, [k]: v } : c)) });
  async function submit(ev) {
    ev.preventDefault();
    busy.value = true;
    error.value = "";
    const content = { title: f.title, body: f.body };
    if (f.url) content.url = f.url;
    // Content per language: each variant's own text, the default's where it has none.
    if (f.variants.some((v) => !v.locale.trim() && (v.title || v.body))) {
      error.value = t("languageCodeMissing");
      busy.value = false;
      return;
    }
    const variants = f.variants.filter((v) => v.locale.trim() && (v.title || v.body));
    if (variants.length) {
      content.variants = Object.fromEntries(variants.map((v) => [v.locale.trim(), { title: v.title || f.title, body: v.body || f.body }]));
    }
    if (f.actions.length) {
      content.actions = f.actions.map((a) => (a.type === "open_url" ? { label: a.label, type: a.type, url: a.url }
        : a.type === "reply" ? { label: a.label, type: a.type, reply_text: a.reply_text || a.label } : { label: a.label, type: a.type }));
    }
    const body = { name: f.name, app: f.app, content, audience: audience() };
    const schedule = { mode: "now" };
    if (f.mode === "at" && f.at) Object.assign(schedule, { mode: "at", at: new Date(f.at).toISOString() });
    if (f.mode === "local") Object.assign(schedule, { mode: "local", local_date: f.localDate, local_time: f.localTime });
    // Quiet hours hold in each subscriber's zone; the default is for people without one.
    if (f.quiet) Object.assign(schedule, { quiet_hours: { start: f.quietStart, end: f.quietEnd } });
    if (f.mode === "local" || f.quiet) schedule.default_timezone = f.zone;
    if (schedule.mode !== "now" || f.quiet) body.schedule = schedule;
    if (f.throttle) body.throttle_per_minute = Number(f.throttle);
    try {
      const c = await api("POST", "/campaigns", body);
      location.hash = "#/campaigns/" + c.id;
    } catch (e) {
      error.value = e.message;
    } finally {
      busy.value = false;
    }
  }
  const ops = { field: ["eq", "neq", "in", "exists"], attr: ["eq", "neq", "in", "lt", "lte", "gt", "gte", "exists"] };
  const p = count.value;
  return html`<h1>${t("newCampaign")}</h1>
    <div class="composer">
      <form id="composer" onSubmit=${submit}>
        ${error.value && html`<p class="error" role="alert" id="composer-error">${error.value}</p>`}
        <label for="c-name">${t("name")}</label><input id="c-name" type="text" required value=${f.name} onInput=${set("name")} />
        <label for="c-app">${t("app")}</label><input id="c-app" type="text" required value=${f.app} onInput=${set("app")} />
        <fieldset><legend>${t("content")}</legend>
          <label for="c-title">${t("title")}</label><input id="c-title" type="text" required maxlength="200" value=${f.title} onInput=${set("title")} />
          <label for="c-body">${t("body")}</label><textarea id="c-body" required maxlength="2000" value=${f.body} onInput=${set("body")}></textarea>
          <label for="c-url">${t("link")}</label><input id="c-url" type="url" value=${f.url} onInput=${set("url")} placeholder="https://" />
          ${f.variants.map((v, i) => html`<fieldset class="variant" key=${i}><legend>${t("language")}</legend>
            <label for=${"c-locale-" + i}>${t("languageCode")}</label>
            <input id=${"c-locale-" + i} type="text" maxlength="35" pattern="[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*" value=${v.locale}
              onInput=${(e) => setVariant(i, "locale", e.target.value)} />
            <label for=${"c-title-" + i}>${t("title")} (${v.locale || "…"})</label>
            <input id=${"c-title-" + i} type="text" maxlength="200" value=${v.title} onInput=${(e) => setVariant(i, "title", e.target.value)} />
            <label for=${"c-body-" + i}>${t("body")} (${v.locale || "…"})</label>
            <textarea id=${"c-body-" + i} maxlength="2000" value=${v.body} onInput=${(e) => setVariant(i, "body", e.target.value)}></textarea>
            <button type="button" class="secondary small" onClick=${() => (form.value = { ...f, variants: f.variants.filter((_, j) => j !== i) })}>${t("remove")}</button>
          </fieldset>`)}
          <button type="button" class="secondary small" id="c-add-language"
            onClick=${() => (form.value = { ...f, variants: [...f.variants, { locale: "", title: "", body: "" }] })}>${t("addLanguage")}</button>
        </fieldset>
        <fieldset id="c-actions"><legend>${t("buttons")}</legend>
          ${f.actions.map((a, i) => html`<div class="row" key=${i}>
            <input type="text" aria-label=${t("buttonLabel")} placeholder=${t("buttonLabel")} required maxlength="40" value=${a.label}
              onInput=${(e) => setAction(i, "label", e.target.value)} />
            <select aria-label=${t("buttonType")} value=${a.type} onChange=${(e) => setAction(i, "type", e.target.value)}>
              <option value="open_url">${t("button_open_url")}</option><option value="reply">${t("button_reply")}</option>
              <option value="unsubscribe">${t("button_unsubscribe")}</option></select>
            ${a.type === "open_url" && html`<input type="url" aria-label=${t("link")} placeholder="https://" required value=${a.url || ""}
              onInput=${(e) => setAction(i, "url", e.target.value)} />`}
            <button type="button" class="secondary small" onClick=${() => (form.value = { ...f, actions: f.actions.filter((_, j) => j !== i) })}>${t("remove")}</button>
          </div>`)}
          ${f.actions.length < 3 && html`<button type="button" class="secondary small" id="c-add-button"
            onClick=${() => (form.value = { ...f, actions: [...f.actions, { label: "", type: "open_url", url: "" }] })}>${t("addButton")}</button>`}
        </fieldset>
        <fieldset id="c-lists"><legend>${t("lists")}</legend>
          ${lists.value.map(
            (l) => html`<label class="check" key=${l.slug}><input type="checkbox" value=${l.slug}
              checked=${f.lists.includes(l.slug)} onChange=${toggle(l.slug)} /> ${l.name}</label>`,
          )}
        </fieldset>
        <fieldset id="c-segment"><legend>${t("segment")}</legend>
          ${f.conds.map((c, i) => html`<div class="row" key=${i}>
            <label class="check"><input type="checkbox" checked=${c.not} onChange=${(e) => setCond(i, "not", e.target.checked)} /> ${t("not")}</label>
            <select aria-label=${t("segmentWhat")} value=${c.kind} onChange=${(e) => setCond(i, "kind", e.target.value)}>
              <option value="attr">${t("attribute")}</option><option value="field">${t("field")}</option></select>
            ${c.kind === "field"
              ? html`<select aria-label=${t("field")} value=${c.name} onChange=${(e) => setCond(i, "name", e.target.value)}>
                  <option value="">–</option>${["locale", "timezone", "email", "external_id"].map((n) => html`<option key=${n} value=${n}>${n}</option>`)}</select>`
              : html`<input type="text" aria-label=${t("attribute")} placeholder="plan" value=${c.name} onInput=${(e) => setCond(i, "name", e.target.value)} />`}
            <select aria-label=${t("operator")} value=${c.op} onChange=${(e) => setCond(i, "op", e.target.value)}>
              ${ops[c.kind].map((o) => html`<option key=${o} value=${o}>${t("op_" + o)}</option>`)}</select>
            ${c.op !== "exists" && html`<input type="text" aria-label=${t("value")} placeholder=${c.op === "in" ? "a, b, c" : ""} value=${c.value}
              onInput=${(e) => setCond(i, "value", e.target.value)} />`}
            ${c.kind === "attr" && c.op !== "exists" && html`<label class="check"><input type="checkbox" checked=${c.number}
              onChange=${(e) => setCond(i, "number", e.target.checked)} /> ${t("asNumber")}</label>`}
            <button type="button" class="secondary small" onClick=${() => (form.value = { ...f, conds: f.conds.filter((_, j) => j !== i) })}>${t("remove")}</button>
          </div>`)}
          <button type="button" class="secondary small" id="c-add-condition"
            onClick=${() => (form.value = { ...f, conds: [...f.conds, { kind: "attr", name: "", op: "eq", value: "", not: false, number: false }] })}>${t("addCondition")}</button>
        </fieldset>
        <p id="c-count" role="status">${!p ? t("pickLists") : p.error ? html`<span class="error">${p.error}</span>`
          : html`${t("audience")}: <strong id="c-count-devices">${fmt(p.devices)}</strong> ${t("devices")}, ${fmt(p.subscribers)} ${t("subscribers")}
            (${Object.entries(p.by_platform || {}).map(([k, v]) => k + " " + fmt(v)).join(", ") || "–"})`}</p>
        <fieldset><legend>${t("when")}</legend>
          <label class="check"><input type="radio" name="mode" value="now" checked=${f.mode === "now"} onChange=${set("mode")} /> ${t("whenLater")}</label>
          <label class="check"><input type="radio" name="mode" value="at" checked=${f.mode === "at"} onChange=${set("mode")} /> ${t("whenAt")}</label>
          ${f.mode === "at" && html`<input id="c-at" type="datetime-local" step="1" value=${f.at} onInput=${set("at")} required />`}
          <label class="check"><input type="radio" name="mode" value="local" checked=${f.mode === "local"} onChange=${set("mode")} /> ${t("whenLocal")}</label>
          ${f.mode === "local" && html`<div class="row">
            <input id="c-local-date" type="date" aria-label=${t("date")} required value=${f.localDate} onInput=${set("localDate")} />
            <input id="c-local-time" type="time" aria-label=${t("time")} required value=${f.localTime} onInput=${set("localTime")} />
            </div>`}
          <label class="check"><input type="checkbox" id="c-quiet" checked=${f.quiet} onChange=${set("quiet")} /> ${t("quietHours")}</label>
          ${f.quiet && html`<div class="row"><input type="time" aria-label=${t("quietFrom")} value=${f.quietStart} onInput=${set("quietStart")} />
            – <input type="time" aria-label=${t("quietTo")} value=${f.quietEnd} onInput=${set("quietEnd")} /></div>`}
          ${(f.mode === "local" || f.quiet) && html`<label for="c-zone">${t("defaultZone")}</label>
            <input id="c-zone" type="text" required value=${f.zone} onInput=${set("zone")} />`}
          <label for="c-throttle">${t("throttle")}</label>
          <input id="c-throttle" type="number" min="1" placeholder=${t("noLimit")} value=${f.throttle} onInput=${set("throttle")} />
        </fieldset>
        <button type="submit" id="c-save" disabled=${busy.value}>${t("saveDraft")}</button>
      </form>
      <div>
        <label for="c-preview-language">${t("previewIn")}</label>
        <select id="c-preview-language" value=${shownIn.value} onChange=${(e) => (shownIn.value = e.target.value)}>
          <option value="">${t("defaultLanguage")}</option>
          ${[...new Set(f.variants.map((v) => v.locale).filter(Boolean))].map((l) => html`<option key=${l} value=${l}>${l}</option>`)}</select>
        <${Preview} title=${(shown && shown.title) || f.title} body=${(shown && shown.body) || f.body} app=${f.app} actions=${f.actions} />
      </div>
    </div>`;
}

// Preview is the notification as three kinds of device show it.
function Preview({ title, body, app, actions }) {
  const shown = (s) => s || "…";
  return html`<aside class="preview" aria-label=${t("preview")}>
    <h2>${t("preview")}</h2>
    ${[["ios", "iOS"], ["android", "Android"], ["desktop", t("desktop")]].map(
      ([k, label]) => html`<figure key=${k} class=${"device " + k}>
        <figcaption>${label}</figcaption>
        <div class="notification" id=${"preview-" + k}>
          <div class="from">${app || "Herald"}</div>
          <div class="ntitle">${shown(title)}</div>
          <div class="nbody">${shown(body)}</div>
          ${actions && actions.length > 0 && html`<div class="nactions">${actions.map((a, i) => html`<span key=${i}>${a.label || "…"}</span>`)}</div>`}
        </div>
      </figure>`,
    )}
  </aside>`;
}

// The inbox. Its lists and the open conversation follow the live event
// stream (/api/v1/events): every committed conversation change arrives
// there, and a reconnect resumes where it left off (Last-Event-ID), so no
// update is lost.
const counts = signal(null);
const inboxTick = signal(0); // bumped by every conversation event
const lastEvent = signal(null);

function refreshCounts() {
  api("GET", "/conversations/counts").then((c) => (counts.value = c), () => {});
}

function startEvents() {
  if (!session.value || session.value.role === "marketer") return;
  refreshCounts();
  const es = new EventSource("/api/v1/events");
  const onEvent = (ev) => {
    let e;
    try {
      e = JSON.parse(ev.data);
    } catch {
      return;
    }
    lastEvent.value = e;
    inboxTick.value++;
    refreshCounts();
    const d = e.data || {};
    if (e.topic === "conversation.message" && d.author === "subscriber" && document.hidden &&
        "Notification" in window && Notification.permission === "granted") {
      new Notification(t("newMessage"), { body: (d.message && d.message.body) || "", tag: "herald-" + d.conversation_id });
    }
  };
  for (const topic of ["conversation.message", "conversation.assign", "conversation.status", "conversation.resolve",
    "conversation.labels", "conversation.read", "conversation.receipt", "conversation.delivery", "conversation.keyword",
    "conversation.transactional"]) {
    es.addEventListener(topic, onEvent);
  }
  es.addEventListener("signal", onSignal);
  es.addEventListener("reset", () => location.reload());
}

// Passing signals (typing, viewing) by conversation: who, and until when
// the mark stays.
const signals = signal({});
function onSignal(ev) {
  let d;
  try {
    d = JSON.parse(ev.data);
  } catch {
    return;
  }
  const key = d.conversation_id + ":" + d.type + ":" + (d.user_id || d.author);
  // A subscriber's widget tells of typing every ten seconds, an agent's
  // console every three: the mark outlasts the gap.
  const typingFor = d.author === "subscriber" ? 12000 : 5000;
  signals.value = { ...signals.value, [key]: { ...d, until: Date.now() + (d.type === "typing" ? typingFor : 35000) } };
  setTimeout(() => (signals.value = { ...signals.value }), d.type === "typing" ? 5100 : 35100);
}
function marks(conversationID, type) {
  return Object.values(signals.value).filter(
    (x) => String(x.conversation_id) === String(conversationID) && x.type === type && x.until > Date.now() &&
      !(x.user_id && session.value.user && x.user_id === session.value.user.id),
  );
}

const views = [["unassigned", "none"], ["mine", "me"], ["all", "any"]];
// The teams, each a view of its own (read again as the inbox or a
// conversation opens).
const teams = signal(null);

// StaffAttachment shows an attachment through a short-lived signed link:
// images in place, anything else (a PDF) as a download.
function StaffAttachment({ a }) {
  const link = useSignal(null);
  useEffect(() => {
    api("GET", "/attachments/" + a.id).then((r) => (link.value = r.url), () => {});
  }, [a.id]);
  if (!link.value) return html`<p class="muted">${t("file")}…</p>`;
  return a.content_type.startsWith("image/")
    ? html`<a href=${link.value} target="_blank" rel="noopener"><img class="attachment" src=${link.value} alt=${t("file")} /></a>`
    : html`<p><a class="attachment" href=${link.value} download="">${t("file")} (${Math.ceil(a.size / 1024)} KB)</a></p>`;
}

// Availability: whether the inbox's automatic assignment may give this
// person conversations.
const available = signal(null);
function Availability() {
  useEffect(() => {
    api("GET", "/agents").then((r) => {
      const me = (r.items || []).find((a) => session.value.user && a.user_id === session.value.user.id);
      // A click that came first has the last word.
      if (available.value === null) available.value = me ? me.available : false;
    }, () => {});
  }, []);
  async function toggle(e) {
    const want = e.target.checked;
    try {
      const r = await api("PUT", "/agents/me", { available: want });
      available.value = r.available;
    } catch {
      available.value = !want;
    }
  }
  return html`<label class="check" id="availability"><input type="checkbox" checked=${available.value === true}
    onChange=${toggle} /> ${t("available")}</label>`;
}

function Inbox({ query }) {
  const view = query.get("view") || "unassigned";
  const items = useSignal(null);
  const error = useSignal("");
  useEffect(() => {
    api("GET", "/teams").then((r) => (teams.value = r.items), () => (teams.value = teams.value || []));
  }, []);
  useEffect(() => {
    const team = view.startsWith("team-") ? view.slice(5) : "";
    const assignee = (views.find(([v]) => v === view) || views[0])[1];
    const query = team ? "team_id=" + encodeURIComponent(team) : "assignee=" + assignee;
    api("GET", "/conversations?limit=100&" + query).then((r) => (items.value = r.items), (e) => (error.value = e.message));
  }, [view, inboxTick.value]);
  const c = counts.value || {};
  const number = { unassigned: c.unassigned, mine: c.mine, all: c.open };
  const teamCounts = c.teams || {};
  return html`<h1>${t("inbox")}</h1>
    <p class="tabs" role="tablist">${views.map(
      ([v]) => html`<a key=${v} role="tab" id=${"view-" + v} aria-selected=${v === view ? "true" : "false"}
        href=${"#/inbox?view=" + v}>${t("view_" + v)} <span class="count">${number[v] ?? ""}</span></a>`,
    )}${(teams.value || []).map((tm) => html`<a key=${"team-" + tm.id} role="tab" id=${"view-team-" + tm.id}
        aria-selected=${view === "team-" + tm.id ? "true" : "false"} href=${"#/inbox?view=team-" + tm.id}>${tm.name}
        <span class="count">${(teamCounts[tm.id] && teamCounts[tm.id].open) || ""}</span></a>`)}
      ${session.value.kind === "session" && html`<${Availability} />`}
      ${"Notification" in window && Notification.permission === "default" &&
      html`<button type="button" class="secondary small" onClick=${() => Notification.requestPermission()}>${t("desktopNotifications")}</button>`}
    </p>
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    ${!items.value
      ? html`<p class="loading">${t("loading")}</p>`
      : items.value.length === 0
        ? html`<p id="no-conversations">${t("noConversations")}</p>`
        : html`<ul class="conversations" id="conversations">${items.value.map(
            (x) => html`<li key=${x.id} class=${x.unread > 0 ? "unread" : ""}>
              <a href=${"#/inbox/" + x.id}><strong>${x.last_message ? x.last_message.body : "…"}</strong>
              <span class="muted"> · ${x.assignee_name || t("nobody")} · ${when(x.last_message_at)}</span>
              ${x.unread > 0 ? html` <span class="badge">${x.unread}</span>` : ""}</a></li>`,
          )}</ul>`}`;
}

function Conversation({ id }) {
  const conv = useSignal(null);
  const messages = useSignal([]);
  const pending = useSignal([]); // sent here, not yet confirmed
  const draft = useSignal(localStorage.getItem("herald-draft-" + id) || "");
  const note = useSignal(false);
  const error = useSignal("");
  const canned = useSignal([]);
  const replyButtons = useSignal([]);
  const agents = useSignal([]);
  const load = () =>
    Promise.all([api("GET", "/conversations/" + id), api("GET", "/conversations/" + id + "/messages?limit=200")]).then(
      ([c, m]) => {
        conv.value = c;
        messages.value = m.items;
        markRead();
      },
      (e) => (error.value = e.message),
    );
  // What is on screen in a visible tab is read: the unread count clears,
  // and the subscriber's widget shows their message seen.
  const markRead = () => {
    if (conv.value && conv.value.unread > 0 && !document.hidden) {
      conv.value = { ...conv.value, unread: 0 };
      api("POST", "/conversations/" + id + "/read").catch(() => {});
    }
  };
  useEffect(() => {
    document.addEventListener("visibilitychange", markRead);
    return () => document.removeEventListener("visibilitychange", markRead);
  }, [id]);
  useEffect(() => {
    api("GET", "/agents").then((r) => (agents.value = r.items || []), () => {});
    api("GET", "/teams").then((r) => (teams.value = r.items), () => (teams.value = teams.value || []));
    api("GET", "/canned-responses").then((r) => (canned.value = r.items || []), () => {});
  }, []);
  useEffect(() => {
    load();
  }, [id]);
  // Then again whenever an event names this conversation.
  useEffect(() => {
    const e = lastEvent.value;
    if (e && ((e.data && String(e.data.conversation_id) === String(id)) || e.object_id === String(id))) load();
  }, [inboxTick.value]);
  let lastTyping = 0;
  const setDraft = (v) => {
    draft.value = v;
    localStorage.setItem("herald-draft-" + id, v);
    // The subscriber sees that someone is answering (at most every 3 s).
    if (v && !note.value && Date.now() - lastTyping > 3000) {
      lastTyping = Date.now();
      api("POST", "/conversations/" + id + "/typing").catch(() => {});
    }
  };
  // Others see who has the conversation on screen.
  useEffect(() => {
    const view = () => api("POST", "/conversations/" + id + "/viewing").catch(() => {});
    view();
    const timer = setInterval(view, 20000);
    return () => clearInterval(timer);
  }, [id]);
  async function act(action) {
    try {
      await api("POST", "/conversations/" + id + "/" + action);
      await load();
    } catch (e) {
      error.value = e.message;
    }
  }
  async function assign(body) {
    if (await attempt(error, () => api("POST", "/conversations/" + id + "/assign", body))) load();
  }
  async function snooze() {
    const until = new Date();
    until.setDate(until.getDate() + 1);
    until.setHours(9, 0, 0, 0);
    try {
      await api("POST", "/conversations/" + id + "/snooze", { until: until.toISOString() });
      await load();
    } catch (e) {
      error.value = e.message;
    }
  }
  async function saveLabels(ev) {
    ev.preventDefault();
    const labels = ev.target.elements.labels.value.split(",").map((x) => x.trim()).filter(Boolean);
    try {
      await api("PUT", "/conversations/" + id + "/labels", { labels });
      await load();
    } catch (e) {
      error.value = e.message;
    }
  }
  async function send() {
    const body = draft.value.trim();
    if (!body) return;
    const key = crypto.randomUUID();
    const optimistic = { id: "pending-" + key, author: "agent", author_name: session.value.user.name, body, private: note.value, pending: true };
    pending.value = [...pending.value, optimistic];
    setDraft("");
    // Buttons under a reply: an answer the subscriber taps, or a link.
    const buttons = note.value ? [] : replyButtons.value.filter((b) => b.label.trim()).map((b) => (b.url ? { label: b.label, url: b.url } : { label: b.label }));
    replyButtons.value = [];
    try {
      const m = await api("POST", "/conversations/" + id + "/messages", { body, private: note.value, client_key: key,
        ...(buttons.length ? { buttons } : {}) });
      messages.value = [...messages.value.filter((x) => x.id !== m.id), m];
    } catch (e) {
      error.value = e.message;
      setDraft(body);
    } finally {
      pending.value = pending.value.filter((x) => x !== optimistic);
    }
  }
  function keys(ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      send();
    }
  }
  useEffect(() => {
    const onKey = (ev) => {
      if (ev.target.closest("textarea, input, select")) return;
      if (ev.key === "r") {
        ev.preventDefault();
        document.getElementById("reply").focus();
      } else if (ev.key === "e") act("resolve");
      else if (ev.key === "p") act("pick-up");
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [id]);
  const c = conv.value;
  if (!c) return error.value ? html`<p class="error" role="alert">${error.value}</p>` : html`<p class="loading">${t("loading")}</p>`;
  const sub = c.subscriber || {};
  const me = session.value.user && session.value.user.id;
  return html`<p><a href="#/inbox">← ${t("inbox")}</a></p>
    <div class="conversation">
      <section>
        <h1 id="conversation-title">${sub.email || sub.external_id || "#" + c.subscriber_id}</h1>
        <p>${t("status")}: <strong id="conversation-status">${t("cstatus_" + c.status)}</strong>${" · "}${t("assignee")}:${" "}<span id="assignee">${c.assignee_name || t("nobody")}</span></p>
        ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
        ${marks(id, "viewing").length > 0 &&
        html`<p class="muted" id="viewers">${t("alsoViewing")} ${marks(id, "viewing").map((x) => x.name).join(", ")}</p>`}
        <ol class="messages" id="messages" aria-live="polite">${[...messages.value, ...pending.value].map(
          (m) => html`<li key=${m.id} class=${"message " + m.author + (m.private ? " note" : "") + (m.pending ? " pending" : "")}>
            <div class="meta">${m.private ? t("note") + " · " : ""}${m.author === "subscriber" ? t("subscriber") : m.author_name || m.author}
              ${m.read_at ? html` · <span class="read">${t("read")}</span>` : m.delivered_at ? html` · ${t("deliveredShort")}` : ""}</div>
            <div class="text">${m.body}</div>${m.attachment && html`<${StaffAttachment} a=${m.attachment} />`}</li>`,
        )}</ol>
        ${marks(id, "typing").some((x) => x.author === "subscriber") && html`<p class="muted" id="subscriber-typing">${t("subscriberTyping")}</p>`}
        <div class="reply">
          <label for="reply">${note.value ? t("noteLabel") : t("replyLabel")}</label>
          <textarea id="reply" value=${draft.value} onInput=${(e) => setDraft(e.target.value)} onKeyDown=${keys}></textarea>
          <div class="actions">
            <label class="check"><input type="checkbox" id="as-note" checked=${note.value} onChange=${(e) => (note.value = e.target.checked)} /> ${t("asNote")}</label>
            ${canned.value.length > 0 &&
            html`<select id="canned" aria-label=${t("canned")} onChange=${(e) => {
              const r = canned.value.find((x) => String(x.id) === e.target.value);
              if (r) setDraft(r.body);
              e.target.value = "";
            }}><option value="">${t("canned")}</option>${canned.value.map((r) => html`<option value=${r.id}>${r.title}</option>`)}</select>`}
            ${!note.value && replyButtons.value.length < 3 && html`<button type="button" class="secondary small" id="add-reply-button"
              onClick=${() => (replyButtons.value = [...replyButtons.value, { label: "", url: "" }])}>${t("addButton")}</button>`}
            <button type="button" id="send" onClick=${send}>${t("send")}</button>
          </div>
          ${!note.value && replyButtons.value.map((b, i) => html`<div class="row" key=${i}>
            <input type="text" aria-label=${t("buttonLabel")} placeholder=${t("buttonLabel")} maxlength="40" value=${b.label}
              onInput=${(e) => (replyButtons.value = replyButtons.value.map((x, j) => (j === i ? { ...x, label: e.target.value } : x)))} />
            <input type="url" aria-label=${t("link")} placeholder=${t("answerOrLink")} value=${b.url}
              onInput=${(e) => (replyButtons.value = replyButtons.value.map((x, j) => (j === i ? { ...x, url: e.target.value } : x)))} />
            <button type="button" class="secondary small" onClick=${() => (replyButtons.value = replyButtons.value.filter((_, j) => j !== i))}>${t("remove")}</button>
          </div>`)}
          <p class="muted small">${t("shortcuts")}</p>
        </div>
      </section>
      <aside class="context" aria-label=${t("subscriber")}>
        <div class="actions">
          ${c.assignee_id !== me && html`<button type="button" id="pick-up" onClick=${() => act("pick-up")}>${t("pickUp")}</button>`}
          ${c.status !== "resolved" && html`<button type="button" class="secondary" id="resolve" onClick=${() => act("resolve")}>${t("resolve")}</button>`}
          ${c.status !== "snoozed" && c.status !== "resolved" &&
          html`<button type="button" class="secondary" id="snooze" onClick=${snooze}>${t("snoozeTomorrow")}</button>`}
          ${c.status === "snoozed" && html`<p class="muted">${t("snoozedUntil")} ${when(c.snoozed_until)}</p>`}
        </div>
        <label for="assign">${t("assignTo")}</label>
        <select id="assign" value="" onChange=${(e) => {
          const [kind, target] = e.target.value.split(":");
          e.target.value = "";
          if (target) assign(kind === "team" ? { team_id: Number(target) } : { assignee_id: Number(target) });
        }}><option value="">–</option>
          ${agents.value.map((a) => html`<option key=${"u" + a.user_id} value=${"user:" + a.user_id}>${a.name}${a.available ? "" : " (" + t("away") + ")"}</option>`)}
          ${(teams.value || []).map((tm) => html`<option key=${"t" + tm.id} value=${"team:" + tm.id}>${t("team")}: ${tm.name}</option>`)}</select>
        <form class="labels" onSubmit=${saveLabels} key=${(c.labels || []).join(",")}>
          <label for="labels">${t("labels")}</label>
          <input id="labels" name="labels" type="text" value=${(c.labels || []).join(", ")} placeholder="vip, billing" />
          <button type="submit" class="secondary small" id="save-labels">${t("save")}</button>
        </form>
        <dl class="fields">
          <dt>${t("externalId")}</dt><dd>${sub.external_id || "–"}</dd>
          <dt>${t("email")}</dt><dd>${sub.email || "–"}</dd>
          <dt>${t("locale")}</dt><dd>${sub.locale || "–"}</dd>
          <dt>${t("lists")}</dt><dd>${(sub.lists || []).map((l) => l.name || l.slug).join(", ") || "–"}</dd>
          <dt>${t("devicesLabel")}</dt><dd>${(sub.devices || []).map((d) => d.platform).join(", ") || "–"}</dd>
        </dl>
      </aside>
    </div>`;
}

// The admin pages: webhooks with their delivery log, API keys, the audit
// log. Secrets (a webhook's signing secret, an API key) are shown once, as
// the API returns them once.
export function AdminTabs() {
  const r = route.value;
  return html`<p class="tabs">${[["users", t("users")], ["teams", t("teams")], ["apps", t("apps")], ["webhooks", t("webhooks")],
    ["api-keys", t("apiKeys")], ["audit", t("auditLog")]].map(
    ([k, label]) => html`<a key=${k} href=${"#/admin/" + k} aria-selected=${r.startsWith("#/admin/" + k) ? "true" : "false"}>${label}</a>`,
  )}</p>`;
}

export function Secret({ label, value }) {
  return html`<div class="secret" role="status"><p>${label}</p><code id="secret">${value}</code></div>`;
}

function Webhooks() {
  const data = useSignal(null);
  const error = useSignal("");
  const secret = useSignal("");
  const form = useSignal({ url: "", description: "", events: [] });
  const load = () => api("GET", "/webhooks").then((r) => (data.value = r), (e) => (error.value = e.message));
  useEffect(() => {
    load();
  }, []);
  async function add(ev) {
    ev.preventDefault();
    error.value = "";
    try {
      const r = await api("POST", "/webhooks", form.value);
      secret.value = r.secret;
      form.value = { url: "", description: "", events: [] };
      load();
    } catch (e) {
      error.value = e.message;
    }
  }
  const f = form.value;
  const d = data.value;
  return html`<h1>${t("admin")}</h1><${AdminTabs} />
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    ${secret.value && html`<${Secret} label=${t("secretOnce")} value=${secret.value} />`}
    ${!d ? html`<p class="loading">${t("loading")}</p>` : html`<table class="list" id="webhooks">
      <thead><tr><th>URL</th><th>${t("events")}</th><th>${t("state")}</th></tr></thead>
      <tbody>${d.items.map((w) => html`<tr key=${w.id}><td><a href=${"#/admin/webhooks/" + w.id}>${w.url}</a></td>
        <td>${(w.events || []).join(", ") || t("allEvents")}</td>
        <td>${w.enabled ? t("enabled") : t("disabled") + (w.disabled_reason ? ": " + w.disabled_reason : "")}</td></tr>`)}</tbody></table>
      <form id="webhook-form" onSubmit=${add}>
        <h2>${t("addWebhook")}</h2>
        <label for="w-url">URL</label><input id="w-url" type="url" required value=${f.url} onInput=${(e) => (form.value = { ...f, url: e.target.value })} />
        <label for="w-description">${t("description")}</label><input id="w-description" type="text" value=${f.description}
          onInput=${(e) => (form.value = { ...f, description: e.target.value })} />
        <fieldset><legend>${t("events")} (${t("noneMeansAll")})</legend>${d.event_types.map(
          (et) => html`<label class="check" key=${et}><input type="checkbox" checked=${f.events.includes(et)} onChange=${(e) => {
            const set = new Set(f.events);
            e.target.checked ? set.add(et) : set.delete(et);
            form.value = { ...f, events: [...set] };
          }} /> <code>${et}</code></label>`,
        )}</fieldset>
        <button type="submit" id="w-add">${t("add")}</button>
      </form>`}`;
}

function WebhookLog({ id }) {
  const items = useSignal(null);
  const error = useSignal("");
  const load = () => api("GET", "/webhooks/" + id + "/deliveries?limit=100").then((r) => (items.value = r.items), (e) => (error.value = e.message));
  useEffect(() => {
    load();
  }, [id]);
  async function redeliver(d) {
    try {
      await api("POST", "/webhooks/" + id + "/deliveries/" + d.id + "/redeliver");
      load();
    } catch (e) {
      error.value = e.message;
    }
  }
  return html`<h1>${t("admin")}</h1><${AdminTabs} />
    <p><a href="#/admin/webhooks">← ${t("webhooks")}</a></p>
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    ${!items.value ? html`<p class="loading">${t("loading")}</p>` : items.value.length === 0 ? html`<p>${t("noDeliveries")}</p>` :
    html`<table class="list" id="deliveries"><thead><tr><th>${t("event")}</th><th>${t("status")}</th><th>${t("attempts")}</th>
      <th>HTTP</th><th>ms</th><th></th></tr></thead>
      <tbody>${items.value.map((d) => html`<tr key=${d.id}><td><code>${d.event_type}</code></td><td>${d.status}</td>
        <td>${d.attempts}</td><td>${d.response_status || ""}</td><td>${d.latency_ms ?? ""}</td>
        <td><button type="button" class="secondary small" onClick=${() => redeliver(d)}>${t("redeliver")}</button></td></tr>`)}</tbody></table>`}`;
}

function APIKeys() {
  const items = useSignal(null);
  const error = useSignal("");
  const secret = useSignal("");
  const form = useSignal({ name: "", role: "agent", expires_in_days: 90 });
  const load = () => api("GET", "/api-keys").then((r) => (items.value = r.items), (e) => (error.value = e.message));
  useEffect(() => {
    load();
  }, []);
  async function add(ev) {
    ev.preventDefault();
    error.value = "";
    try {
      const r = await api("POST", "/api-keys", { ...form.value, expires_in_days: Number(form.value.expires_in_days) });
      secret.value = r.key;
      load();
    } catch (e) {
      error.value = e.message;
    }
  }
  async function revoke(k) {
    try {
      await api("DELETE", "/api-keys/" + k.id);
      load();
    } catch (e) {
      error.value = e.message;
    }
  }
  const f = form.value;
  return html`<h1>${t("admin")}</h1><${AdminTabs} />
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    ${secret.value && html`<${Secret} label=${t("keyOnce")} value=${secret.value} />`}
    ${!items.value ? html`<p class="loading">${t("loading")}</p>` : html`<table class="list" id="api-keys">
      <thead><tr><th>${t("name")}</th><th>${t("role")}</th><th>${t("prefix")}</th><th>${t("expires")}</th><th></th></tr></thead>
      <tbody>${items.value.map((k) => html`<tr key=${k.id} class=${k.revoked_at ? "revoked" : ""}><td>${k.name}</td><td>${k.role}</td>
        <td><code>${k.prefix}</code></td><td>${k.revoked_at ? t("revoked") : when(k.expires_at)}</td>
        <td>${!k.revoked_at && html`<button type="button" class="secondary small" onClick=${() => revoke(k)}>${t("revoke")}</button>`}</td></tr>`)}
      </tbody></table>`}
    <form id="key-form" onSubmit=${add}>
      <h2>${t("newKey")}</h2>
      <label for="k-name">${t("name")}</label><input id="k-name" type="text" required value=${f.name} onInput=${(e) => (form.value = { ...f, name: e.target.value })} />
      <label for="k-role">${t("role")}</label>
      <select id="k-role" value=${f.role} onChange=${(e) => (form.value = { ...f, role: e.target.value })}>
        ${["admin", "marketer", "agent"].map((r) => html`<option value=${r}>${r}</option>`)}</select>
      <label for="k-days">${t("validDays")}</label><input id="k-days" type="number" min="1" max="3650" value=${f.expires_in_days}
        onInput=${(e) => (form.value = { ...f, expires_in_days: e.target.value })} />
      <button type="submit" id="k-add">${t("add")}</button>
    </form>`;
}

function AuditLog({ query }) {
  const items = useSignal([]);
  const next = useSignal(null);
  const error = useSignal("");
  const action = useSignal(query.get("action") || "");
  const load = (before) => {
    const params = new URLSearchParams({ limit: "50" });
    if (query.get("action")) params.set("action", query.get("action"));
    if (before) params.set("before", before);
    return api("GET", "/audit-log?" + params).then((r) => {
      items.value = before ? [...items.value, ...r.items] : r.items;
      next.value = r.next_before;
    }, (e) => (error.value = e.message));
  };
  useEffect(() => {
    load(null);
  }, [query.toString()]);
  return html`<h1>${t("admin")}</h1><${AdminTabs} />
    <form class="search" role="search" onSubmit=${(ev) => {
      ev.preventDefault();
      location.hash = "#/admin/audit?action=" + encodeURIComponent(action.value.trim());
    }}>
      <label for="audit-action">${t("action")}</label>
      <input id="audit-action" type="search" placeholder="webhook.create" value=${action.value} onInput=${(e) => (action.value = e.target.value)} />
      <button type="submit" id="audit-filter">${t("search")}</button>
    </form>
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    <table class="list" id="audit"><thead><tr><th>${t("when")}</th><th>${t("who")}</th><th>${t("action")}</th><th>${t("object")}</th></tr></thead>
      <tbody>${items.value.map((a) => html`<tr key=${a.id}><td>${when(a.at)}</td><td>${a.actor_label || a.actor_type}</td>
        <td><code>${a.action}</code></td><td>${a.object_type} ${a.object_id}</td></tr>`)}</tbody></table>
    ${next.value && html`<button type="button" class="secondary" onClick=${() => load(next.value)}>${t("more")}</button>`}`;
}

function App() {
  const r = route.value;
  const [path, search] = r.split("?");
  const query = new URLSearchParams(search || "");
  let m;
  let page;
  if (path === "#/campaigns/new") page = html`<${Composer} />`;
  else if ((m = path.match(/^#\/campaigns\/(\d+)$/))) page = html`<${CampaignPage} id=${m[1]} key=${m[1]} />`;
  else if ((m = path.match(/^#\/subscribers\/(\d+)$/))) page = html`<${SubscriberPage} id=${m[1]} key=${m[1]} />`;
  else if (path === "#/subscribers") page = html`<${Subscribers} query=${query} />`;
  else if (path === "#/lists") page = html`<${Lists} />`;
  else if (path === "#/inbox") page = html`<${Inbox} query=${query} />`;
  else if (path === "#/lists/import") page = html`<${Import} />`;
  else if (path === "#/admin/users") page = html`<${Users} />`;
  else if (path === "#/admin/teams") page = html`<${Teams} />`;
  else if (path === "#/admin/apps") page = html`<${Apps} />`;
  else if ((m = path.match(/^#\/admin\/apps\/([a-z0-9-]+)$/))) page = html`<${AppPage} slug=${m[1]} key=${m[1]} />`;
  else if (path === "#/admin/webhooks") page = html`<${Webhooks} />`;
  else if ((m = path.match(/^#\/admin\/webhooks\/(\d+)$/))) page = html`<${WebhookLog} id=${m[1]} key=${m[1]} />`;
  else if (path === "#/admin/api-keys") page = html`<${APIKeys} />`;
  else if (path === "#/admin/audit") page = html`<${AuditLog} query=${query} />`;
  else if ((m = path.match(/^#\/inbox\/(\d+)$/))) page = html`<${Conversation} id=${m[1]} key=${m[1]} />`;
  else if (session.value && session.value.role === "agent") page = html`<${Inbox} query=${query} />`;
  else page = html`<${CampaignList} />`;
  return html`<${Shell}>${page}<//>`;
}

async function start() {
  try {
    session.value = await api("GET", "/session");
  } catch (e) {
    document.getElementById("app").textContent = e.message;
    return;
  }
  const root = document.getElementById("app");
  root.textContent = ""; // the "loading" mark
  render(html`<${App} />`, root);
  startEvents();
}
start();
