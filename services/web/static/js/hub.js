// The ambassador hub: training kit, enrolment and consent, the feed with one-click shares,
// my results and the leaderboard, preferences, opt-out and erasure.
import { api, el, formatNumber, say } from "./app.js";
import { startRolePage } from "./shell.js";
import { clearErrors, showError } from "./errors.js";
import { t, currentLanguage, applyI18n } from "./i18n.js";

const NETWORKS = ["linkedin", "x", "facebook", "xing"];
const CHANNELS = ["in_app", "email", "email_digest", "slack", "teams"];
const MY_KPIS = ["shares", "clicks_total", "reactions", "comments", "reshares", "potential_reach"];
// The networks' share pages, as distribution builds them: rebuilt here when the text is edited.
const SHARE_INTENTS = {
  linkedin: (u) => `https://www.linkedin.com/sharing/share-offsite/?url=${u}`,
  x: (u, text) => `https://twitter.com/intent/tweet?text=${text}&url=${u}`,
  facebook: (u) => `https://www.facebook.com/sharer/sharer.php?u=${u}`,
  xing: (u) => `https://www.xing.com/spi/shares/new?url=${u}`,
};
const state = { training: null, consent: null };
const $ = (id) => document.getElementById(id);

function shareUrl(network, trackedUrl, text) {
  return SHARE_INTENTS[network](encodeURIComponent(trackedUrl), encodeURIComponent(text));
}
function linkCode(trackedUrl) { return new URL(trackedUrl).pathname.split("/").pop(); }
function trainingRead() { return state.training && state.training.read_version !== null; }
function enrolled() { return state.consent && state.consent.in_force; }

async function loadTraining() {
  state.training = await api("web", "/training", { query: { lang: currentLanguage() } });
  $("kit-text").textContent = state.training.text;
  $("kit-source").textContent = state.training.written_in_studio
    ? t("kit_by", { who: state.training.updated_by, version: state.training.version }) : t("kit_default");
  if (trainingRead()) say($("training-status"), t("read_on", { when: new Date(state.training.read_at).toLocaleString(currentLanguage()) }));
  else say($("training-status"), t("read_first"), false);
}

async function confirmRead() {
  try {
    await api("web", "/training/read", { method: "POST", body: { version: state.training.version } });
    await loadTraining();
    renderFeedGate();
  } catch (error) { say($("training-status"), error.message, false); }
}

async function loadEnrolment() {
  state.consent = await api("distribution", "/v1/me/consent");
  const body = $("enrolment-body");
  if (enrolled()) {
    const e = state.consent.enrolment;
    body.replaceChildren(
      el("p", { id: "enrolled-since", text: t("enrolled_since", {
        since: new Date(e.enrolled_at).toLocaleDateString(currentLanguage()),
        until: new Date(e.consent_expires_at).toLocaleDateString(currentLanguage()) }) }),
      el("p", { text: `${t("networks")}: ${Object.entries(e.networks).map(([n, s]) => `${n} (${formatNumber(s)})`).join(", ")}` }),
      el("button", { type: "button", class: "secondary", id: "opt-out", text: t("opt_out"), onclick: optOut }),
      eraseControls());
    return;
  }
  const current = state.consent.current_text;
  const version = current ? current.version : "web-1";
  const accept = el("input", { type: "checkbox", id: "accept-consent" });
  const enrol = el("button", { type: "button", id: "enrol", disabled: true, text: t("enrol") });
  accept.addEventListener("change", () => { enrol.disabled = !accept.checked; });
  enrol.addEventListener("click", () => enrolMe(version));
  body.replaceChildren(
    el("h3", { text: t("consent_title", { version }) }),
    el("div", { class: "kit", id: "consent-text", tabindex: "0", text: current ? current.text : t("consent_default") }),
    el("fieldset", {}, el("legend", { text: t("networks_legend") }), NETWORKS.map(networkChoice)),
    el("label", { class: "inline", for: "accept-consent" }, accept, t("accept_consent")),
    el("div", {}, enrol),
    eraseControls());
}

