// The comms studio: write per-network texts with a live charter check, the four-eyes review,
// schedule and expiry, the audience over the org tree and groups, and the training kit.
import { api, el, say } from "./app.js";
import { t, currentLanguage, applyI18n } from "./i18n.js";
import { explain, showError } from "./errors.js";
import { groupLevel, may, session, startRolePage } from "./shell.js";

const NETWORKS = ["linkedin", "x", "facebook", "xing"];
const CHECK_DELAY_MS = 400;
const $ = (id) => document.getElementById(id);
const state = { item: null, shareOrder: [], timer: null, checkSeq: 0 };
const list = (id) => $(id).value.split(",").map(s => s.trim()).filter(Boolean);

function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}
const fromLocalInput = (value) => value ? new Date(value).toISOString() : null;

function renderShareTexts() {
  $("share-texts").replaceChildren(...NETWORKS.map(n => el("div", {},
    el("label", { for: `share-${n}`, text: t("text_for", { network: t(`network_${n}`) }) }),
    el("textarea", { id: `share-${n}`, "data-network": n, "aria-describedby": `preview-share-${n}` }),
    el("div", { class: "preview", id: `preview-share-${n}`, hidden: true }))));
}

// The draft as the content API takes it; share texts in NETWORKS order, empty ones left out.
function draft() {
  const language = $("language").value;
  const share_texts = [];
  state.shareOrder = [];
  for (const n of NETWORKS) {
    const text = $(`share-${n}`).value;
    if (text.trim()) { share_texts.push({ network: n, language, text }); state.shareOrder.push(n); }
  }
  const subsidiaries = [...document.querySelectorAll("#org-tree input:checked")].map(i => i.value);
  const typed = $("audience-subsidiaries") ? list("audience-subsidiaries") : [];
  return {
    title: $("title").value, summary: $("summary").value, url: $("url").value, language,
    tags: list("tags"), campaign: $("campaign").value || null,
    audience: { subsidiaries: [...subsidiaries, ...typed], groups: list("audience-groups"),
                countries: list("audience-countries").map(c => c.toUpperCase()), languages: list("audience-languages") },
    share_texts, publish_at: fromLocalInput($("publish-at").value), expire_at: fromLocalInput($("expire-at").value),
  };
}

// A 422's field path (["share_texts", 1, "text"], ["audience", "groups"]) → the element showing it.
const FIELDS = { publish_at: "publish-at", expire_at: "expire-at", "audience.groups": "audience-groups",
                 "audience.countries": "audience-countries", "audience.languages": "audience-languages",
                 "audience.subsidiaries": "org-tree", audience: "audience", share_texts: "share-texts", reason: "reject-reason" };
function formField(path) {
  if (path[0] === "share_texts" && typeof path[1] === "number") return `share-${state.shareOrder[path[1]]}`;
  return FIELDS[path.join(".")] || (path.length === 1 ? path[0] : null);
}

// Field of a violation ("title", "share_texts[1].text") → the element showing it.
function fieldId(field) {
  const share = /^share_texts\[(\d+)\]/.exec(field);
  if (share) return `share-${state.shareOrder[Number(share[1])]}`;
  return field;
}

function highlight(text, ranges) {
  const parts = [];
  let at = 0;
  for (const r of [...ranges].sort((a, b) => a.position - b.position)) {
    if (r.position < at) continue;
    parts.push(text.slice(at, r.position));
    parts.push(el("mark", { class: "violation", title: r.message, text: text.slice(r.position, r.position + Math.max(r.length, 1)) }));
    at = r.position + Math.max(r.length, 1);
  }
  parts.push(text.slice(at));
  return parts;
}

function showViolations(violations) {
  const byField = new Map();
  for (const v of violations) {
    const id = fieldId(v.field);
    if (!byField.has(id)) byField.set(id, []);
    byField.get(id).push(v);
  }
  for (const id of ["title", "summary", "url", ...NETWORKS.map(n => `share-${n}`)]) {
    const input = $(id);
    const preview = $(`preview-${id}`);
    const found = byField.get(id) || [];
    input.setAttribute("aria-invalid", found.length ? "true" : "false");
    if (!preview) continue;
    preview.hidden = !found.length;
    preview.replaceChildren(...(found.length ? highlight(input.value, found) : []));
  }
  $("violations").replaceChildren(...violations.map(v => el("li", { "data-rule": v.rule },
    el("strong", { text: `${t(`field_${fieldId(v.field).split("-")[0]}`) || v.field}${fieldId(v.field).startsWith("share-") ? ` (${t(`network_${fieldId(v.field).slice(6)}`)})` : ""}: ` }),
    `${v.message} [${v.rule}]`)));
}

