// The group's offers to a subsidiary (the cascade): adopt as is, localise, or decline with a reason.
import { api, el, say } from "./app.js";
import { currentLanguage, t } from "./i18n.js";

const state = { open: () => {}, changed: () => {} };

function localiseForm(offer, status) {
  const item = offer.group_item;
  const id = offer.group_content_id;
  const title = el("input", { type: "text", id: `loc-title-${id}`, maxlength: 300 });
  title.value = item.title;
  const summary = el("textarea", { id: `loc-summary-${id}` });
  summary.value = item.summary || "";
  const texts = item.share_texts.map((s, i) => {
    const area = el("textarea", { id: `loc-text-${id}-${i}` });
    area.value = s.text;
    return [s, area];
  });
  const form = el("div", { class: "localise", hidden: true },
    el("p", { class: "muted", text: t("offer_localise_help") }),
    el("label", { for: title.id, text: t("title") }), title,
    el("label", { for: summary.id, text: t("summary") }), summary,
    texts.flatMap(([s, area], i) => [el("label", { for: `loc-text-${id}-${i}`, text: `${t(`network_${s.network}`)} (${s.language})` }), area]),
    el("button", { type: "button", class: "send-localised", text: t("offer_send"), onclick: () => answer(offer, "adopt", status, {
      title: title.value, summary: summary.value,
      share_texts: texts.map(([s, area]) => ({ ...s, text: area.value })) }) }));
  return form;
}

async function answer(offer, action, status, body) {
  try {
    const result = await api("content", `/v1/offers/${offer.group_content_id}/${action}`, { method: "POST", body });
    say(status, t(action === "decline" ? "offer_declined" : "offer_adopted"));
    await loadOffers();
    if (action === "adopt") { state.open(result.id); state.changed(); }
  } catch (error) { say(status, error.message, false); }
}

function offerCard(offer) {
  const item = offer.group_item || { title: offer.group_content_id, share_texts: [] };
  const id = offer.group_content_id;
  const status = el("p", { class: "status", role: "status", "aria-live": "polite" });
  const reason = el("input", { type: "text", id: `decline-reason-${id}` });
  const open = offer.status === "offered";
  const form = open ? localiseForm(offer, status) : null;
  return el("li", { class: "offer", "data-offer": id, "data-status": offer.status },
    el("h3", { text: item.title }),
    item.summary ? el("p", { text: item.summary }) : null,
    el("p", { class: "muted", text: `${t("offer_from", { who: offer.offered_by, when: new Date(offer.offered_at).toLocaleString(currentLanguage()) })} · ${t(`offer_status_${offer.status}`)}${offer.reason ? ` (${offer.reason})` : ""}` }),
    open ? el("div", {},
      el("button", { type: "button", class: "adopt", text: t("offer_adopt"), onclick: () => answer(offer, "adopt", status) }),
      el("button", { type: "button", class: "secondary localise-open", text: t("offer_localise"), "aria-expanded": "false",
        onclick: (e) => { form.hidden = !form.hidden; e.target.setAttribute("aria-expanded", String(!form.hidden)); } }),
      form,
      el("label", { for: reason.id, text: t("offer_reason") }), reason,
      el("button", { type: "button", class: "danger decline", text: t("offer_decline"), onclick: () => {
        if (reason.value.trim().length < 3) { say(status, t("offer_need_reason"), false); reason.setAttribute("aria-invalid", "true"); reason.focus(); return; }
        answer(offer, "decline", status, { reason: reason.value });
      } })) : null,
    offer.local_content_id ? el("button", { type: "button", class: "secondary", text: t("offer_open"), onclick: () => state.open(offer.local_content_id) }) : null,
    status);
}

export async function loadOffers() {
  const section = document.getElementById("offers");
  try {
    const { offers } = await api("content", "/v1/offers");
    document.getElementById("offer-list").replaceChildren(...(offers.length ? offers.map(offerCard)
      : [el("li", { class: "muted", text: t("offers_empty") })]));
    section.hidden = false;
  } catch { section.hidden = true; }
}

export function startOffers(open, changed) {
  state.open = open;
  state.changed = changed;
  return loadOffers();
}
