// The comms studio: angles per network and language with counters and previews, an image with
// its alt text, the live charter check named humanly next to each field, the four-eyes review,
// schedule and expiry, the audience picker over the org tree, the calendar, the group's offers,
// and the training kit.
import { api, el, say } from "./app.js";
import { showError } from "./errors.js";
import { groupLevel, may, session, startRolePage } from "./shell.js";
import { t, currentLanguage, applyI18n } from "./i18n.js";
import "./studio_texts.js";
import { loadAudience, audienceValue, setAudience } from "./studio_audience.js";
import { LIMITS, angleById, refreshPreviews, renderAngles, renderPreview, setAngles, shareTexts, startAngles } from "./studio_angles.js";
import { refreshCalendar, startCalendar } from "./studio_calendar.js";
import { startOffers } from "./studio_offers.js";

const CHECK_DELAY_MS = 400;
const FIELDS = ["title", "summary", "url", "image_url"];
const $ = (id) => document.getElementById(id);
const state = { item: null, shareIds: [], timer: null, checkSeq: 0, charter: null };
const list = (id) => $(id).value.split(",").map(s => s.trim()).filter(Boolean);

function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}
const fromLocalInput = (value) => value ? new Date(value).toISOString() : null;

// The draft as the content API takes it.
function draft() {
  const { texts, ids } = shareTexts();
  state.shareIds = ids;
  return {
    title: $("title").value, summary: $("summary").value, url: $("url").value, language: $("language").value,
    image_url: $("image-url").value.trim() || null, image_alt: $("image-alt").value.trim() || null,
    tags: list("tags"), campaign: $("campaign").value || null, audience: audienceValue(),
    share_texts: texts, publish_at: fromLocalInput($("publish-at").value), expire_at: fromLocalInput($("expire-at").value),
  };
}

// A 422's field path (["share_texts", 1, "text"], ["audience", "groups"]) → the element showing it.
const FORM_FIELDS = { publish_at: "publish-at", expire_at: "expire-at", image_url: "image-url", image_alt: "image-alt",
                      audience: "audience-picker", reason: "reject-reason" };
function formField(path) {
  if (path[0] === "share_texts" && typeof path[1] === "number") return state.shareIds[path[1]] || null;
  return FORM_FIELDS[path.join(".")] || FORM_FIELDS[path[0]] || (path.length === 1 ? path[0] : null);
}

// Field of a violation ("title", "share_texts[1].text", "image_url") → the id of the element showing it.
function fieldId(field) {
  const share = /^share_texts\[(\d+)\]/.exec(field);
  if (share) return state.shareIds[Number(share[1])];
  return field === "image_url" ? "image-url" : field;
}

// A violation in words: the rule's name and what is wrong, in the person's language.
function human(v, text) {
  const found = text.slice(v.position, v.position + Math.max(v.length, 1)) || text;
  const charter = state.charter || {};
  const network = (/^share-(\w+)/.exec(fieldId(v.field)) || [])[1];
  const why = {
    forbidden_terms: () => t("why_forbidden_terms", { found }),
    required_spellings: () => t("why_required_spellings", { found }),
    allowed_link_domains: () => t("why_allowed_link_domains", { found }),
    max_length: () => t("why_max_length", { n: [...text].length, limit: (charter.max_length || {})[network] ?? LIMITS[network] ?? "" }),
    mandatory_disclosure: () => charter.mandatory_disclosure ? t("why_mandatory_disclosure", { text: charter.mandatory_disclosure })
      : t("why_mandatory_disclosure_plain"),
  }[v.rule];
  return { name: t(`rule_${v.rule}`), why: why ? why() : "" };
}

function fieldLabel(id) {
  const network = (/^share-(\w+)/.exec(id) || [])[1];
  if (network) return `${t("field_share")} (${t(`network_${network}`)})`;
  return t(`field_${id === "image-url" ? "image_url" : id}`);
}

