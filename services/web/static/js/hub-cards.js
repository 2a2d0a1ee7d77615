// The hub's feed cards: image, title, summary, per network the suggested text with its counter
// against the network's limit and a preview of the post, one-click share, "copy text", "I shared
// it", and what I already shared (from tracking, so it shows on every device and after reloads).
import { api, el, say } from "./app.js";
import { t } from "./i18n.js";

// The networks' share pages, as distribution builds them: rebuilt here when the text is edited.
const SHARE_INTENTS = {
  linkedin: (u) => `https://www.linkedin.com/sharing/share-offsite/?url=${u}`,
  x: (u, text) => `https://twitter.com/intent/tweet?text=${text}&url=${u}`,
  facebook: (u) => `https://www.facebook.com/sharer/sharer.php?u=${u}`,
  xing: (u) => `https://www.xing.com/spi/shares/new?url=${u}`,
};
// Post length limits; X counts every URL as 23 characters (t.co), the shared link included.
export const LIMITS = { linkedin: 3000, x: 280, facebook: 63206, xing: 3000 };
const X_URL_LENGTH = 23;
const URL_PATTERN = /https?:\/\/\S+/g;

export function postLength(network, text, withLink = true) {
  if (network !== "x") return [...text].length;
  const urls = text.match(URL_PATTERN) || [];
  const bare = [...text.replace(URL_PATTERN, "")].length;
  return bare + urls.length * X_URL_LENGTH + (withLink ? 1 + X_URL_LENGTH : 0);
}

function shareUrl(network, trackedUrl, text) {
  return SHARE_INTENTS[network](encodeURIComponent(trackedUrl), encodeURIComponent(text));
}
function linkCode(trackedUrl) { return new URL(trackedUrl).pathname.split("/").pop(); }
function host(url) { try { return new URL(url).hostname.replace(/^www\./, ""); } catch { return url; } }

// What the caller shared, as "content|network" keys; tracking without an identity key: nothing known.
export async function myShares() {
  try {
    const { shares } = await api("tracking", "/v1/shares/mine");
    return new Set(shares.map(s => `${s.content_id}|${s.network}`));
  } catch { return new Set(); }
}

function sharedNetworks(item, shared) {
  return item.links.filter(l => shared.has(`${item.content_id}|${l.network}`)).map(l => t(`network_${l.network}`));
}

function sharedMark(item, shared) {
  const networks = sharedNetworks(item, shared);
  return el("p", { class: "shared-mark", hidden: !networks.length, text: `✓ ${t("shared_mark", { networks: networks.join(", ") })}` });
}

export function card(item, shared) {
  let mark = sharedMark(item, shared);
  return el("article", { class: "post", "data-content": item.content_id, "aria-labelledby": `title-${item.notification_id}` },
    item.image_url ? el("img", { class: "cover", src: item.image_url, alt: "", loading: "lazy" }) : null,
    el("h3", { id: `title-${item.notification_id}`, text: item.title }),
    item.summary ? el("p", { class: "summary", text: item.summary }) : null,
    mark,
    el("p", {}, el("a", { href: item.url, target: "_blank", rel: "noopener", text: t("read_original") })),
    item.links.map(link => networkShare(item, link, shared, () => {
      const fresh = sharedMark(item, shared); mark.replaceWith(fresh); mark = fresh;
    })));
}

function counter(network, text, id) {
  const n = postLength(network, text), max = LIMITS[network];
  const over = n > max;
  return el("p", { class: `counter${over ? " over" : ""}`, id, "aria-live": "polite",
    text: over ? t("chars_over", { n, max, over: n - max, network: t(`network_${network}`) }) : t("chars", { n, max }) });
}

function preview(item, link, text) {
  const name = t(`network_${link.network}`);
  return el("details", { class: "preview-box" },
    el("summary", { text: t("preview_title", { network: name }) }),
    el("div", { class: `preview-card ${link.network}` },
      el("p", { class: "author", text: t("you") }),
      el("p", { class: "preview-text", text: link.network === "x" ? `${text} ${link.tracked_url}` : text }),
      el("div", { class: "link-card" },
        item.image_url ? el("img", { src: item.image_url, alt: "" }) : null,
        el("p", { class: "link-title", text: item.title }),
        el("p", { class: "link-host", text: host(item.url) }))));
}

function networkShare(item, link, shared, onShared) {
  const id = `text-${item.notification_id}-${link.network}`;
  const name = t(`network_${link.network}`);
  const key = `${item.content_id}|${link.network}`;
  const text = el("textarea", { id, "data-network": link.network, "aria-describedby": `${id}-count` });
  text.value = link.text;
  let count = counter(link.network, text.value, `${id}-count`);
  let shown = preview(item, link, text.value);
  const share = el("a", { class: "button share", "data-network": link.network, "data-href": link.share_url,
    href: link.share_url, target: "_blank", rel: "noopener", text: t("share_on", { network: name }) });
  text.addEventListener("input", () => {
    share.dataset.href = shareUrl(link.network, link.tracked_url, text.value);
    const fresh = counter(link.network, text.value, `${id}-count`); count.replaceWith(fresh); count = fresh;
    const open = shown.open, next = preview(item, link, text.value); next.open = open; shown.replaceWith(next); shown = next;
    document.dispatchEvent(new CustomEvent("feed-gate"));
  });
  const status = el("p", { class: "status", role: "status", "aria-live": "polite" });
  const copy = el("button", { type: "button", class: "secondary", text: t("copy_text"), onclick: async () => {
    try { await navigator.clipboard.writeText(`${text.value} ${link.tracked_url}`); say(status, t("copied")); }
    catch { text.select(); say(status, t("copy_failed"), false); }
  } });
  const done = el("button", { type: "button", class: "secondary shared", "data-network": link.network,
    "aria-pressed": shared.has(key) ? "true" : "false", text: t("i_shared"), onclick: async () => {
      try {
        const answer = await api("tracking", "/v1/shares", { method: "POST", body: { link_code: linkCode(link.tracked_url), network: link.network } });
        say(status, answer.counted ? t("share_counted") : t("share_known"));
        shared.add(key); done.setAttribute("aria-pressed", "true"); block.classList.add("done");
        onShared();
      } catch (error) { say(status, error.message, false); }
    } });
  const block = el("div", { class: `network${shared.has(key) ? " done" : ""}`, "data-network": link.network },
    el("label", { for: id, text: t("text_for", { network: name }) }), text, count, shown,
    el("p", { class: "muted tracked", text: `${t("tracked_link")}: ${link.tracked_url}` }),
    el("div", { class: "actions" }, share, copy, done), status);
  return block;
}
