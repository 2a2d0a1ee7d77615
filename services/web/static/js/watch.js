// The industry watch: the feeds a comms team watches, their health, and the curation queue
// whose entries an editor turns into drafts (with an angle) or dismisses.
import { api, el, say } from "./app.js";
import { startRolePage } from "./shell.js";
import { addTexts, currentLanguage, t } from "./i18n.js";

addTexts({
  en: { watch_title: "Industry watch", queue_title: "To curate", queue_help: "New entries of the feeds you watch, newest first, each story once.",
    sources_title: "Feeds we watch", source_url: "Feed address (RSS or Atom)", source_name: "Name", source_language: "Written in",
    source_tags: "Tags (comma-separated)", source_add: "Watch this feed", sources_caption: "Each feed's health: a failing feed is retried less and less often, then parked until you resume it.",
    health: "Health", last_polled: "Last read", actions: "Actions", health_pending: "Not read yet", health_ok: "Healthy",
    health_failing: "Failing", health_parked: "Parked", health_paused: "Paused", pause: "Pause", resume: "Resume", remove: "Stop watching",
    remove_confirm: "Stop watching {name}? Its entries waiting in the queue go too.", source_added: "Watching {name}: its entries arrive within minutes.",
    queue_empty: "Nothing to curate: new entries appear here.", angle: "Your angle (the text ambassadors start from)",
    angle_networks: "For", adopt: "Make it a draft", dismiss: "Not for us", adopted: "Draft created: finish it in the studio.",
    open_draft: "Open the draft", dismissed: "Dismissed.", also_in: "Also in {count} other feeds", from_feed: "From {name}",
    need_angle: "Write an angle first.", need_network: "Choose at least one network.", never: "never",
    image_alt: "What the image shows (for people who cannot see it)",
    invalid_url: "Enter the full address of the feed, starting with https://", invalid_name: "Give the feed a name." },
  fr: { watch_title: "Veille", queue_title: "À trier", queue_help: "Les nouveaux articles des flux suivis, les plus récents d'abord, chaque sujet une seule fois.",
    sources_title: "Flux suivis", source_url: "Adresse du flux (RSS ou Atom)", source_name: "Nom", source_language: "Langue",
    source_tags: "Étiquettes (séparées par des virgules)", source_add: "Suivre ce flux", sources_caption: "L'état de chaque flux : un flux en échec est relu de moins en moins souvent, puis mis de côté jusqu'à ce que vous le relanciez.",
    health: "État", last_polled: "Dernière lecture", actions: "Actions", health_pending: "Pas encore lu", health_ok: "En bonne santé",
    health_failing: "En échec", health_parked: "Mis de côté", health_paused: "En pause", pause: "Mettre en pause", resume: "Relancer",
    remove: "Ne plus suivre", remove_confirm: "Ne plus suivre {name} ? Ses articles en attente seront retirés.",
    source_added: "{name} est suivi : ses articles arrivent d'ici quelques minutes.", queue_empty: "Rien à trier : les nouveaux articles apparaîtront ici.",
    angle: "Votre angle (le texte dont partent les ambassadeurs)", angle_networks: "Pour", adopt: "En faire un brouillon", dismiss: "Pas pour nous",
    adopted: "Brouillon créé : terminez-le dans le studio.", open_draft: "Ouvrir le brouillon", dismissed: "Écarté.",
    also_in: "Aussi dans {count} autres flux", from_feed: "Source : {name}", need_angle: "Écrivez d'abord un angle.",
    need_network: "Choisissez au moins un réseau.", never: "jamais",
    image_alt: "Ce que montre l'image (pour qui ne peut pas la voir)", invalid_url: "Saisissez l'adresse complète du flux, commençant par https://",
    invalid_name: "Donnez un nom au flux." },
  de: { watch_title: "Branchenbeobachtung", queue_title: "Zu sichten", sources_title: "Beobachtete Feeds", source_add: "Feed beobachten",
    adopt: "Als Entwurf übernehmen", dismiss: "Nicht für uns", health_ok: "In Ordnung", health_failing: "Fehlerhaft", health_parked: "Geparkt",
    health_paused: "Pausiert", health_pending: "Noch nicht gelesen", resume: "Fortsetzen", pause: "Pausieren", remove: "Nicht mehr beobachten",
    queue_empty: "Nichts zu sichten: neue Einträge erscheinen hier.", need_angle: "Schreiben Sie zuerst einen Blickwinkel.",
    need_network: "Wählen Sie mindestens ein Netzwerk.", adopted: "Entwurf erstellt: im Studio fertigstellen." },
  es: { watch_title: "Vigilancia del sector", queue_title: "Por revisar", sources_title: "Fuentes vigiladas", source_add: "Vigilar esta fuente",
    adopt: "Convertir en borrador", dismiss: "No es para nosotros", health_ok: "Correcta", health_failing: "Con errores", health_parked: "Aparcada",
    health_paused: "En pausa", health_pending: "Aún no leída", resume: "Reanudar", pause: "Pausar", remove: "Dejar de vigilar",
    queue_empty: "Nada por revisar: las nuevas entradas aparecerán aquí.", need_angle: "Escriba primero un enfoque.",
    need_network: "Elija al menos una red.", adopted: "Borrador creado: termínelo en el estudio." },
});

const NETWORKS = ["linkedin", "x", "facebook", "xing"];
const $ = (id) => document.getElementById(id);
let sources = [];

const when = (iso) => iso ? new Date(iso).toLocaleString(currentLanguage()) : t("never");