async function check() {
  const seq = ++state.checkSeq;
  const body = draft();
  if (!body.title.trim() || !/^https?:\/\/\S+\.\S+/.test(body.url)) {
    say($("check-status"), t("check_needs"), false); return;
  }
  try {
    const result = await api("content", "/v1/contents/check", { method: "POST", body });
    if (seq !== state.checkSeq) return;  // a newer keystroke's check is on its way
    showViolations(result.violations);
    if (result.violations.length) say($("check-status"), t("violations_found", { n: result.violations.length }), false);
    else say($("check-status"), t("no_violation"));
  } catch (error) { if (seq === state.checkSeq) showError(error, { status: $("check-status"), fields: formField }); }
}

function scheduleCheck() {
  clearTimeout(state.timer);
  state.timer = setTimeout(check, CHECK_DELAY_MS);
}

function fill(item) {
  state.item = item;
  $("title").value = item ? item.title : "";
  $("summary").value = item ? item.summary : "";
  $("url").value = item ? item.url : "";
  $("language").value = item ? item.language : currentLanguage();
  $("campaign").value = item ? item.campaign || "" : "";
  $("tags").value = item ? item.tags.join(", ") : "";
  for (const n of NETWORKS) {
    const text = item && item.share_texts.find(s => s.network === n);
    $(`share-${n}`).value = text ? text.text : "";
  }
  $("publish-at").value = toLocalInput(item && item.publish_at);
  $("expire-at").value = toLocalInput(item && item.expire_at);
  const audience = item ? item.audience : {};
  for (const box of document.querySelectorAll("#org-tree input")) box.checked = (audience.subsidiaries || []).includes(box.value);
  if ($("audience-subsidiaries")) $("audience-subsidiaries").value = (audience.subsidiaries || []).join(", ");
  $("audience-groups").value = (audience.groups || []).join(", ");
  $("audience-countries").value = (audience.countries || []).join(", ");
  $("audience-languages").value = (audience.languages || []).join(", ");
  renderWorkflow();
  showViolations([]);
  say($("check-status"), "");
  if (item) scheduleCheck();
}

function renderWorkflow() {
  const item = state.item;
  const me = session.me.subject;
  $("state").textContent = item ? t(`state_${item.state}`) : t("state_new");
  $("state").dataset.state = item ? item.state : "new";
  $("state").className = `badge ${item ? item.state : ""}`;
  $("revision").textContent = item ? t("revision", { n: item.revision }) : "";
  const authored = item && item.authors.includes(me);
  const box = $("four-eyes");
  if (!item) box.textContent = t("four_eyes_rule");
  else if (authored) box.textContent = t("four_eyes_mine", { authors: item.authors.join(", ") });
  else box.textContent = t("four_eyes_other", { authors: item.authors.join(", ") });
  const approver = may("approver", "admin");
  const editor = may("editor", "admin");
  const s = item ? item.state : "new";
  $("save").disabled = !editor;
  $("submit").disabled = !(item && editor && s === "draft");
  $("approve").disabled = !(item && approver && !authored && s === "in_review");
  $("reject").disabled = !(item && approver && s === "in_review");
  $("publish").disabled = !(item && approver && !authored && ["draft", "in_review", "approved", "scheduled"].includes(s));
  $("schedule").disabled = !(item && approver && s === "approved");
  $("retire").disabled = !(item && approver && ["approved", "scheduled", "published"].includes(s));
  loadAudit();
}

async function loadAudit() {
  if (!state.item) { $("audit").replaceChildren(); return; }
  try {
    const trail = await api("content", `/v1/contents/${state.item.id}/audit`);
    $("audit").replaceChildren(...trail.transitions.map(tr => el("li", {
      text: `${new Date(tr.at).toLocaleString(currentLanguage())} · ${tr.actor} · ${tr.from_state || "∅"} → ${tr.to_state}${tr.reason ? ` (${tr.reason})` : ""}` })));
  } catch { $("audit").replaceChildren(); }
}

async function save(event) {
  event.preventDefault();
  const body = draft();
  try {
    const item = state.item
      ? await api("content", `/v1/contents/${state.item.id}`, { method: "PATCH", body })
      : await api("content", "/v1/contents", { method: "POST", body });
    fill(item);
    say($("editor-status"), t("saved"));
    await loadContents();
  } catch (error) { showError(error, { status: $("editor-status"), fields: formField, root: $("content-form") }); }
}

