// The administration page (admin role): the directory of people with their enrolment and consent,
// the org tree, the consent text, the brand charter, intranet sources and their signing secrets,
// SCIM tokens and KPI webhook subscriptions. Each part reads and writes its owner service's API.
import { api, el, say } from "./app.js";
import { t, currentLanguage, applyI18n } from "./i18n.js";
import { clearErrors, showError } from "./errors.js";
import { groupLevel, startRolePage } from "./shell.js";

const $ = (id) => document.getElementById(id);
const PAGE = 25;
const state = { offset: 0, total: 0 };
const lines = (id) => $(id).value.split("\n").map(s => s.trim()).filter(Boolean);
const date = (iso) => iso ? new Date(iso).toLocaleDateString(currentLanguage()) : "–";

// A write: clears the form's errors, says the outcome beside the form, then reloads its part.
async function write(form, status, call, fields, reload) {
  clearErrors(form);
  try {
    const answer = await call();
    say(status, t("saved"));
    if (reload) await reload();
    return answer;
  } catch (error) { showError(error, { status, fields, root: form }); return null; }
}

async function loadPeople() {
  const found = await api("distribution", "/v1/directory/people",
    { query: { q: $("people-q").value.trim(), limit: PAGE, offset: state.offset } });
  state.total = found.total;
  $("people-total").textContent = t("people_total", { n: found.total, from: found.total ? state.offset + 1 : 0,
                                                        to: state.offset + found.people.length });
  $("people-rows").replaceChildren(...found.people.map(p => el("tr", { "data-employee": p.employee_id },
    el("td", {}, el("strong", { text: [p.given_name, p.family_name].filter(Boolean).join(" ") || p.employee_id }),
      el("br"), el("span", { class: "muted", text: [p.employee_id, p.email].filter(Boolean).join(" · ") })),
    el("td", { text: [p.subsidiary, p.department, p.site].filter(Boolean).join(" / ") || "–" }),
    el("td", { text: p.departed ? t("departed") : p.enrolled ? t("since", { when: date(p.enrolled_at) }) : t("no") }),
    el("td", { "data-consent": p.consent, text: t(`consent_${p.consent}`, { version: p.consent_text_version || "", until: date(p.consent_expires_at) }) }))));
  if (!found.people.length) $("people-rows").replaceChildren(el("tr", {}, el("td", { colspan: "4", class: "muted", text: t("nobody_found") })));
  $("people-previous").disabled = state.offset === 0;
  $("people-next").disabled = state.offset + PAGE >= state.total;
  say($("people-status"), "");
}

async function loadOrg() {
  const units = await api("distribution", "/v1/admin/subsidiaries");
  const branch = (parent) => {
    const kids = units.filter(u => (u.parent || null) === parent);
    return kids.length ? el("ul", {}, kids.map(u => el("li", { text: `${u.name} (${u.code})` }, branch(u.code)))) : null;
  };
  $("org-units").replaceChildren(branch(null) || el("p", { class: "muted", text: t("org_empty") }));
}

async function loadConsent() {
  try {
    const text = await api("distribution", "/v1/admin/consent-texts/current");
    $("consent-current").textContent = t("consent_current", { version: text.version, when: date(text.published_at) });
  } catch (error) {
    if (error.status !== 404) throw error;
    $("consent-current").textContent = t("consent_none_published");
  }
}

async function loadCharter() {
  const charter = await api("content", "/v1/admin/charter");
  state.charter = charter.rules;
  $("charter-forbidden").value = (charter.rules.forbidden_terms || []).join("\n");
  $("charter-spellings").value = (charter.rules.required_spellings || []).join("\n");
  $("charter-disclosure").value = charter.rules.mandatory_disclosure || "";
  $("charter-domains").value = (charter.rules.allowed_link_domains || []).join("\n");
}

async function loadSources() {
  const sources = await api("content", "/v1/admin/sources");
  $("source-rows").replaceChildren(...(sources.length ? sources.map(source) : [el("li", { class: "muted", text: t("sources_none") })]));
}

function source(s) {
  const id = `auto-${s.source_system}`;
  const box = el("input", { type: "checkbox", id, checked: s.auto_approve, disabled: !groupLevel() });
  const status = $("sources-status");
  box.addEventListener("change", () => write(box.closest("li"), status, () => api("content",
    `/v1/admin/sources/${encodeURIComponent(s.source_system)}`, { method: "PUT", body: { auto_approve: box.checked } })));
  const secret = el("button", { type: "button", class: "secondary", text: t("new_secret"), disabled: !groupLevel(),
    onclick: async () => {
      const made = await write(secret.closest("li"), status, () => api("content",
        `/v1/admin/sources/${encodeURIComponent(s.source_system)}/webhook-secret`, { method: "POST" }));
      if (made) say(status, t("shown_once", { secret: made.secret }));
    } });
  return el("li", {}, el("strong", { text: s.source_system }), " ",
    el("span", { class: "muted", text: s.has_webhook_secret ? t("has_secret") : t("no_secret") }),
    el("label", { class: "inline", for: id }, box, t("source_auto")), secret);
}