function showViolations(violations) {
  const byField = new Map();
  for (const v of violations) {
    const id = fieldId(v.field);
    const text = id && $(id) ? $(id).value : "";
    const words = human(v, text);
    const finding = { ...v, id, human: `${words.name}: ${words.why}`, words };
    if (!byField.has(id)) byField.set(id, []);
    byField.get(id).push(finding);
  }
  const fieldIds = [...FIELDS.map(f => f === "image_url" ? "image-url" : f), ...state.shareIds,
                    ...[...document.querySelectorAll("#share-texts textarea")].map(a => a.id)];
  for (const id of new Set(fieldIds)) {
    const found = byField.get(id) || [];
    const angle = angleById(id);
    if (angle) renderPreview(angle, found);
    else if ($(id)) $(id).setAttribute("aria-invalid", found.length ? "true" : "false");
    const preview = $(`preview-${id}`);
    if (preview && !angle) {
      preview.hidden = !found.length;
      preview.replaceChildren(...(found.length ? highlight($(id).value, found) : []));
    }
    const box = $(`findings-${id}`);
    if (box) box.replaceChildren(...found.map(f => el("li", { "data-rule": f.rule },
      el("strong", { text: `${f.words.name}: ` }), f.words.why)));
  }
  $("violations").replaceChildren(...[...byField.values()].flat().map(f => el("li", { "data-rule": f.rule },
    el("strong", { text: `${fieldLabel(f.id)} · ${f.words.name}: ` }), f.words.why)));
}

function highlight(text, ranges) {
  const parts = [];
  let at = 0;
  for (const r of [...ranges].sort((a, b) => a.position - b.position)) {
    if (r.position < at) continue;
    parts.push(text.slice(at, r.position));
    parts.push(el("mark", { class: "violation", title: r.human, text: text.slice(r.position, r.position + Math.max(r.length, 1)) }));
    at = r.position + Math.max(r.length, 1);
  }
  parts.push(text.slice(at));
  return parts;
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
  setAngles(item ? item.share_texts : [], $("language").value);
  $("image-url").value = item ? item.image_url || "" : "";
  $("image-alt").value = item ? item.image_alt || "" : "";
  showImage();
  $("publish-at").value = toLocalInput(item && item.publish_at);
  $("expire-at").value = toLocalInput(item && item.expire_at);
  setAudience(item ? item.audience : {});
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
  if (altMissing()) { $("image-alt").focus(); return; }
  const body = draft();
  try {
    const item = state.item
      ? await api("content", `/v1/contents/${state.item.id}`, { method: "PATCH", body })
      : await api("content", "/v1/contents", { method: "POST", body });
    fill(item);
    say($("editor-status"), t("saved"));
    await Promise.all([loadContents(), refreshCalendar()]);
  } catch (error) { showError(error, { status: $("editor-status"), fields: formField, root: $("content-form") }); }
}

async function transition(action, body) {
  if (!state.item) return;
  try {
    const item = await api("content", `/v1/contents/${state.item.id}/${action}`, { method: "POST", body });
    fill(item);
    say($("workflow-status"), t(`done_${action}`));
    await Promise.all([loadContents(), refreshCalendar()]);
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
      onclick: () => open(item.id) })),
    el("td", {}, el("span", { class: `badge ${item.state}`, text: t(`state_${item.state}`) })),
    el("td", { text: item.authors.join(", ") }),
    el("td", { text: new Date(item.updated_at).toLocaleString(currentLanguage()) }))));
}

// The image: an address, or an uploaded file (sent as base64; the content service checks what it is).
function showImage() {
  const url = $("image-url").value.trim();
  $("image-preview").replaceChildren(...(url ? [el("img", { src: url, alt: $("image-alt").value })] : []));
  $("image-alt").required = !!url;
  refreshPreviews();
}

