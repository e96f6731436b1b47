// The console's admin pages for people and apps: users and invitations,
// teams, and apps with their branding, provider credentials and a test
// push. Everything goes through the same /api/v1 that integrators use.
import { useEffect } from "./vendor/hooks.js";
import { useSignal } from "./vendor/signals.js";
import { t } from "./i18n.js";
import { api, attempt, upload, html, when, AdminTabs, Secret } from "./app.js";

function Failure({ error }) {
  return error.value ? html`<p class="error" role="alert">${error.value}</p>` : null;
}

const roles = ["admin", "marketer", "agent"];

export function Users() {
  const users = useSignal(null);
  const invitations = useSignal([]);
  const error = useSignal("");
  const link = useSignal("");
  const form = useSignal({ email: "", name: "", role: "marketer" });
  const load = () =>
    Promise.all([api("GET", "/users?limit=1000"), api("GET", "/invitations")]).then(([u, i]) => {
      users.value = u.items;
      invitations.value = i.items;
    }, (e) => (error.value = e.message));
  useEffect(() => {
    load();
  }, []);
  async function invite(ev) {
    ev.preventDefault();
    await attempt(error, async () => {
      const r = await api("POST", "/invitations", form.value);
      link.value = r.link;
      form.value = { email: "", name: "", role: form.value.role };
      load();
    });
  }
  const change = (u, action) => attempt(error, () => api("POST", "/users/" + u.id + "/" + action)).then(load);
  const revoke = (i) => attempt(error, () => api("DELETE", "/invitations/" + i.id)).then(load);
  const f = form.value;
  return html`<h1>${t("admin")}</h1><${AdminTabs} /><${Failure} error=${error} />
    ${link.value && html`<${Secret} label=${t("invitationOnce")} value=${link.value} />`}
    ${!users.value ? html`<p class="loading">${t("loading")}</p>` : html`<table class="list" id="users">
      <thead><tr><th>${t("name")}</th><th>${t("email")}</th><th>${t("role")}</th><th>${t("state")}</th><th>${t("secondFactor")}</th><th></th></tr></thead>
      <tbody>${users.value.map((u) => html`<tr key=${u.id}><td>${u.name}</td><td>${u.email}</td><td>${t("role_" + u.role)}</td>
        <td>${t("ustate_" + u.state)}</td><td>${u.totp_enabled ? t("enabled") : t("disabled")}</td>
        <td>${u.state === "active"
          ? html`<button type="button" class="secondary small" onClick=${() => change(u, "disable")}>${t("disable")}</button>`
          : html`<button type="button" class="secondary small" onClick=${() => change(u, "enable")}>${t("enable")}</button>`}</td></tr>`)}</tbody></table>`}
    <h2>${t("openInvitations")}</h2>
    ${invitations.value.length === 0 ? html`<p>${t("noInvitations")}</p>` : html`<table class="list" id="invitations">
      <thead><tr><th>${t("email")}</th><th>${t("role")}</th><th>${t("expires")}</th><th></th></tr></thead>
      <tbody>${invitations.value.map((i) => html`<tr key=${i.id}><td>${i.email}</td><td>${t("role_" + i.role)}</td><td>${when(i.expires_at)}</td>
        <td><button type="button" class="secondary small" onClick=${() => revoke(i)}>${t("revoke")}</button></td></tr>`)}</tbody></table>`}
    <form id="invite-form" onSubmit=${invite}>
      <h2>${t("invite")}</h2>
      <label for="i-email">${t("email")}</label>
      <input id="i-email" type="email" required value=${f.email} onInput=${(e) => (form.value = { ...f, email: e.target.value })} />
      <label for="i-name">${t("name")}</label>
      <input id="i-name" type="text" required maxlength="200" value=${f.name} onInput=${(e) => (form.value = { ...f, name: e.target.value })} />
      <label for="i-role">${t("role")}</label>
      <select id="i-role" value=${f.role} onChange=${(e) => (form.value = { ...f, role: e.target.value })}>
        ${roles.map((r) => html`<option key=${r} value=${r}>${t("role_" + r)}</option>`)}</select>
      <button type="submit" id="i-add">${t("invite")}</button>
    </form>`;
}