async function loadScim() {
  const tokens = await api("distribution", "/v1/admin/scim-tokens");
  $("scim-rows").replaceChildren(...(tokens.length ? tokens.map(token => el("li", {},
    el("strong", { text: token.description || token.token_id.slice(0, 8) }), " ",
    el("span", { class: "muted", text: token.revoked_at ? t("revoked_on", { when: date(token.revoked_at) }) : t("since", { when: date(token.created_at) }) }),
    token.revoked_at || !groupLevel() ? null : el("button", { type: "button", class: "secondary",
      text: t("scim_revoke"), "aria-label": `${t("scim_revoke")}: ${token.description || token.token_id}`,
      onclick: () => write($("scim"), $("scim-status"), () => api("distribution", `/v1/admin/scim-tokens/${token.token_id}`,
        { method: "DELETE" }), {}, loadScim) }))) : [el("li", { class: "muted", text: t("scim_none") })]));
}

async function loadWebhooks() {
  const hooks = await api("reporting", "/v1/kpis/webhooks");
  $("webhook-rows").replaceChildren(...(hooks.length ? hooks.map(h => el("li", {},
    el("strong", { text: h.url }), " ", el("span", { class: "muted", text: h.event_types.join(", ") }))) :
    [el("li", { class: "muted", text: t("webhooks_none") })]));
}

// Each part loads on its own: one failing says why in its own section, the others still show.
async function loadPart(load, status) {
  try { await load(); } catch (error) { showError(error, { status: $(status) }); }
}

function listen() {
  $("people-form").addEventListener("submit", (e) => { e.preventDefault(); state.offset = 0; loadPart(loadPeople, "people-status"); });
  $("people-previous").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadPart(loadPeople, "people-status"); });
  $("people-next").addEventListener("click", () => { state.offset += PAGE; loadPart(loadPeople, "people-status"); });
  $("org-form").addEventListener("submit", (e) => { e.preventDefault(); write(e.target, $("org-status"), () => api("distribution",
    `/v1/admin/subsidiaries/${encodeURIComponent($("org-code").value.trim())}`, { method: "PUT",
      body: { name: $("org-name").value.trim(), parent: $("org-parent").value.trim() || null } }),
    { name: "org-name", parent: "org-parent", code: "org-code" }, loadOrg); });
  $("consent-form").addEventListener("submit", (e) => { e.preventDefault(); write(e.target, $("consent-status"), () => api("distribution",
    `/v1/admin/consent-texts/${encodeURIComponent($("consent-version").value.trim())}`, { method: "PUT",
      body: { text: $("consent-body").value, reconsent_within_days: Number($("consent-grace").value || 0) } }),
    { text: "consent-body", reconsent_within_days: "consent-grace", version: "consent-version" }, loadConsent); });
  $("charter-form").addEventListener("submit", (e) => { e.preventDefault(); write(e.target, $("charter-status"), () => api("content",
    "/v1/admin/charter", { method: "PUT", body: { ...state.charter, forbidden_terms: lines("charter-forbidden"),
      required_spellings: lines("charter-spellings"), mandatory_disclosure: $("charter-disclosure").value.trim() || null,
      allowed_link_domains: lines("charter-domains").length ? lines("charter-domains") : null } }),
    { forbidden_terms: "charter-forbidden", required_spellings: "charter-spellings", mandatory_disclosure: "charter-disclosure",
      allowed_link_domains: "charter-domains" }, loadCharter); });
  $("scim-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const made = await write(e.target, $("scim-status"), () => api("distribution", "/v1/admin/scim-tokens",
      { method: "POST", body: { description: $("scim-description").value.trim() } }), { description: "scim-description" }, loadScim);
    if (made) say($("scim-status"), t("shown_once", { secret: made.token }));
  });
  $("webhook-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const types = ["webhook-changed", "webhook-milestone"].filter(id => $(id).checked).map(id => $(id).value);
    const made = await write(e.target, $("webhooks-status"), () => api("reporting", "/v1/kpis/webhooks",
      { method: "POST", body: { url: $("webhook-url").value.trim(), event_types: types } }),
      { url: "webhook-url", event_types: "webhook-changed" }, loadWebhooks);
    if (made) say($("webhooks-status"), t("shown_once", { secret: made.secret }));
  });
}

let started = false;
async function render() {
  applyI18n(document);
  if (started) return;
  started = true;
  const scoped = !groupLevel();
  $("scope-note").hidden = !scoped;
  for (const form of document.querySelectorAll("form.group-only")) form.hidden = scoped;
  listen();
  await Promise.all([loadPart(loadPeople, "people-status"), loadPart(loadOrg, "org-status"),
    loadPart(loadConsent, "consent-status"), loadPart(loadCharter, "charter-status"),
    loadPart(loadSources, "sources-status"), loadPart(loadScim, "scim-status"), loadPart(loadWebhooks, "webhooks-status")]);
}

startRolePage("admin", render);
