// Shared by every page: the token, calls through the same-origin proxy, the page header.
import { t, applyI18n, currentLanguage, setLanguage, LANGUAGES } from "./i18n.js";

const TOKEN_KEY = "portevoix.token";

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(value) { sessionStorage.setItem(TOKEN_KEY, value); }
export function logout() { sessionStorage.removeItem(TOKEN_KEY); location.href = "/login"; }

// The token's claims, for display and to show only what the roles allow (the services decide).
export function claims() {
  const value = token();
  if (!value) return null;
  try {
    const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const data = JSON.parse(decodeURIComponent(escape(atob(part))));
    return data.exp && data.exp * 1000 < Date.now() ? null : data;
  } catch { return null; }
}
export function hasRole(...roles) { const c = claims(); return !!c && roles.some(r => (c.roles || []).includes(r)); }

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(detail) || `HTTP ${status}`);
    this.status = status; this.detail = detail;
  }
}

function describe(detail) {
  if (!detail) return "";
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map(e => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
  return detail.message || JSON.stringify(detail);
}

// A call to /api/{service}/{path}: JSON in, JSON (or text) out, errors as ApiError.
export async function api(service, path, { method = "GET", body, query, raw = false } = {}) {
  const url = new URL(`/api/${service}${path}`, location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  const headers = { "Accept-Language": currentLanguage() };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) { logout(); throw new ApiError(401, t("signed_out")); }
  if (raw) { if (!response.ok) throw new ApiError(response.status, await response.text()); return response; }
  const type = response.headers.get("content-type") || "";
  const data = response.status === 204 ? null : type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, data && data.detail !== undefined ? data.detail : data);
  return data;
}

// A CSV (or any file) behind the bearer token: fetched, then saved by the browser.
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

// Header with navigation, user, language switch; redirects to /login when signed out.
export function startPage(page, render) {
  const c = claims();
  if (!c && page !== "login") { location.href = "/login"; return; }
  const header = document.querySelector("header.top");
  if (header && page !== "login") {
    const links = [["hub", "/"], ["studio", "/studio"], ["watch", "/watch"], ["dashboard", "/dashboard"]];
    header.replaceChildren(
      el("span", { class: "brand", text: "Portevoix" }),
      el("nav", { "aria-label": t("nav_label") }, links.map(([key, href]) =>
        el("a", { href, "aria-current": key === page ? "page" : null, "data-i18n": `nav_${key}` }))),
      el("span", { class: "who", text: `${c.sub} · ${c.tenant} · ${(c.roles || []).join(", ")}` }),
      languageSwitch(render),
      el("button", { type: "button", class: "secondary", id: "logout", "data-i18n": "logout", onclick: logout }));
  } else if (header) {
    header.replaceChildren(el("span", { class: "brand", text: "Portevoix" }), languageSwitch(render));
  }
  applyI18n(document);
  render();
}

function languageSwitch(render) {
  const select = el("select", { id: "language", "aria-label": t("language") },
    LANGUAGES.map(([code, name]) => el("option", { value: code, selected: code === currentLanguage() }, name)));
  select.addEventListener("change", () => { setLanguage(select.value); applyI18n(document); render(); });
  return select;
}
