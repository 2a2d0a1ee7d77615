// The KPI dashboard: live KPIs (refreshed every few seconds from reporting), over time and by
// subsidiary as SVG charts, leaderboards, CSV exports and the monthly digest preview.
import { api, download, el, formatNumber, say } from "./app.js";
import { clearErrors, explain, showError } from "./errors.js";
import { startRolePage } from "./shell.js";
import { t, currentLanguage, applyI18n } from "./i18n.js";
import { barChart, lineChart } from "./charts.js";

const CARDS = ["contents_published", "enrolled_ambassadors", "active_ambassadors", "shares", "clicks_total",
               "clicks_unique_human", "reactions", "engagements", "engagement_rate", "potential_reach", "impressions"];
const SERIES_KPIS = ["shares", "clicks_total", "engagements", "reactions", "potential_reach", "active_ambassadors"];
const $ = (id) => document.getElementById(id);
const state = { timer: null, pollSeconds: 5, digestAsked: 0 };

function scope() {
  const type = $("scope-type").value;
  return type === "tenant" ? { scope_type: "tenant" } : { scope_type: type, scope_id: $("scope-id").value.trim() };
}

async function loadKpis() {
  const body = await api("reporting", "/v1/kpis", { query: { ...scope(), window: "all" } });
  $("kpis").replaceChildren(...CARDS.filter(k => k in body.kpis).map(k => el("div", { class: "kpi", "data-kpi": k },
    el("div", { class: "value", text: formatNumber(body.kpis[k]) }), el("div", { class: "name", text: t(`kpi_${k}`) }))));
  $("live-updated").textContent = t("updated_at", { when: new Date().toLocaleTimeString(currentLanguage()), every: state.pollSeconds });
}

function seriesRange() {
  const to = new Date();
  const from = new Date(to.getTime() - 29 * 86400000);
  return { window: "day", from: from.toISOString(), to: to.toISOString() };
}

async function loadSeries() {
  const kpi = $("series-kpi").value;
  const body = await api("reporting", "/v1/kpis/series", { query: { ...scope(), ...seriesRange() } });
  const points = body.points.map(p => ({ label: new Date(p.window_start).toLocaleDateString(currentLanguage(), { day: "numeric", month: "short" }),
                                         value: p.kpis[kpi] || 0 }));
  $("series-chart").replaceChildren(lineChart(points, `${t(`kpi_${kpi}`)} · ${t("series_title")}`, formatNumber));
}

async function loadBoards() {
  const kpi = $("series-kpi").value;
  const [subsidiaries, ambassadors, contents] = await Promise.all([
    api("reporting", "/v1/kpis/leaderboards/subsidiaries", { query: { kpi, top: 12 } }),
    api("reporting", "/v1/kpis/leaderboards/ambassadors", { query: { kpi: "shares", top: 10 } }),
    api("reporting", "/v1/kpis/leaderboards/contents", { query: { kpi: "clicks_total", top: 10 } })]);
  $("subsidiary-chart").replaceChildren(barChart(subsidiaries.entries.map(e => ({ label: e.id, value: e.value })),
    `${t(`kpi_${kpi}`)} · ${t("by_subsidiary_title")}`, formatNumber));
  $("known-subsidiaries").replaceChildren(...subsidiaries.entries.map(e => el("option", { value: e.id })));
  $("board-ambassadors").replaceChildren(...ambassadors.entries.map(e => el("tr", {},
    el("td", { text: e.rank }), el("td", { text: e.label }), el("td", { text: formatNumber(e.value) }))));
  $("board-contents").replaceChildren(...contents.entries.map(e => el("tr", {},
    el("td", { text: e.rank }), el("td", { text: e.title || e.id }), el("td", { text: formatNumber(e.value) }))));
}

const SCOPE_FIELDS = { scope_type: "scope-type", scope_id: "scope-id", kpi: "series-kpi" };
const DIGEST_FIELDS = { ...SCOPE_FIELDS, month: "digest-month" };

// A raw answer's error carries its body as text: read back the JSON detail (to place it by field).
async function readable(error) {
  if (typeof error.detail !== "string") return error;
  try { return Object.assign(error, { detail: JSON.parse(error.detail).detail }); } catch { return error; }
}

async function loadDigest(event) {
  if (event) event.preventDefault();
  const asked = ++state.digestAsked;  // only the latest request's answer is shown
  try {
    const response = await api("reporting", "/v1/kpis/digest", { query: { ...scope(), month: $("digest-month").value, format: "html" }, raw: true });
    const html = await response.text();
    if (asked !== state.digestAsked) return;
    $("digest-frame").srcdoc = html;
    clearErrors($("digest-form")); say($("digest-status"), "");
  } catch (error) { if (asked === state.digestAsked) showError(await readable(error), { status: $("digest-status"), fields: DIGEST_FIELDS, root: $("digest-form"),
                                                  otherwise: ["digest-month", "v_month"] }); }
}

async function refresh() {
  try {
    await Promise.all([loadKpis(), loadSeries(), loadBoards()]);
    clearErrors($("scope-form")); say($("dashboard-status"), "");
  } catch (error) { showError(error, { status: $("dashboard-status"), fields: SCOPE_FIELDS, root: $("scope-form") }); }
}

// Live updates: the KPI cards are read again every few seconds (see the README for why polling
// reporting rather than a Kafka consumer in the front).
function poll() {
  clearTimeout(state.timer);
  state.timer = setTimeout(async () => {
    if (!document.hidden) await loadKpis().catch(e => say($("dashboard-status"), explain(e), false));
    poll();
  }, state.pollSeconds * 1000);
}

function csv(id, path, query, name) {
  $(id).addEventListener("click", () => download("reporting", path, { ...query(), format: "csv" }, name)
    .catch(e => say($("dashboard-status"), explain(e), false)));
}

let started = false;
async function render() {
  if (!started) {
    started = true;
    $("series-kpi").replaceChildren(...SERIES_KPIS.map(k => el("option", { value: k, "data-kpi": k })));
    $("digest-month").value = new Date().toISOString().slice(0, 7);
    $("scope-form").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
    $("digest-form").addEventListener("submit", loadDigest);
    csv("csv-kpis", "/v1/kpis", () => ({ ...scope(), window: "all" }), "kpis.csv");
    csv("csv-series", "/v1/kpis/series", () => ({ ...scope(), ...seriesRange() }), "kpi-series.csv");
    csv("csv-subsidiaries", "/v1/kpis/leaderboards/subsidiaries", () => ({ kpi: $("series-kpi").value }), "subsidiaries.csv");
    csv("csv-ambassadors", "/v1/kpis/leaderboards/ambassadors", () => ({ kpi: "shares" }), "ambassadors.csv");
    csv("csv-contents", "/v1/kpis/leaderboards/contents", () => ({ kpi: "clicks_total" }), "contents.csv");
    csv("csv-digest", "/v1/kpis/digest", () => ({ ...scope(), month: $("digest-month").value }), "digest.csv");
    try { state.pollSeconds = (await api("web", "/config")).kpi_poll_seconds; } catch { /* keep the default */ }
    poll();
    loadDigest();
  }
  for (const option of $("series-kpi").options) option.textContent = t(`kpi_${option.value}`);
  applyI18n(document);
  await refresh();
}

startRolePage("dashboard", render);
