// The ambassador hub, mobile first: the feed first (what is still live for me, rich cards, shares
// marked from the server), then whatever stands between me and sharing (enrolment with the consent
// text, the training kit in its current version), my results, preferences, opt-out and erasure,
// each with a confirmation.
import { api, el, formatNumber, say } from "./app.js";
import { t, currentLanguage, applyI18n } from "./i18n.js";
import { startRolePage } from "./shell.js";
import { clearErrors, showError } from "./errors.js";
import { card, myShares } from "./hub-cards.js";

const NETWORKS = ["linkedin", "x", "facebook", "xing"];
const CHANNELS = ["in_app", "email", "email_digest", "slack", "teams"];
const MY_KPIS = ["shares", "clicks_total", "reactions", "comments", "reshares", "potential_reach"];
const FEED_POLL_MS = 10_000;  // new posts appear without a tap while the hub is in view
const state = { training: null, consent: null, poll: null };
const $ = (id) => document.getElementById(id);

// Read, in the kit's current version: a new version is asked again of those who read an older one.
function trainingRead() {
  return !!state.training && state.training.read_version !== null && state.training.read_version >= state.training.version;
}
function enrolled() { return state.consent && state.consent.in_force; }

async function loadTraining() {
  state.training = await api("web", "/training", { query: { lang: currentLanguage() } });
  $("kit-text").textContent = state.training.text;
  $("kit-source").textContent = state.training.written_in_studio
    ? t("kit_by", { who: state.training.updated_by, version: state.training.version }) : t("kit_default");
  if (trainingRead()) say($("training-status"), t("read_on", { when: new Date(state.training.read_at).toLocaleString(currentLanguage()) }));
  else if (state.training.read_version !== null) say($("training-status"), t("kit_new_version", { version: state.training.version }), false);
  else say($("training-status"), t("read_first"), false);
  $("confirm-read").hidden = trainingRead();
}

async function confirmRead() {
  try {
    await api("web", "/training/read", { method: "POST", body: { version: state.training.version } });
    await loadTraining();
    arrange();
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
      confirmed("opt-out", t("opt_out"), t("opt_out_question"), t("opt_out_confirm"), optOut),
      confirmed("erase", t("erase"), t("erase_question"), t("erase_confirm"), erase));
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
    confirmed("erase", t("erase"), t("erase_question"), t("erase_confirm"), erase));
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

// A button whose action is asked again before it happens (opting out, erasing): a question, yes, cancel.
function confirmed(id, label, question, yes, action) {
  const box = el("div", { class: "confirm", id: `${id}-confirm-box`, role: "group", "aria-labelledby": `${id}-question`, hidden: true },
    el("p", { id: `${id}-question`, text: question }),
    el("button", { type: "button", class: "danger", id: `${id}-confirm`, text: yes, onclick: async () => { box.hidden = true; await action(); } }),
    el("button", { type: "button", class: "secondary", id: `${id}-cancel`, text: t("cancel"),
      onclick: () => { box.hidden = true; start.focus(); } }));
  const start = el("button", { type: "button", class: "secondary", id, text: label,
    onclick: () => { box.hidden = false; document.getElementById(`${id}-confirm`).focus(); } });
  return el("div", {}, start, box);
}

async function erase() {
  try {
    const done = await api("distribution", "/v1/me/erasure", { method: "POST" });
    say($("enrolment-status"), t("erased", { id: done.tombstone_id }));
    await refreshAll();
  } catch (error) { say($("enrolment-status"), error.message, false); }
}

async function loadFeed() {
  const list = $("feed-items");
  if (!enrolled()) {
    list.replaceChildren(el("p", { class: "muted", text: t("feed_enrol_first") }),
      el("a", { class: "button", href: "#enrolment", text: t("feed_go_enrol") }));
    return;
  }
  const [feed, shared] = await Promise.all([api("distribution", "/v1/me/feed"), myShares()]);
  if (!feed.items.length) { list.replaceChildren(el("p", { class: "muted", id: "feed-empty", text: t("feed_empty") })); return; }
  const shown = [...list.querySelectorAll("article.post")].map(a => a.dataset.content).join();
  if (shown === feed.items.map(i => i.content_id).join() && list.dataset.language === currentLanguage()) return;  // kept: edits survive
  list.dataset.language = currentLanguage();
  list.replaceChildren(...feed.items.map(item => card(item, shared)));
  renderFeedGate();
}

// The feed is read again every few seconds while the hub is in view (new posts, retractions).
function pollFeed() {
  clearTimeout(state.poll);
  state.poll = setTimeout(async () => {
    if (!document.hidden && enrolled()) await loadFeed().catch(() => {});
    pollFeed();
  }, FEED_POLL_MS);
}

// What stands between the person and sharing comes right after the feed (before, when not enrolled).
function arrange() {
  const main = document.querySelector("main"), feed = $("feed");
  if (!enrolled()) main.insertBefore($("enrolment"), feed);
  else feed.after($("enrolment"));
  if (enrolled() && !trainingRead()) feed.before($("training"));
  else $("enrolment").after($("training"));
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
  const channels = p.channels.length ? p.channels : ["in_app"];  // empty means the default: this hub
  for (const c of CHANNELS) $(`channel-${c}`).checked = channels.includes(c);
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
    arrange();
    await Promise.all([loadFeed(), loadResults(), loadPreferences()]);
  } catch (error) { say($("feed-status"), error.message, false); }
  applyI18n(document);
}

$("confirm-read").addEventListener("click", confirmRead);
$("refresh-feed").addEventListener("click", () => loadFeed().catch(e => say($("feed-status"), e.message, false)));
document.addEventListener("feed-gate", () => renderFeedGate());
pollFeed();
$("refresh-results").addEventListener("click", loadResults);
$("preferences-form").addEventListener("submit", savePreferences);
startRolePage("hub", refreshAll);
