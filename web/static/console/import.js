// The console's CSV import: the file goes up as it is (POST /imports), and
// the page follows the import's counters until it ends, then shows the rows
// it refused and offers them as a CSV file to fix and import again.
import { useEffect } from "./vendor/hooks.js";
import { useSignal } from "./vendor/signals.js";
import { t } from "./i18n.js";
import { upload, api, html, fmt } from "./app.js";

// csvField quotes a value for a CSV file when it needs quoting.
const csvField = (v) => (/[",\r\n]/.test(v) ? '"' + v.replaceAll('"', '""') + '"' : v);

export function Import() {
  const imp = useSignal(null);
  const error = useSignal("");
  const lines = useSignal([]); // the file's lines, to show the refused ones as they were
  const busy = useSignal(false);

  useEffect(() => {
    const current = imp.value;
    if (!current || current.status === "finished" || current.status === "failed") return undefined;
    // One read of one row a second: the counters are the import's own.
    const timer = setTimeout(() => api("GET", "/imports/" + current.id).then((r) => (imp.value = r), (e) => (error.value = e.message)), 1000);
    return () => clearTimeout(timer);
  }, [imp.value]);

  async function start(ev) {
    ev.preventDefault();
    const file = ev.target.elements.file.files[0];
    if (!file) return;
    error.value = "";
    busy.value = true;
    try {
      lines.value = (await file.text()).split(/\r?\n/);
      imp.value = await upload("POST", "/imports?filename=" + encodeURIComponent(file.name), file, "text/csv");
    } catch (e) {
      error.value = e.message;
    } finally {
      busy.value = false;
    }
  }

  function rejectedCSV() {
    const out = ["line,field,reason,row"];
    for (const e of imp.value.row_errors) {
      out.push([String(e.line), e.field || "", e.reason, lines.value[e.line - 1] || ""].map(csvField).join(","));
    }
    // A data: link, not a blob: one that would have to be revoked: at most
    // 1,000 rows are kept.
    return "data:text/csv;charset=utf-8," + encodeURIComponent(out.join("\r\n") + "\r\n");
  }

  const x = imp.value;
  // Rows in the file, without the header and a last empty line.
  const total = Math.max(0, lines.value.length - 1 - (lines.value[lines.value.length - 1] === "" ? 1 : 0));
  const done = x && (x.status === "finished" || x.status === "failed");
  const share = !x ? 0 : done ? 1 : total ? Math.min(0.99, x.rows_read / total) : 0;
  return html`<p><a href="#/lists">← ${t("lists")}</a></p>
    <h1>${t("importTitle")}</h1>
    <p class="small">${t("importHelp")}</p>
    ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
    <form id="import-form" onSubmit=${start}>
      <label for="import-file">${t("csvFile")}</label>
      <input id="import-file" name="file" type="file" accept=".csv,text/csv" required />
      <button type="submit" id="import-start" disabled=${busy.value || (x && !done)}>${t("importStart")}</button>
    </form>
    ${x && html`<section id="import-progress">
      <h2>${x.filename} · <span id="import-status">${t("istatus_" + x.status)}</span></h2>
      <progress id="import-bar" max="100" value=${Math.round(share * 100)} aria-label=${t("progress")}></progress>
      <dl class="fields">
        <dt>${t("rowsRead")}</dt><dd id="rows-read">${fmt(x.rows_read)}${total ? " / " + fmt(total) : ""}</dd>
        <dt>${t("rowsImported")}</dt><dd id="rows-imported">${fmt(x.rows_imported)}</dd>
        <dt>${t("rowsFailed")}</dt><dd id="rows-failed">${fmt(x.rows_failed)}</dd>
      </dl>
      ${x.error && html`<p class="error" role="alert">${x.error}</p>`}
      ${done && x.row_errors.length > 0 && html`<h2>${t("rejectedRows")}</h2>
        <p><a id="rejected-download" download=${"rejected-" + x.filename} href=${rejectedCSV()}>${t("downloadRejected")}</a>
          ${x.rows_failed > x.row_errors.length ? " · " + t("firstRejected") : ""}</p>
        <table class="list" id="rejected"><thead><tr><th>${t("line")}</th><th>${t("field")}</th><th>${t("reason")}</th><th>${t("row")}</th></tr></thead>
          <tbody>${x.row_errors.map((e) => html`<tr key=${e.line + e.field}><td>${e.line}</td><td>${e.field}</td><td>${e.reason}</td>
            <td><code>${lines.value[e.line - 1] || ""}</code></td></tr>`)}</tbody></table>`}
    </section>`}`;
}