function networkChoice(network) {
  return el("div", { class: "row" },
    el("label", { class: "inline", for: `net-${network}` },
      el("input", { type: "checkbox", id: `net-${network}`, checked: network === "linkedin" }), t(`network_${network}`)),
    el("div", {}, el("label", { for: `reach-${network}`, text: t("audience_size", { network: t(`network_${network}`) }) }),
      el("input", { type: "number", id: `reach-${network}`, min: "0", value: "0" })));
}

async function enrolMe(version) {
  const networks = {};
  for (const n of NETWORKS) if ($(`net-${n}`).checked) networks[n] = Number($(`reach-${n}`).value || 0);
  try {
    await api("distribution", "/v1/me/enrolment", { method: "POST", body: { consent_text_version: version, channel: "web", networks } });
    say($("enrolment-status"), t("enrolled_ok"));
    await refreshAll();
  } catch (error) { say($("enrolment-status"), error.message, false); }
}

async function optOut() {
  try {
    await api("distribution", "/v1/me/enrolment", { method: "DELETE", query: { channel: "web" } });
    say($("enrolment-status"), t("opted_out"));
    await refreshAll();
  } catch (error) { say($("enrolment-status"), error.message, false); }
}

function eraseControls() {
  const confirm = el("button", { type: "button", class: "danger", id: "erase-confirm", hidden: true, text: t("erase_confirm") });
  const start = el("button", { type: "button", class: "secondary", id: "erase", text: t("erase"),
    onclick: () => { confirm.hidden = false; confirm.focus(); } });
  confirm.addEventListener("click", async () => {
    try {
      const done = await api("distribution", "/v1/me/erasure", { method: "POST" });
      say($("enrolment-status"), t("erased", { id: done.tombstone_id }));
      confirm.hidden = true;
    } catch (error) { say($("enrolment-status"), error.message, false); }
  });
  return el("p", {}, start, confirm);
}

async function loadFeed() {
  const list = $("feed-items");
  if (!enrolled()) { list.replaceChildren(el("p", { class: "muted", text: t("feed_enrol_first") })); return; }
  const feed = await api("distribution", "/v1/me/feed");
  if (!feed.items.length) { list.replaceChildren(el("p", { class: "muted", id: "feed-empty", text: t("feed_empty") })); return; }
  list.replaceChildren(...feed.items.map(post));
  renderFeedGate();
}

function post(item) {
  return el("article", { class: "post", "data-content": item.content_id },
    el("h3", { text: item.title }),
    el("p", {}, el("a", { href: item.url, target: "_blank", rel: "noopener", text: t("read_original") })),
    item.links.map(link => networkShare(item, link)));
}

function networkShare(item, link) {
  const id = `text-${item.notification_id}-${link.network}`;
  const name = t(`network_${link.network}`);
  const text = el("textarea", { id, "data-network": link.network }); text.value = link.text;
  const share = el("a", { class: "button share", "data-network": link.network, "data-href": link.share_url,
    href: link.share_url, target: "_blank", rel: "noopener", text: t("share_on", { network: name }) });
  text.addEventListener("input", () => {
    share.dataset.href = shareUrl(link.network, link.tracked_url, text.value);
    renderFeedGate();
  });
  const status = el("p", { class: "status", role: "status", "aria-live": "polite" });
  const copy = el("button", { type: "button", class: "secondary", text: t("copy_text"), onclick: async () => {
    try { await navigator.clipboard.writeText(text.value); say(status, t("copied")); } catch { text.select(); }
  } });
  const shared = el("button", { type: "button", class: "secondary shared", "data-network": link.network,
    text: t("i_shared"), onclick: async () => {
      try {
        const answer = await api("tracking", "/v1/shares", { method: "POST", body: { link_code: linkCode(link.tracked_url), network: link.network } });
        say(status, answer.counted ? t("share_counted") : t("share_known"));
      } catch (error) { say(status, error.message, false); }
    } });
  return el("div", { class: "network" },
    el("label", { for: id, text: t("text_for", { network: name }) }), text,
    el("p", { class: "muted", text: `${t("tracked_link")}: ${link.tracked_url}` }),
    share, copy, shared, status);
}

// Sharing needs the training kit read: the buttons say so instead of opening the network.
function renderFeedGate() {
  const allowed = trainingRead();
  for (const share of document.querySelectorAll("a.share")) {
    if (allowed) { share.href = share.dataset.href; share.removeAttribute("aria-disabled"); share.title = ""; }
    else { share.removeAttribute("href"); share.setAttribute("aria-disabled", "true"); share.title = t("read_first"); }
  }
  for (const button of document.querySelectorAll("button.shared")) button.disabled = !allowed;
}