export function Teams() {
  const teams = useSignal(null);
  const users = useSignal([]);
  const error = useSignal("");
  const form = useSignal({ name: "", description: "" });
  const load = () =>
    api("GET", "/teams").then(async (r) => {
      // Each team's members: a handful of teams, one call each.
      teams.value = await Promise.all(r.items.map((tm) => api("GET", "/teams/" + tm.id)));
    }, (e) => (error.value = e.message));
  useEffect(() => {
    load();
    api("GET", "/users?limit=1000").then((r) => (users.value = r.items.filter((u) => u.role !== "marketer" && u.state === "active")), () => {});
  }, []);
  async function create(ev) {
    ev.preventDefault();
    if (await attempt(error, () => api("POST", "/teams", form.value))) {
      form.value = { name: "", description: "" };
      load();
    }
  }
  const member = (tm, userID, add) =>
    attempt(error, () => api(add ? "PUT" : "DELETE", "/teams/" + tm.id + "/members/" + userID)).then(load);
  const autoAssign = (tm, on) => attempt(error, () => api("PUT", "/teams/" + tm.id + "/auto-assign", { auto_assign: on }));
  const f = form.value;
  return html`<h1>${t("admin")}</h1><${AdminTabs} /><${Failure} error=${error} />
    ${!teams.value ? html`<p class="loading">${t("loading")}</p>` : teams.value.length === 0 ? html`<p>${t("noTeams")}</p>` :
    teams.value.map((tm) => html`<section class="team" key=${tm.id} id=${"team-" + tm.id}>
      <h2>${tm.name}</h2>${tm.description && html`<p>${tm.description}</p>`}
      <ul>${(tm.members || []).map((m) => html`<li key=${m.user_id}>${m.name} · ${t("role_" + m.role)}
        <button type="button" class="secondary small" onClick=${() => member(tm, m.user_id, false)}>${t("remove")}</button></li>`)}</ul>
      <label for=${"add-" + tm.id}>${t("addMember")}</label>
      <select id=${"add-" + tm.id} onChange=${(e) => e.target.value && member(tm, e.target.value, true)}>
        <option value="">–</option>
        ${users.value.filter((u) => !(tm.members || []).some((m) => m.user_id === u.id)).map(
          (u) => html`<option key=${u.id} value=${u.id}>${u.name} (${t("role_" + u.role)})</option>`)}</select>
      <p class="actions"><button type="button" class="secondary small" onClick=${() => autoAssign(tm, true)}>${t("autoAssignOn")}</button>
        <button type="button" class="secondary small" onClick=${() => autoAssign(tm, false)}>${t("autoAssignOff")}</button></p>
    </section>`)}
    <form id="team-form" onSubmit=${create}>
      <h2>${t("newTeam")}</h2>
      <label for="t-name">${t("name")}</label>
      <input id="t-name" type="text" required maxlength="100" value=${f.name} onInput=${(e) => (form.value = { ...f, name: e.target.value })} />
      <label for="t-description">${t("description")}</label>
      <input id="t-description" type="text" value=${f.description} onInput=${(e) => (form.value = { ...f, description: e.target.value })} />
      <button type="submit">${t("add")}</button>
    </form>`;
}

export function Apps() {
  const apps = useSignal(null);
  const error = useSignal("");
  const form = useSignal({ slug: "", name: "" });
  const load = () => api("GET", "/apps").then((r) => (apps.value = r.items), (e) => (error.value = e.message));
  useEffect(() => {
    load();
  }, []);
  async function create(ev) {
    ev.preventDefault();
    if (await attempt(error, () => api("POST", "/apps", form.value))) {
      location.hash = "#/admin/apps/" + form.value.slug;
    }
  }
  const f = form.value;
  return html`<h1>${t("admin")}</h1><${AdminTabs} /><${Failure} error=${error} />
    ${!apps.value ? html`<p class="loading">${t("loading")}</p>` : html`<table class="list" id="apps">
      <thead><tr><th>${t("name")}</th><th>${t("slug")}</th><th>${t("company")}</th></tr></thead>
      <tbody>${apps.value.map((a) => html`<tr key=${a.id}><td><a href=${"#/admin/apps/" + a.slug}>${a.name}</a></td>
        <td><code>${a.slug}</code></td><td>${a.company_name || "–"}</td></tr>`)}</tbody></table>`}
    <form id="app-form" onSubmit=${create}>
      <h2>${t("newApp")}</h2>
      <label for="a-slug">${t("slug")}</label>
      <input id="a-slug" type="text" required pattern="[a-z0-9-]{1,63}" value=${f.slug} onInput=${(e) => (form.value = { ...f, slug: e.target.value })} />
      <label for="a-name">${t("name")}</label>
      <input id="a-name" type="text" required maxlength="200" value=${f.name} onInput=${(e) => (form.value = { ...f, name: e.target.value })} />
      <button type="submit">${t("add")}</button>
    </form>`;
}

