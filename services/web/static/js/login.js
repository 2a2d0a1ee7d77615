// Sign in: the demo's local login (when the front allows it), or a token from the IdP.
import { el, say, setToken, startPage } from "./app.js";
import { t } from "./i18n.js";

const ROLES = ["employee", "editor", "approver", "analyst", "admin"];
const $ = (id) => document.getElementById(id);

function landing(roles) {
  if (roles.includes("editor") || roles.includes("approver")) return "/studio";
  if (roles.includes("employee")) return "/";
  return "/dashboard";
}

async function signIn(event) {
  event.preventDefault();
  const roles = ROLES.filter(r => $(`role-${r}`).checked);
  const body = { tenant: $("tenant").value.trim(), subject: $("subject").value.trim(), roles,
                 subsidiary: $("subsidiary").value.trim() || null };
  const response = await fetch("/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) { say($("login-status"), typeof data.detail === "string" ? data.detail : t("login_invalid"), false); return; }
  setToken(data.token);
  location.href = landing(roles);
}

function useToken() {
  const value = $("token").value.trim();
  if (value.split(".").length !== 3) { say($("login-status"), t("login_invalid"), false); return; }
  setToken(value);
  location.href = "/";
}

let started = false;
async function render() {
  const checked = (r) => $(`role-${r}`) ? $(`role-${r}`).checked : r === "employee";  // kept across a language switch
  $("roles").replaceChildren(...ROLES.map(r => el("label", { class: "inline", for: `role-${r}` },
    el("input", { type: "checkbox", id: `role-${r}`, value: r, checked: checked(r) }), t(`role_${r}`))));
  if (started) return;
  started = true;
  $("login-form").addEventListener("submit", signIn);
  $("use-token").addEventListener("click", useToken);
  const config = await (await fetch("/api/web/config")).json();
  $("local-login").hidden = !config.local_login;
}

startPage("login", render);
