// The calendar: what goes out, what leaves embargo and what expires, by week or by month, from
// content's list API (?due_from&due_to).
import { api, el, say } from "./app.js";
import { currentLanguage, t } from "./i18n.js";

const DAY_MS = 86_400_000;
const DUES = [["publish_at", "due_publish"], ["embargo_until", "due_embargo"], ["expire_at", "due_expire"]];
const state = { view: "week", anchor: new Date(), open: () => {} };

const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate());
const dayKey = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;

// [start, end) of the period shown: a week from Monday, or a calendar month.
export function period(view, anchor) {
  if (view === "month") return [new Date(anchor.getFullYear(), anchor.getMonth(), 1), new Date(anchor.getFullYear(), anchor.getMonth() + 1, 1)];
  const start = midnight(anchor);
  start.setDate(start.getDate() - ((start.getDay() + 6) % 7));
  const end = new Date(start);
  end.setDate(end.getDate() + 7);
  return [start, end];
}

function entries(items, start, end) {
  const byDay = new Map();
  for (const item of items) {
    for (const [field, label] of DUES) {
      if (!item[field]) continue;
      const at = new Date(item[field]);
      if (at < start || at >= end) continue;
      const key = dayKey(at);
      if (!byDay.has(key)) byDay.set(key, []);
      byDay.get(key).push({ at, label, item });
    }
  }
  for (const list of byDay.values()) list.sort((a, b) => a.at - b.at);
  return byDay;
}

async function load() {
  const [start, end] = period(state.view, state.anchor);
  const language = currentLanguage();
  const format = { day: "numeric", month: "long", year: "numeric" };
  document.getElementById("calendar-period").textContent = state.view === "month"
    ? start.toLocaleDateString(language, { month: "long", year: "numeric" })
    : `${start.toLocaleDateString(language, format)} – ${new Date(end - DAY_MS).toLocaleDateString(language, format)}`;
  try {
    const { items } = await api("content", "/v1/contents", { query: { due_from: start.toISOString(), due_to: end.toISOString(), limit: 500 } });
    const byDay = entries(items, start, end);
    const days = [];
    for (let d = new Date(start); d < end; d.setDate(d.getDate() + 1)) days.push(new Date(d));
    const shown = days.filter(d => state.view === "week" || byDay.has(dayKey(d)));
    document.getElementById("calendar-days").replaceChildren(...(shown.length ? shown.map(d => el("li", { class: "day", "data-day": dayKey(d) },
      el("h3", { text: d.toLocaleDateString(language, { weekday: "long", day: "numeric", month: "long" }) }),
      el("ul", {}, (byDay.get(dayKey(d)) || []).map(e => el("li", { class: `due ${e.label}` },
        el("span", { class: "badge", text: `${e.at.toLocaleTimeString(language, { hour: "2-digit", minute: "2-digit" })} · ${t(e.label)}` }), " ",
        el("button", { type: "button", class: "secondary open-due", text: e.item.title, onclick: () => state.open(e.item.id) }),
        " ", el("span", { class: "muted", text: t(`state_${e.item.state}`) })))))) : [el("li", { class: "muted", text: t("calendar_empty") })]));
    say(document.getElementById("calendar-status"), "");
  } catch (error) { say(document.getElementById("calendar-status"), error.message, false); }
}

function move(step) {
  if (state.view === "month") state.anchor = new Date(state.anchor.getFullYear(), state.anchor.getMonth() + step, 1);
  else state.anchor = new Date(state.anchor.getTime() + step * 7 * DAY_MS);
  load();
}

export function startCalendar(open) {
  state.open = open;
  document.getElementById("calendar-view").addEventListener("change", (e) => { state.view = e.target.value; load(); });
  document.getElementById("calendar-prev").addEventListener("click", () => move(-1));
  document.getElementById("calendar-next").addEventListener("click", () => move(1));
  document.getElementById("calendar-today").addEventListener("click", () => { state.anchor = new Date(); load(); });
  return load();
}

export { load as refreshCalendar };