async function uploadImage() {
  const file = $("image-file").files[0];
  if (!file) return;
  const data = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
  try {
    const image = await api("content", "/v1/images", { method: "POST", body: { data } });
    $("image-url").value = `${location.origin}/api/content${image.path}`;
    say($("image-status"), t("image_uploaded"));
    showImage();
    scheduleCheck();
    if (!$("image-alt").value.trim()) $("image-alt").focus();
  } catch (error) {
    const reason = Array.isArray(error.detail) && error.detail[0] && error.detail[0].ctx && error.detail[0].ctx.reason;
    const known = { too_large: "image_too_large", unsupported_type: "image_bad_type" }[reason];
    say($("image-status"), known ? t(known) : error.message, false);
    if (error.status === 413) say($("image-status"), t("image_too_large"), false);
  }
  $("image-file").value = "";
}

function altMissing() {
  const missing = !!$("image-url").value.trim() && !$("image-alt").value.trim();
  $("image-alt").setAttribute("aria-invalid", missing ? "true" : "false");
  say($("image-alt-error"), missing ? t("image_alt_needed") : "", !missing);
  return missing;
}

async function loadCharter() {
  const subsidiary = session.me.subsidiary;
  try {
    state.charter = (await api("content", "/v1/admin/charter", { query: { subsidiary } })).effective;
  } catch { state.charter = null; }
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
  } catch (error) {
    showError(error, { status: $("kit-status"), fields: (path) => path[0] === "texts" ? `kit-${path[1] || "en"}` : null });
  }
}

async function open(id) {
  fill(await api("content", `/v1/contents/${id}`));
  $("title").focus();
}

let started = false;
async function render() {
  if (started) {  // a language switch keeps the draft: only the words change
    renderAngles(); renderWorkflow(); applyI18n(document); refreshCalendar(); return;
  }
  started = true;
  startAngles(scheduleCheck, () => ({ url: $("url").value, title: $("title").value, language: $("language").value,
                                      image_url: $("image-url").value.trim(), image_alt: $("image-alt").value }));
  await Promise.all([loadAudience($("audience-picker"), scheduleCheck), loadCharter()]);
  fill(null);
  $("content-form").addEventListener("input", scheduleCheck);
  $("content-form").addEventListener("submit", save);
  for (const id of ["title", "url"]) $(id).addEventListener("input", refreshPreviews);
  $("image-url").addEventListener("change", showImage);
  $("image-alt").addEventListener("input", () => { altMissing(); showImage(); });
  $("image-file").addEventListener("change", uploadImage);
  $("image-remove").addEventListener("click", () => { $("image-url").value = ""; $("image-alt").value = ""; showImage(); altMissing(); scheduleCheck(); });
  $("new-content").addEventListener("click", () => { fill(null); $("title").focus(); });
  $("refresh-contents").addEventListener("click", loadContents);
  $("submit").addEventListener("click", () => transition("submit"));
  $("approve").addEventListener("click", () => transition("approve"));
  $("publish").addEventListener("click", () => transition("publish"));
  $("retire").addEventListener("click", () => transition("retire"));
  $("reject").addEventListener("click", () => transition("reject", { reason: $("reject-reason").value }));
  $("schedule").addEventListener("click", () => transition("schedule", {
    publish_at: fromLocalInput($("publish-at").value), expire_at: fromLocalInput($("expire-at").value) }));
  $("save-kit").addEventListener("click", saveKit);
  // The training kit is the tenant's: only a group-level editor or admin writes it.
  const writesKit = may("editor", "admin") && groupLevel();
  $("training-kit").hidden = !writesKit;
  const subsidiary = session.me.subsidiary;
  await Promise.all([loadContents().catch(e => say($("editor-status"), e.message, false)), writesKit ? loadKit() : null,
                     startCalendar(open), subsidiary ? startOffers(open, loadContents) : null]);
  applyI18n(document);
}

startRolePage("studio", render);
