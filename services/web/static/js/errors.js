// Errors for people: every API error becomes a sentence in the person's language, placed next to
// the field it concerns (FastAPI/pydantic 422 `detail[].loc` → the form field), never raw JSON.
import { currentLanguage, t } from "./i18n.js";

// pydantic error types → a sentence key (its ctx gives {min}, {max}…).
const VALIDATION = {
  missing: "v_missing", string_too_short: "v_too_short", string_too_long: "v_too_long",
  too_short: "v_list_too_short", too_long: "v_list_too_long",
  url_parsing: "v_url", url_scheme: "v_url", url_type: "v_url",
  int_parsing: "v_int", int_type: "v_int", int_from_float: "v_int", float_parsing: "v_number", float_type: "v_number",
  greater_than_equal: "v_min", greater_than: "v_min", less_than_equal: "v_max", less_than: "v_max",
  literal_error: "v_choice", enum: "v_choice", string_pattern_mismatch: "v_pattern",
  datetime_parsing: "v_date", datetime_from_date_parsing: "v_date", date_parsing: "v_date", time_parsing: "v_time",
  timezone_aware: "v_date", bool_parsing: "v_choice", extra_forbidden: "v_invalid", json_invalid: "v_invalid",
};

const ROLE_NAMES = ["employee", "editor", "approver", "analyst", "admin", "privacy_officer"];

// ["admin", "editor"] → "Editor or Administrator", in the person's language.
export function roleNames(roles) {
  const ordered = [...roles].sort((a, b) => (ROLE_NAMES.indexOf(a) + 1 || 99) - (ROLE_NAMES.indexOf(b) + 1 || 99));
  const names = ordered.map(r => ROLE_NAMES.includes(r) ? t(`role_${r}`) : r);
  return new Intl.ListFormat(currentLanguage(), { type: "disjunction" }).format(names);
}

function reasonOf(detail) {
  return detail && typeof detail === "object" && !Array.isArray(detail) ? detail.reason : undefined;
}

// The sentence for an error that concerns no field (or the whole form).
export function explain(error) {
  if (!error || error.status === undefined) return t("err_network");
  const { status, detail } = error;
  const reason = reasonOf(detail);
  if (reason && t(`err_${reason}`) !== `err_${reason}`) return t(`err_${reason}`);
  if (status === 403 && typeof detail === "string" && detail.startsWith("requires one of the roles:")) {
    return t("err_role", { roles: roleNames(detail.split(":")[1].split(",").map(s => s.trim())) });
  }
  if (status === 422 && Array.isArray(detail)) return t("err_status_422");
  if (status === 422 && detail && Array.isArray(detail.violations)) return t("err_charter", { n: detail.violations.length });
  if (status === 409 && detail && detail.state) return t("err_state", { state: t(`state_${detail.state}`) });
  const known = [400, 401, 403, 404, 409, 413, 422, 429];
  if (known.includes(status)) return t(`err_status_${status}`);
  if (status >= 500) return t("err_status_5xx");
  return t("err_status_400");
}

// One pydantic error → its sentence.
export function fieldMessage(entry) {
  const key = VALIDATION[entry.type] || (String(entry.type || "").startsWith("value_error") ? "v_invalid" : "v_invalid");
  const ctx = entry.ctx || {};
  if (entry.type === "string_too_short" && ctx.min_length === 1) return t("v_missing");
  return t(key, { min: ctx.min_length ?? ctx.ge ?? ctx.gt ?? "", max: ctx.max_length ?? ctx.le ?? ctx.lt ?? "" });
}

// `loc` (["body", "share_texts", 1, "text"], ["query", "month"]) → [an element of the page, its path].
function fieldOf(loc, fields) {
  const path = (loc || []).filter((p, i) => !(i === 0 && ["body", "query", "path"].includes(p)));
  for (let n = path.length; n > 0; n--) {
    const key = path.slice(0, n).join(".");
    const target = typeof fields === "function" ? fields(path.slice(0, n)) : fields[key];
    const node = typeof target === "string" ? document.getElementById(target) : target;
    if (node) return [node, key];
  }
  return [null, ""];
}

export function clearErrors(root = document) {
  for (const node of root.querySelectorAll(".field-error")) node.remove();
  for (const node of root.querySelectorAll("[data-error-shown]")) {
    node.removeAttribute("aria-invalid"); node.removeAttribute("data-error-shown");
    const described = (node.getAttribute("aria-describedby") || "").split(" ").filter(id => !id.endsWith("-error")).join(" ");
    if (described) node.setAttribute("aria-describedby", described); else node.removeAttribute("aria-describedby");
  }
}

// A sentence under a field, tied to it for screen readers.
export function markField(node, message) {
  const id = `${node.id || "field"}-error`;
  document.getElementById(id)?.remove();
  const note = document.createElement("p");
  Object.assign(note, { id, className: "field-error", textContent: message });
  node.setAttribute("aria-invalid", "true");
  node.setAttribute("data-error-shown", "");
  node.setAttribute("aria-describedby", [...(node.getAttribute("aria-describedby") || "").split(" ").filter(Boolean), id].join(" "));
  (node.closest("label.inline") || node).after(note);
  return note;
}

// Show an API error: 422 entries beside their fields (those without a field in the status line),
// anything else as a sentence in `status`. `fields` maps a loc path ("month", "share_texts.1.text")
// to an element id, or is a function of the path; `hints` maps a path to the sentence key said when
// its value is refused by a rule of the service's own (pydantic's value_error); `otherwise`
// ([element id, sentence key]) places a 422 entry that names no field (a service's own check,
// answered with loc ["request"]).
export function showError(error, { status, fields = {}, hints = {}, otherwise, root = document } = {}) {
  clearErrors(root);
  const rest = [];
  const detail = error && error.detail;
  if (error && error.status === 422 && Array.isArray(detail)) {
    let first = null;
    for (const entry of detail) {
      let [node, path] = fieldOf(entry.loc, fields);
      let message = hints[path] && !["missing", "string_too_long"].includes(entry.type) ? t(hints[path]) : fieldMessage(entry);
      if (!node && otherwise && document.getElementById(otherwise[0])) {  // e.g. loc ["request"]: a check of the service's
        [node, message] = [document.getElementById(otherwise[0]), t(otherwise[1])];
      }
      if (node) { markField(node, message); first = first || node; } else rest.push(message);
    }
    if (first && !rest.length) { sayBad(status, t("err_status_422")); return; }
  }
  const sentence = rest.length ? `${t("err_status_422")} ${rest.join(" ")}` : explain(error);
  sayBad(status, sentence);
}

function sayBad(status, message) {
  if (!status) return;
  status.textContent = message;
  status.className = "status bad";
}