// AppPage is one app: who sends (the subscriber pages' branding and
// logo), the provider credentials, and a test push to one device.
export function AppPage({ slug }) {
  const app = useSignal(null);
  const error = useSignal("");
  const saved = useSignal("");
  const brand = useSignal(null);
  const creds = useSignal({ apns: { key_p8: "", key_id: "", team_id: "", topic: "" }, fcm: { service_account_json: "" },
    vapid: { public_key: "", private_key: "", subject: "" } });
  const device = useSignal("");
  const outcome = useSignal(null);
  const showSecret = useSignal(false);
  const base = "/apps/" + encodeURIComponent(slug);
  const load = () => api("GET", base).then((a) => {
    app.value = a;
    brand.value = { name: a.name, company_name: a.company_name, privacy_url: a.privacy_url, imprint_url: a.imprint_url,
      accent_color: a.accent_color };
  }, (e) => (error.value = e.message));
  useEffect(() => {
    load();
  }, [slug]);
  const done = (what) => (saved.value = what);
  async function saveBrand(ev) {
    ev.preventDefault();
    saved.value = "";
    if (await attempt(error, async () => (app.value = await api("PATCH", base, brand.value)))) done(t("brandSaved"));
  }
  async function logo(ev) {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (file && (await attempt(error, async () => (app.value = await upload("PUT", base + "/logo", file))))) done(t("logoSaved"));
  }
  async function saveCreds(platform, ev) {
    ev.preventDefault();
    saved.value = "";
    if (await attempt(error, async () => (app.value = await api("PUT", base + "/credentials/" + platform, creds.value[platform])))) {
      creds.value = { ...creds.value, [platform]: Object.fromEntries(Object.keys(creds.value[platform]).map((k) => [k, ""])) };
      done(t("credentialsSaved"));
    }
  }
  // A key file goes into the form as its text: nothing is sent until Save.
  const readFile = (platform, field) => async (ev) => {
    const file = ev.target.files[0];
    if (file) creds.value = { ...creds.value, [platform]: { ...creds.value[platform], [field]: await file.text() } };
  };
  async function testPush(ev) {
    ev.preventDefault();
    outcome.value = null;
    await attempt(error, async () => (outcome.value = await api("POST", base + "/test-push", { device_id: Number(device.value) })));
  }
  const a = app.value;
  const b = brand.value;
  const field = (platform, name, label, type) => html`<label for=${platform + "-" + name}>${label}</label>
    ${type === "textarea"
      ? html`<textarea id=${platform + "-" + name} rows="4" required value=${creds.value[platform][name]}
          onInput=${(e) => (creds.value = { ...creds.value, [platform]: { ...creds.value[platform], [name]: e.target.value } })}></textarea>`
      : html`<input id=${platform + "-" + name} type="text" required value=${creds.value[platform][name]}
          onInput=${(e) => (creds.value = { ...creds.value, [platform]: { ...creds.value[platform], [name]: e.target.value } })} />`}`;
  const brandField = (name, label, type) => html`<label for=${"b-" + name}>${label}</label>
    <input id=${"b-" + name} type=${type || "text"} value=${b[name]} onInput=${(e) => (brand.value = { ...b, [name]: e.target.value })} />`;
  if (!a || !b) return html`<h1>${t("admin")}</h1><${AdminTabs} /><${Failure} error=${error} /><p class="loading">${t("loading")}</p>`;
  return html`<h1>${t("admin")}</h1><${AdminTabs} />
    <p><a href="#/admin/apps">← ${t("apps")}</a></p>
    <h2 id="app-name">${a.name} <code>${a.slug}</code></h2>
    <${Failure} error=${error} />${saved.value && html`<p class="notice" role="status" id="saved">${saved.value}</p>`}
    <dl class="fields">
      <dt>${t("vapidKey")}</dt><dd><code>${a.vapid_public_key}</code></dd>
      <dt>${t("identitySecret")}</dt><dd>${showSecret.value ? html`<code id="identity-secret">${a.identity_secret}</code>`
        : html`<button type="button" class="secondary small" onClick=${() => (showSecret.value = true)}>${t("show")}</button>`}</dd>
      <dt>APNs</dt><dd id="apns-state">${a.apns_configured ? t("configured") : t("notConfigured")}</dd>
      <dt>FCM</dt><dd id="fcm-state">${a.fcm_configured ? t("configured") : t("notConfigured")}</dd>
    </dl>
    <form id="brand-form" onSubmit=${saveBrand}>
      <h2>${t("whoSends")}</h2>
      ${brandField("name", t("name"))}${brandField("company_name", t("company"))}
      ${brandField("privacy_url", t("privacyURL"), "url")}${brandField("imprint_url", t("imprintURL"), "url")}
      <label for="b-accent_color">${t("accentColor")}</label>
      <input id="b-accent_color" type="text" pattern="#[0-9a-f]{6}|" placeholder="#1a56b0" value=${b.accent_color}
        onInput=${(e) => (brand.value = { ...b, accent_color: e.target.value })} />
      <button type="submit" id="b-save">${t("save")}</button>
    </form>
    <h2>${t("logo")}</h2>
    ${a.logo_url ? html`<p><img id="logo" src=${a.logo_url} alt=${t("logo")} height="48" /></p>` : html`<p>${t("noLogo")}</p>`}
    <label for="logo-file">${t("logoFile")}</label>
    <input id="logo-file" type="file" accept="image/png,image/jpeg,image/webp" onChange=${logo} />
    ${a.logo_url && html`<button type="button" class="secondary small" onClick=${() => attempt(error, async () => (app.value = await api("DELETE", base + "/logo")))}>${t("remove")}</button>`}
    <form id="apns-form" onSubmit=${(e) => saveCreds("apns", e)}>
      <h2>APNs</h2>
      <label for="apns-file">${t("p8File")}</label><input id="apns-file" type="file" accept=".p8" onChange=${readFile("apns", "key_p8")} />
      ${field("apns", "key_p8", t("p8Key"), "textarea")}${field("apns", "key_id", "Key ID")}${field("apns", "team_id", "Team ID")}${field("apns", "topic", t("bundleID"))}
      <button type="submit">${t("save")}</button>
    </form>
    <form id="fcm-form" onSubmit=${(e) => saveCreds("fcm", e)}>
      <h2>FCM</h2>
      <label for="fcm-file">${t("serviceAccountFile")}</label><input id="fcm-file" type="file" accept=".json,application/json" onChange=${readFile("fcm", "service_account_json")} />
      ${field("fcm", "service_account_json", t("serviceAccount"), "textarea")}
      <button type="submit">${t("save")}</button>
    </form>
    <form id="vapid-form" onSubmit=${(e) => saveCreds("vapid", e)}>
      <h2>Web Push (VAPID)</h2>
      ${field("vapid", "public_key", t("publicKey"))}${field("vapid", "private_key", t("privateKey"))}${field("vapid", "subject", "Subject (mailto:…)")}
      <button type="submit">${t("save")}</button>
    </form>
    <form id="test-push-form" onSubmit=${testPush}>
      <h2>${t("testPush")}</h2>
      <p class="small">${t("testPushHelp")}</p>
      <label for="test-device">${t("deviceID")}</label>
      <input id="test-device" type="number" min="1" required value=${device.value} onInput=${(e) => (device.value = e.target.value)} />
      <button type="submit" id="test-push">${t("sendTest")}</button>
      ${outcome.value && html`<p role="status" id="test-outcome" class=${outcome.value.outcome.class === "delivered" ? "notice" : "error"}>
        ${outcome.value.platform}: <strong>${outcome.value.outcome.class}</strong>
        ${outcome.value.outcome.status_code ? " · HTTP " + outcome.value.outcome.status_code : ""}
        ${outcome.value.outcome.reason ? " · " + outcome.value.outcome.reason : ""}</p>`}
    </form>`;
}
