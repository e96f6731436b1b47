// Herald's console: a small client app on /api/v1, the API integrators
// use. Preact, htm and signals are vendored ES modules: no build step.
import { h, render } from "./vendor/preact.js";
import { useEffect } from "./vendor/hooks.js";
import { signal, useSignal } from "./vendor/signals.js";
import htm from "./vendor/htm.js";
import { t, lang } from "./i18n.js";

const html = htm.bind(h);

// The signed-in person ({user, csrf_token, ...}) and the page (the hash).
const session = signal(null);
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

const number = new Intl.NumberFormat(lang);
const fmt = (n) => number.format(n || 0);
const when = (s) => (s ? new Date(s).toLocaleString(lang) : "");

function Shell({ children }) {
  const s = session.value;
  return html`<a class="skip" href="#content">${t("skip")}</a>
    <header class="bar">
      <a class="brand" href="#/campaigns">Herald</a>
      <nav aria-label=${t("navigation")}>
        <a href="#/campaigns" aria-current=${route.value.startsWith("#/campaigns") ? "page" : null}>${t("campaigns")}</a>
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
      )}</div>`;
}

function App() {
  const r = route.value;
  const m = r.match(/^#\/campaigns\/(\d+)$/);
  const page = m ? html`<${CampaignPage} id=${m[1]} key=${m[1]} />` : html`<${CampaignList} />`;
  return html`<${Shell}>${page}<//>`;
}

async function start() {
  try {
    session.value = await api("GET", "/session");
  } catch (e) {
    document.getElementById("app").textContent = e.message;
    return;
  }
  render(html`<${App} />`, document.getElementById("app"));
}
start();
