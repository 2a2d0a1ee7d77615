// Shared by every page: the session, calls through the same-origin proxy, the page header.
// Signed in means a session cookie the page cannot read (HttpOnly): no token lives in the page;
// the front holds the tokens and adds the bearer to the calls it forwards.
import { t, applyI18n, currentLanguage, setLanguage, LANGUAGES } from "./i18n.js";
import { explain } from "./errors.js";

let current = null;  // GET /auth/session: subject, tenant, roles, subsidiary, csrf_token, landing

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

// Back to the sign-in page, saying why, and where to come back to.
export function toSignIn(reason = "signed_out") {
  const here = location.pathname + location.search;
  const query = new URLSearchParams({ reason });
  if (location.pathname !== "/login") query.set("next", here);
  location.href = `/login?${query}`;
}

export async function logout() {
  let target = "/login?reason=logged_out";
  try {
    const response = await fetch("/auth/logout", { method: "POST", headers: csrfHeaders("POST"), credentials: "same-origin" });
    if (response.ok) target = (await response.json()).redirect || target;
  } catch { /* the front is unreachable: the page still leaves */ }
  current = null;
  location.href = target;
}

function csrfHeaders(method) {
  return UNSAFE.has(method) && current && current.csrf_token ? { "X-CSRF-Token": current.csrf_token } : {};
}

// Who is signed in (null before startPage loaded it, or when signed out).
export function session() { return current; }
export async function loadSession() {
  const response = await fetch("/auth/session", { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) { current = null; return { ok: false, status: response.status, detail: await detailOf(response) }; }
  current = await response.json();
  return { ok: true, session: current };
}

async function detailOf(response) {
  try { const body = await response.json(); return body.detail; } catch { return null; }
}

// message: a sentence for people in their language (errors.js), never the service's JSON.
export class ApiError extends Error {
  constructor(status, detail) {
    super(explain({ status, detail }));
    this.status = status; this.detail = detail;
  }
}

// A call to /api/{service}/{path}: JSON in, JSON (or text) out, errors as ApiError. The session
// cookie goes with it; changes carry the session's CSRF token. 401: back to the sign-in page.
export async function api(service, path, { method = "GET", body, query, raw = false } = {}) {
  const url = new URL(`/api/${service}${path}`, location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  const headers = { "Accept-Language": currentLanguage(), ...csrfHeaders(method) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, credentials: "same-origin",
                                      body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    const detail = await detailOf(response);
    toSignIn(detail && detail.reason === "expired" ? "expired" : "signed_out");
    throw new ApiError(401, t("signed_out"));
  }
  if (raw) { if (!response.ok) throw new ApiError(response.status, await response.text()); return response; }
  const type = response.headers.get("content-type") || "";
  const data = response.status === 204 ? null : type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, data && data.detail !== undefined ? data.detail : data);
  return data;
}

// A CSV (or any file) behind the session: fetched, then saved by the browser.
export async function download(service, path, query, filename) {
  const response = await api(service, path, { query, raw: true });
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link); link.click(); link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function say(element, message, ok = true) {
  element.textContent = message;
  element.className = `status ${ok ? "ok" : "bad"}`;
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function formatNumber(value) {
  if (value === null || value === undefined) return "–";
  return new Intl.NumberFormat(currentLanguage(), { maximumFractionDigits: 2 }).format(value);
}

// The sign-in page's frame: the brand and the language switch (the signed-in pages' frame,
// navigation and person, is shell.js's startRolePage).
export function startSignInPage(render) {
  const header = document.querySelector("header.top");
  if (header) header.replaceChildren(el("span", { class: "brand", text: "Portevoix" }), languageSwitch(render));
  applyI18n(document);
  render();
}

function languageSwitch(render) {
  const select = el("select", { id: "ui-language", "aria-label": t("language") },
    LANGUAGES.map(([code, name]) => el("option", { value: code, selected: code === currentLanguage() }, name)));
  select.addEventListener("change", () => { setLanguage(select.value); applyI18n(document); render(); });
  return select;
}