async function transition(action, body) {
  if (!state.item) return;
  try {
    const item = await api("content", `/v1/contents/${state.item.id}/${action}`, { method: "POST", body });
    fill(item);
    say($("workflow-status"), t(`done_${action}`));
    await loadContents();
  } catch (error) {
    const violations = error.detail && error.detail.violations;
    if (violations) showViolations(violations);
    showError(error, { status: $("workflow-status"), fields: formField });
  }
}

async function loadContents() {
  const { items } = await api("content", "/v1/contents", { query: { limit: 100 } });
  $("content-rows").replaceChildren(...items.map(item => el("tr", {},
    el("td", {}, el("button", { type: "button", class: "secondary open", "data-id": item.id, text: item.title,
      onclick: async () => { fill(await api("content", `/v1/contents/${item.id}`)); $("title").focus(); } })),
    el("td", {}, el("span", { class: `badge ${item.state}`, text: t(`state_${item.state}`) })),
    el("td", { text: item.authors.join(", ") }),
    el("td", { text: new Date(item.updated_at).toLocaleString(currentLanguage()) }))));
}

// The org units this person may target, from distribution's directory (editors, approvers and admins
// may read it; a subsidiary-scoped editor gets his subtree); should it fail, codes are typed instead.
async function loadOrgTree() {
  try {
    const units = (await api("distribution", "/v1/directory/org")).subsidiaries;
    const children = (parent) => units.filter(u => (u.parent || null) === parent);
    const branch = (parent) => {
      const kids = children(parent);
      return kids.length ? el("ul", {}, kids.map(u => el("li", {},
        el("label", { class: "inline", for: `unit-${u.code}` },
          el("input", { type: "checkbox", id: `unit-${u.code}`, value: u.code, onchange: scheduleCheck }), `${u.name} (${u.code})`),
        branch(u.code)))) : null;
    };
    $("org-tree").replaceChildren(el("p", { class: "muted", text: t("org_tree") }), branch(null) || el("p", { text: "–" }));
  } catch {
    $("org-tree").replaceChildren(
      el("label", { for: "audience-subsidiaries", text: t("audience_subsidiaries") }),
      el("input", { type: "text", id: "audience-subsidiaries" }));
  }
}

async function loadKit() {
  try {
    const kit = await api("web", "/training");
    $("kit-en").value = kit.texts.en || "";
    $("kit-fr").value = kit.texts.fr || "";
  } catch (error) { showError(error, { status: $("kit-status") }); }
}

async function saveKit() {
  const texts = {};
  if ($("kit-en").value.trim()) texts.en = $("kit-en").value;
  if ($("kit-fr").value.trim()) texts.fr = $("kit-fr").value;
  try {
    const kit = await api("web", "/training", { method: "PUT", body: { texts } });
    say($("kit-status"), t("kit_saved", { version: kit.version }));
  } catch (error) { showError(error, { status: $("kit-status"), fields: (path) => path[0] === "texts" ? `kit-${path[1] || "en"}` : null }); }
}

let started = false;
async function render() {
  if (started) {  // a language switch keeps the draft: only the words change
    for (const n of NETWORKS) document.querySelector(`label[for=share-${n}]`).textContent = t("text_for", { network: t(`network_${n}`) });
    renderWorkflow(); applyI18n(document); return;
  }
  started = true;
  renderShareTexts();
  await loadOrgTree();
  fill(null);
  $("content-form").addEventListener("input", scheduleCheck);
  $("content-form").addEventListener("submit", save);
  $("new-content").addEventListener("click", () => { fill(null); $("title").focus(); });
  $("refresh-contents").addEventListener("click", loadContents);
  $("submit").addEventListener("click", () => transition("submit"));
  $("approve").addEventListener("click", () => transition("approve"));
  $("publish").addEventListener("click", () => transition("publish"));
  $("retire").addEventListener("click", () => transition("retire"));
  $("reject").addEventListener("click", () => transition("reject", { reason: $("reject-reason").value }));
  $("schedule").addEventListener("click", () => transition("schedule", {
    publish_at: fromLocalInput($("publish-at").value), expire_at: fromLocalInput($("expire-at").value) }));
  // The training kit is the tenant's: only a group-level editor or admin writes it.
  const writesKit = may("editor", "admin") && groupLevel();
  $("training-kit").hidden = !writesKit;
  $("save-kit").addEventListener("click", saveKit);
  await Promise.all([loadContents().catch(e => say($("editor-status"), explain(e), false)), writesKit ? loadKit() : null]);
  applyI18n(document);
}

startRolePage("studio", render);
