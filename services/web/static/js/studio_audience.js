// The audience picker: the org tree, sites, countries, languages and groups from distribution's
// /v1/directory/org, with headcounts; a subsidiary's editor sees (and picks in) his subtree only.
import { api, el } from "./app.js";
import { t } from "./i18n.js";

const FACETS = [["sites", "site", "audience_sites"], ["countries", "country", "audience_countries_legend"],
                ["languages", "language", "audience_languages_legend"], ["groups", "group", "audience_groups_legend"]];
const state = { directory: null, onChange: () => {} };
const slug = (value) => value.replace(/[^A-Za-z0-9_-]/g, "_");

function box(kind, value, label, extra = {}) {
  const id = `aud-${kind}-${slug(value)}`;
  return el("label", { class: "inline", for: id },
    el("input", { type: "checkbox", id, value, "data-kind": kind, onchange: () => state.onChange(), ...extra }), label);
}

function tree(units, scope) {
  const codes = new Set(units.map(u => u.code));
  const children = (parent) => units.filter(u => (codes.has(u.parent) ? u.parent : null) === parent);
  const branch = (parent) => {
    const kids = children(parent);
    return kids.length ? el("ul", {}, kids.map(u => el("li", {},
      box("unit", u.code, `${u.name} (${u.code}) · ${t("people", { n: u.headcount, a: u.ambassadors })}`,
          scope ? { checked: true, disabled: true } : {}),
      branch(u.code)))) : null;
  };
  return branch(null);
}

function facet([key, kind, legend]) {
  const values = state.directory[key];
  if (!values.length) return null;
  return el("fieldset", { class: "facet" }, el("legend", { text: t(legend) }),
    values.map(v => kind === "group" ? box(kind, v.name, `${v.name} · ${t("members", { n: v.headcount })}`)
      : box(kind, v.value, `${v.value} · ${t("people", { n: v.headcount, a: v.ambassadors })}`)));
}

function typed() {  // the fallback when the directory cannot be read
  return ["subsidiaries", "groups", "countries", "languages"].map(name => el("div", {},
    el("label", { for: `audience-${name}`, text: t(`audience_${name}`) }),
    el("input", { type: "text", id: `audience-${name}`, oninput: () => state.onChange() })));
}

export async function loadAudience(container, onChange) {
  state.onChange = onChange;
  try {
    state.directory = await api("distribution", "/v1/directory/org");
  } catch {
    state.directory = null;
    container.replaceChildren(el("p", { class: "muted", text: t("directory_unavailable") }), ...typed());
    return;
  }
  const { scope, subsidiaries } = state.directory;
  const root = scope && subsidiaries.find(u => u.code === scope);
  container.replaceChildren(
    el("p", { class: "muted", id: "audience-hint", text: scope ? t("audience_scope", { name: root ? root.name : scope })
      : t("audience_everyone") }),
    el("fieldset", { class: "facet tree", id: "org-tree" }, el("legend", { text: t("audience_units") }),
      tree(subsidiaries, scope) || el("p", { text: "–" })),
    ...FACETS.map(facet).filter(Boolean));
}

const checked = (kind) => [...document.querySelectorAll(`#audience input[data-kind=${kind}]:checked`)].map(i => i.value);
const words = (id) => (document.getElementById(id)?.value || "").split(",").map(s => s.trim()).filter(Boolean);

// The audience as the content API takes it.
export function audienceValue() {
  if (!state.directory) {
    return { subsidiaries: words("audience-subsidiaries"), groups: words("audience-groups"),
             countries: words("audience-countries").map(c => c.toUpperCase()), languages: words("audience-languages") };
  }
  return { subsidiaries: state.directory.scope ? [] : checked("unit"), sites: checked("site"),
           countries: checked("country"), languages: checked("language"), groups: checked("group") };
}

export function setAudience(audience = {}) {
  if (!state.directory) {
    for (const name of ["subsidiaries", "groups", "countries", "languages"]) {
      const input = document.getElementById(`audience-${name}`);
      if (input) input.value = (audience[name] || []).join(", ");
    }
    return;
  }
  const wanted = { unit: audience.subsidiaries, site: audience.sites, country: audience.countries,
                   language: audience.languages, group: audience.groups };
  for (const input of document.querySelectorAll("#audience input[data-kind]")) {
    if (input.disabled) continue;
    input.checked = (wanted[input.dataset.kind] || []).includes(input.value);
  }
}