async function loadResults() {
  if (!enrolled()) { $("my-kpis").replaceChildren(); $("leaderboard").replaceChildren(); return; }
  try {
    const results = await api("web", "/me/results");
    $("my-kpis").replaceChildren(...MY_KPIS.map(name => el("div", { class: "kpi", "data-kpi": name },
      el("div", { class: "value", text: formatNumber(results.kpis[name] ?? 0) }), el("div", { class: "name", text: t(`kpi_${name}`) }))));
    const rows = results.leaderboard.map(e => el("tr", { class: e.me ? "me" : null },
      el("td", { text: e.rank }), el("td", { text: e.me ? `${t("me")} (${e.label})` : e.label }), el("td", { text: formatNumber(e.value) })));
    $("leaderboard").replaceChildren(...(rows.length ? rows : [el("tr", { id: "leaderboard-empty" }, el("td", { colspan: "3", class: "muted", text: t("leaderboard_empty") }))]));
    say($("results-status"), "");
  } catch (error) { say($("results-status"), error.message, false); }
}

async function loadPreferences() {
  const boxes = CHANNELS.map(c => el("label", { class: "inline", for: `channel-${c}` },
    el("input", { type: "checkbox", id: `channel-${c}`, value: c }), t(`channel_${c}`)));
  $("channels").replaceChildren(...boxes);
  if (!enrolled()) { $("save-preferences").disabled = true; return; }
  $("save-preferences").disabled = false;
  const p = await api("distribution", "/v1/me/preferences");
  for (const c of CHANNELS) $(`channel-${c}`).checked = p.channels.includes(c);
  $("pref-languages").value = p.languages.join(", ");
  $("pref-topics").value = p.topics.join(", ");
  $("pref-max").value = p.max_per_day ?? "";
  $("pref-quiet-start").value = (p.quiet_start || "").slice(0, 5);
  $("pref-quiet-end").value = (p.quiet_end || "").slice(0, 5);
  $("pref-zone").value = p.time_zone;
  $("pref-named").checked = p.named_in_leaderboards;
  $("preferences-form").dataset.loaded = "true";
}

const PREFERENCE_FIELDS = { channels: "channels", languages: "pref-languages", topics: "pref-topics", max_per_day: "pref-max",
  quiet_start: "pref-quiet-start", quiet_end: "pref-quiet-end", time_zone: "pref-zone", named_in_leaderboards: "pref-named" };

async function savePreferences(event) {
  event.preventDefault();
  const list = (id) => $(id).value.split(",").map(s => s.trim()).filter(Boolean);
  const body = {
    channels: CHANNELS.filter(c => $(`channel-${c}`).checked), languages: list("pref-languages"), topics: list("pref-topics"),
    max_per_day: $("pref-max").value ? Number($("pref-max").value) : null,
    quiet_start: $("pref-quiet-start").value || null, quiet_end: $("pref-quiet-end").value || null,
    time_zone: $("pref-zone").value || "UTC", named_in_leaderboards: $("pref-named").checked,
  };
  clearErrors($("preferences-form"));
  try { await api("distribution", "/v1/me/preferences", { method: "PUT", body }); say($("preferences-status"), t("saved")); }
  catch (error) { showError(error, { status: $("preferences-status"), fields: PREFERENCE_FIELDS, root: $("preferences-form"),
                                     hints: { time_zone: "v_time_zone", languages: "v_language" } }); }
}

async function refreshAll() {
  try {
    await loadTraining();
    await loadEnrolment();
    await Promise.all([loadFeed(), loadResults(), loadPreferences()]);
  } catch (error) { say($("feed-status"), error.message, false); }
  applyI18n(document);
}

$("confirm-read").addEventListener("click", confirmRead);
$("refresh-feed").addEventListener("click", () => loadFeed().catch(e => say($("feed-status"), e.message, false)));
$("refresh-results").addEventListener("click", loadResults);
$("preferences-form").addEventListener("submit", savePreferences);
startRolePage("hub", refreshAll);