async function loadSources() {
  sources = await api("content", "/v1/watch/sources");
  $("source-rows").replaceChildren(...sources.map(source => el("tr", {},
    el("td", {}, el("strong", { text: source.name }), el("br"), el("span", { class: "muted", text: source.url })),
    el("td", {}, el("span", { class: `badge ${source.health === "ok" ? "published" : ""}`, text: t(`health_${source.health}`) }),
      source.last_error ? el("p", { class: "status bad", text: source.last_error }) : null),
    el("td", { text: when(source.last_polled_at) }),
    el("td", {},
      source.health === "parked" || !source.active
        ? el("button", { type: "button", class: "secondary", text: t("resume"), onclick: () => edit(source, { resume: true, active: true }) })
        : el("button", { type: "button", class: "secondary", text: t("pause"), onclick: () => edit(source, { active: false }) }),
      el("button", { type: "button", class: "danger", text: t("remove"), onclick: () => remove(source) })))));
}

async function edit(source, change) {
  try { await api("content", `/v1/watch/sources/${source.id}`, { method: "PATCH", body: change }); await loadSources(); }
  catch (error) { say($("source-status"), error.message, false); }
}

async function remove(source) {
  if (!confirm(t("remove_confirm", { name: source.name }))) return;
  try { await api("content", `/v1/watch/sources/${source.id}`, { method: "DELETE" }); await refresh(); }
  catch (error) { say($("source-status"), error.message, false); }
}

function fieldError(id, message) {
  $(id).setAttribute("aria-invalid", message ? "true" : "false");
  $(`${id}-error`).textContent = message || "";
  return !message;
}

async function addSource(event) {
  event.preventDefault();
  const url = $("source-url").value.trim(), name = $("source-name").value.trim();
  const valid = [fieldError("source-url", /^https?:\/\/\S+$/.test(url) ? "" : t("invalid_url")),
                 fieldError("source-name", name ? "" : t("invalid_name"))].every(Boolean);
  if (!valid) return;
  const tags = $("source-tags").value.split(",").map(s => s.trim()).filter(Boolean);
  try {
    await api("content", "/v1/watch/sources", { method: "POST", body: { url, name, tags, language: $("source-language").value } });
    say($("source-status"), t("source_added", { name }));
    $("source-form").reset();
    await loadSources();
  } catch (error) {
    const field = (error.detail && Array.isArray(error.detail) && error.detail[0]?.loc?.at(-1)) || "";
    if (field === "url") fieldError("source-url", t("invalid_url"));
    else say($("source-status"), error.message, false);
  }
}

function suggestionCard(s) {
  const id = `angle-${s.id}`, status = el("p", { class: "status", role: "status", "aria-live": "polite" });
  const source = sources.find(x => x.id === s.source_id);
  const boxes = NETWORKS.map(n => el("label", { class: "inline" },
    el("input", { type: "checkbox", value: n, checked: n === "linkedin" }), t(`network_${n}`)));
  const angle = el("textarea", { id, maxlength: "10000" });
  const alt = s.image_url ? el("input", { type: "text", id: `alt-${s.id}`, maxlength: "1000", value: s.title }) : null;
  async function adopt() {
    const networks = boxes.map(b => b.querySelector("input")).filter(i => i.checked).map(i => i.value);
    if (!angle.value.trim()) { angle.setAttribute("aria-invalid", "true"); say(status, t("need_angle"), false); angle.focus(); return; }
    if (!networks.length) { say(status, t("need_network"), false); return; }
    try {
      const body = { angle: angle.value, networks, ...(alt && alt.value.trim() ? { image_alt: alt.value } : {}) };
      const draft = await api("content", `/v1/watch/suggestions/${s.id}/adopt`, { method: "POST", body });
      card.replaceChildren(el("h3", { text: s.title }), el("p", { class: "status ok", text: t("adopted") }),
        el("a", { class: "button", href: `/studio#${draft.id}`, text: t("open_draft") }));
    } catch (error) { say(status, error.message, false); }
  }
  async function dismiss() {
    try { await api("content", `/v1/watch/suggestions/${s.id}/dismiss`, { method: "POST" }); card.remove(); }
    catch (error) { say(status, error.message, false); }
  }
  const card = el("article", { class: "post" },
    s.image_url ? el("img", { src: s.image_url, alt: "", loading: "lazy", style: "max-width:100%;max-height:180px;border-radius:6px" }) : null,
    el("h3", {}, el("a", { href: s.link, target: "_blank", rel: "noopener", text: s.title })),
    el("p", { class: "muted", text: [source ? t("from_feed", { name: source.name }) : "", s.published_at ? when(s.published_at) : "",
      s.also_from.length ? t("also_in", { count: s.also_from.length }) : ""].filter(Boolean).join(" · ") }),
    s.summary ? el("p", { text: s.summary }) : null,
    alt ? el("label", { for: alt.id, text: t("image_alt") }) : null, alt,
    el("label", { for: id, text: t("angle") }), angle,
    el("fieldset", {}, el("legend", { text: t("angle_networks") }), boxes),
    el("button", { type: "button", text: t("adopt"), onclick: adopt }),
    el("button", { type: "button", class: "secondary", text: t("dismiss"), onclick: dismiss }),
    status);
  return card;
}

async function loadQueue() {
  const queue = await api("content", "/v1/watch/suggestions", { query: { state: "new" } });
  $("suggestions").replaceChildren(...(queue.length ? queue.map(suggestionCard) : [el("p", { class: "muted", text: t("queue_empty") })]));
}

async function refresh() {
  try { await loadSources(); await loadQueue(); }
  catch (error) { say($("queue-status"), error.message, false); }
}

startRolePage("watch", () => { refresh(); });
if ($("source-language").querySelector(`option[value="${currentLanguage()}"]`)) $("source-language").value = currentLanguage();
$("source-form").addEventListener("submit", addSource);
