// The frame of every signed-in page: who is signed in (GET /api/web/me), a navigation showing
// only the pages his roles may open, a page his roles may not open replaced by a sentence naming
// the missing role, and a page that never goes blank (any unexpected error becomes a sentence).
import { api, el, loadSession, logout, toSignIn } from "./app.js";
import { t, applyI18n, currentLanguage, setLanguage, LANGUAGES } from "./i18n.js";
import { explain, roleNames } from "./errors.js";

export const session = { me: null };

export function may(...roles) { return !!session.me && roles.some(r => session.me.roles.includes(r)); }
export function groupLevel() { return !!session.me && session.me.subsidiary === null; }

function banner(message) {
  let box = document.getElementById("page-error");
  if (!box) {
    box = el("div", { id: "page-error", class: "page-error", role: "alert" });
    (document.querySelector("main") || document.body).prepend(box);
  }
  box.textContent = message;
}

// Never a blank page: whatever escapes a page's own handling is said, in the person's language.
window.addEventListener("error", () => banner(t("error_banner")));
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  banner(reason && reason.status !== undefined ? explain(reason) : t("error_banner"));
});

function header(page, render) {
  const me = session.me;
  const links = me.pages.filter(p => p.allowed);
  document.querySelector("header.top").replaceChildren(
    el("span", { class: "brand", text: "Portevoix" }),
    links.length ? el("nav", { "aria-label": t("nav_label") }, links.map(p =>
      el("a", { href: p.path, "aria-current": p.page === page ? "page" : null, "data-i18n": `nav_${p.page}` }))) : null,
    el("span", { class: "who", text: `${me.subject} · ${me.tenant}${me.subsidiary ? ` · ${me.subsidiary}` : ""}` }),
    languageSwitch(page, render),
    el("button", { type: "button", class: "secondary", id: "logout", "data-i18n": "logout", onclick: () => logout() }));
}

function languageSwitch(page, render) {
  const select = el("select", { id: "ui-language", "aria-label": t("language") },
    LANGUAGES.map(([code, name]) => el("option", { value: code, lang: code, selected: code === currentLanguage() }, name)));
  select.addEventListener("change", () => {
    setLanguage(select.value);
    select.setAttribute("aria-label", t("language"));
    applyI18n(document);
    if (allowed(page)) render(); else forbidden(page);
  });
  return select;
}

function allowed(page) { return session.me.pages.some(p => p.page === page && p.allowed); }

// The page his roles do not open: which role it needs, which he has, where he may go instead.
function forbidden(page) {
  const wanted = session.me.pages.find(p => p.page === page);
  const elsewhere = session.me.pages.filter(p => p.allowed);
  document.querySelector("main").replaceChildren(
    el("h1", { text: t(`nav_${page}`) }),
    el("section", { class: "card wide", id: "forbidden", "aria-labelledby": "forbidden-title" },
      el("h2", { id: "forbidden-title", text: t("forbidden_title") }),
      el("p", { id: "forbidden-needs", text: t("forbidden_needs", { roles: roleNames(wanted ? wanted.roles : []) }) }),
      el("p", { text: t("forbidden_mine", { roles: session.me.roles.length ? roleNames(session.me.roles) : t("no_role") }) }),
      elsewhere.length ? el("p", {}, t("forbidden_go"), " ",
        elsewhere.flatMap((p, i) => [i ? ", " : "", el("a", { href: p.path, text: t(`nav_${p.page}`) })])) : null));
  applyI18n(document);
}

// Start a page: know the person, draw the frame, then the page (or the sentence saying why not).
export async function startRolePage(page, render) {
  const loaded = await loadSession();  // the session cookie, and the CSRF token the request helper sends
  if (!loaded.ok) { toSignIn(loaded.detail && loaded.detail.reason === "expired" ? "expired" : "signed_out"); return; }
  try {
    session.me = await api("web", "/me");
  } catch (error) {
    if (error.status !== 401) banner(explain(error));
    return;  // 401: the request helper has sent the person back to sign in
  }
  // The hub is everyone's first address: a person with no employee role goes where his work is.
  if (page === "hub" && !allowed(page) && session.me.landing !== "/") { location.replace(session.me.landing); return; }
  header(page, render);
  applyI18n(document);
  if (!allowed(page)) { forbidden(page); return; }
  await render();
}
