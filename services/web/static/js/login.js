// Sign in: with the company's identity provider (OIDC, when configured), the demo's local login
// (when the front allows it), or a token. Each ends in the same session cookie; the page never
// sees a token it could keep. Why the person is here (?reason=, ?error=) is always said.
import { el, say, startSignInPage } from "./app.js";
import { t } from "./i18n.js";

const ROLES = ["employee", "editor", "approver", "analyst", "admin"];
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// Only a page of this front (never another site) to come back to.
function next() {
  const value = params.get("next") || "";
  return value.startsWith("/") && !value.startsWith("//") && !value.startsWith("/\\") && !value.startsWith("/login") ? value : null;
}

function message() {
  const reason = params.get("reason"), error = params.get("error");
  if (error) return [t(`login_error_${error}`) === `login_error_${error}` ? t("login_error_failed") : t(`login_error_${error}`), false];
  if (reason === "expired") return [t("login_reason_expired"), false];
  if (reason === "signed_out") return [t("login_reason_signed_out"), false];
  if (reason === "logged_out") return [t("login_reason_logged_out"), true];
  return null;
}

function showMessage() {
  const shown = message(), box = $("login-message");
  box.hidden = !shown;
  if (shown) { say(box, shown[0], shown[1]); box.classList.add("wide"); }
}

function refusal(data, fallback) {
  const detail = data && data.detail;
  if (typeof detail === "string") return detail;
  if (detail && detail.message) return `${t(fallback)}: ${detail.message}`;
  return t(fallback);
}

async function post(url, body) {
  const response = await fetch(url, { method: "POST", credentials: "same-origin",
                                      headers: { "Content-Type": "application/json", Accept: "application/json" },
                                      body: JSON.stringify(body) });
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: said below */ }
  return { response, data };
}

async function signIn(event) {
  event.preventDefault();
  const roles = ROLES.filter(r => $(`role-${r}`).checked);
  const body = { tenant: $("tenant").value.trim(), subject: $("subject").value.trim(), roles,
                 subsidiary: $("subsidiary").value.trim() || null };
  try {
    const { response, data } = await post("/login", body);
    if (!response.ok) { say($("login-status"), refusal(data, "login_invalid"), false); return; }
    location.href = next() || data.landing;
  } catch { say($("login-status"), t("login_unreachable"), false); }
}

async function useToken(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  if (value.split(".").length !== 3) { say($("token-status"), t("login_token_malformed"), false); return; }
  try {
    const { response, data } = await post("/auth/token", { token: value });
    $("token").value = "";  // never kept in the page
    if (!response.ok) { say($("token-status"), refusal(data, "login_token_refused"), false); return; }
    location.href = next() || data.landing;
  } catch { say($("token-status"), t("login_unreachable"), false); }
}

let started = false;
async function render() {
  const checked = (r) => $(`role-${r}`) ? $(`role-${r}`).checked : r === "employee";  // kept across a language switch
  $("roles").replaceChildren(...ROLES.map(r => el("label", { class: "inline", for: `role-${r}` },
    el("input", { type: "checkbox", id: `role-${r}`, value: r, checked: checked(r) }), t(`role_${r}`))));
  showMessage();
  if (started) return;
  started = true;
  $("login-form").addEventListener("submit", signIn);
  $("token-form").addEventListener("submit", useToken);
  if (next()) $("oidc-sign-in").href = `/auth/login?${new URLSearchParams({ next: next() })}`;
  try {
    const config = await (await fetch("/api/web/config")).json();
    $("local-login").hidden = !config.local_login;
    $("oidc-login").hidden = !config.oidc;
    $("token-details").open = !config.local_login && !config.oidc;
  } catch { say($("login-message"), t("login_unreachable"), false); $("login-message").classList.add("wide"); $("login-message").hidden = false; }
}

startSignInPage(render);
