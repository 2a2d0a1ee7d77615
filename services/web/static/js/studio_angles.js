// Several angles (share texts) per network and language, each with its character counter
// against the network's limit and a preview of how the post will look there.
import { el } from "./app.js";
import { t } from "./i18n.js";

export const NETWORKS = ["linkedin", "x", "facebook", "xing"];
export const LIMITS = { linkedin: 3000, x: 280 };
const X_URL_LENGTH = 23;  // X counts every link as 23 characters, whatever its length
const URL_PATTERN = /https?:\/\/[^\s]+/g;
const LINKEDIN_FOLD = 210;  // LinkedIn shows about this much before "…see more"
const LANGUAGE_CHOICES = ["fr", "en", "de", "es"];
const state = { angles: [], serial: 0, onChange: () => {}, context: () => ({}) };

// The length a network counts: on X, links weigh 23 and the shared link is added to the text.
export function countFor(network, text, link) {
  const chars = (s) => [...s].length;
  if (network !== "x") return chars(text);
  const links = text.match(URL_PATTERN) || [];
  const bare = chars(text.replace(URL_PATTERN, ""));
  const shared = link && !links.includes(link) ? 1 + X_URL_LENGTH : 0;
  return bare + links.length * X_URL_LENGTH + shared;
}

function angleId(angle) {
  const siblings = state.angles.filter(a => a.network === angle.network);
  const n = siblings.indexOf(angle);
  return n === 0 ? `share-${angle.network}` : `share-${angle.network}-${angle.serial}`;
}

function number(angle) { return state.angles.filter(a => a.network === angle.network).indexOf(angle) + 1; }

function counter(angle) {
  const { url } = state.context();
  const n = countFor(angle.network, angle.text, url);
  const limit = LIMITS[angle.network];
  if (!limit) return { text: t("counter_plain", { n }), over: false };
  return n > limit ? { text: t("counter_over", { n, limit, over: n - limit }), over: true }
    : { text: t("counter", { n, limit }), over: false };
}

function linkCard() {
  const { url, title, image_url, image_alt } = state.context();
  let host = "";
  try { host = new URL(url).hostname; } catch { /* not a URL yet */ }
  return el("div", { class: "link-card" },
    image_url ? el("img", { src: image_url, alt: image_alt || "", loading: "lazy" }) : null,
    el("div", { class: "link-title", text: title || "" }), el("div", { class: "muted", text: host }));
}

// The preview's text, with the charter's findings marked where they stand.
function marked(text, findings) {
  const parts = [];
  let at = 0;
  for (const f of [...findings].sort((a, b) => a.position - b.position)) {
    if (f.position < at) continue;
    const end = f.position + Math.max(f.length, 1);
    parts.push(text.slice(at, f.position), el("mark", { class: "violation", title: f.human, text: text.slice(f.position, end) }));
    at = end;
  }
  parts.push(text.slice(at));
  return parts;
}

export function renderPreview(angle, findings = []) {
  const id = angleId(angle);
  const preview = document.getElementById(`preview-${id}`);
  if (!preview) return;
  let text = angle.text;
  let folded = false;
  if (angle.network === "linkedin" && [...text].length > LINKEDIN_FOLD && !findings.length) {
    text = [...text].slice(0, LINKEDIN_FOLD).join(""); folded = true;
  }
  preview.replaceChildren(
    el("div", { class: "who", text: t("preview_you") }),
    el("div", { class: "post-text" }, marked(text, findings), folded ? el("span", { class: "muted", text: ` ${t("see_more")}` }) : null),
    linkCard());
  const count = counter(angle);
  const badge = document.getElementById(`count-${id}`);
  badge.textContent = count.text;
  badge.classList.toggle("over", count.over);
  document.getElementById(id).setAttribute("aria-invalid", count.over || findings.length ? "true" : "false");
}

function angleBlock(angle) {
  const id = angleId(angle);
  const network = t(`network_${angle.network}`);
  const n = number(angle);
  const textarea = el("textarea", { id, "data-network": angle.network, "aria-describedby": `count-${id} findings-${id}` });
  textarea.value = angle.text;
  textarea.addEventListener("input", () => { angle.text = textarea.value; renderPreview(angle); state.onChange(); });
  const language = el("select", { id: `language-${id}`, "aria-label": t("angle_language", { n }) },
    [...new Set([...LANGUAGE_CHOICES, angle.language])].map(code => el("option", { value: code, selected: code === angle.language }, code)));
  language.addEventListener("change", () => { angle.language = language.value; state.onChange(); });
  return el("div", { class: "angle", "data-network": angle.network },
    el("div", { class: "row" },
      el("label", { for: id, text: t("angle_n", { n, network }) }),
      language,
      el("button", { type: "button", class: "secondary remove-angle", "aria-label": t("remove_angle", { n, network }), text: "✕",
        onclick: () => { state.angles.splice(state.angles.indexOf(angle), 1); renderAngles(); state.onChange(); } })),
    textarea,
    el("p", { class: "counter", id: `count-${id}`, "aria-live": "polite" }),
    el("ul", { class: "field-violations", id: `findings-${id}` }),
    el("div", { class: `net-preview ${angle.network}`, id: `preview-${id}`, role: "group",
      "aria-label": t("preview_of", { network }) }));
}

export function renderAngles() {
  const container = document.getElementById("share-texts");
  container.replaceChildren(...NETWORKS.map(network => el("fieldset", { class: "network-angles", id: `angles-${network}` },
    el("legend", { text: t("angles_for", { network: t(`network_${network}`) }) }),
    network === "x" ? el("p", { class: "muted", text: t("counter_x_help") }) : null,
    state.angles.filter(a => a.network === network).map(angleBlock),
    el("button", { type: "button", class: "secondary add-angle", id: `add-angle-${network}`,
      text: t("add_angle", { network: t(`network_${network}`) }),
      onclick: () => { addAngle(network); renderAngles(); document.getElementById(angleId(state.angles.at(-1))).focus(); } }))));
  for (const angle of state.angles) renderPreview(angle);
}

function addAngle(network, language = state.context().language || "en", text = "") {
  state.angles.push({ network, language, text, serial: ++state.serial });
}

export function startAngles(onChange, context) {
  state.onChange = onChange;
  state.context = context;
}

// Angles from an item's share texts; every network gets at least one (empty) angle.
export function setAngles(shareTexts = [], language = "en") {
  state.angles = [];
  for (const s of shareTexts) addAngle(s.network, s.language, s.text);
  for (const network of NETWORKS) if (!state.angles.some(a => a.network === network)) addAngle(network, language);
  renderAngles();
}

// The share texts as the content API takes them (empty angles left out, variants numbered per
// network and language), and for each the id of its field, in the same order.
export function shareTexts() {
  const texts = [];
  const ids = [];
  const variants = {};
  for (const network of NETWORKS) {
    for (const angle of state.angles.filter(a => a.network === network && a.text.trim())) {
      const key = `${network}/${angle.language}`;
      variants[key] = (variants[key] ?? -1) + 1;
      texts.push({ network, language: angle.language, text: angle.text, variant: variants[key] });
      ids.push(angleId(angle));
    }
  }
  return { texts, ids };
}

export function angleById(id) { return state.angles.find(a => angleId(a) === id); }
export function refreshPreviews() { for (const angle of state.angles) renderPreview(angle); }
