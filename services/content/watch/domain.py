"""Watch decisions, pure: what a feed's bytes say, when two entries are the same story, when a
source is polled next, and how healthy it is."""

from __future__ import annotations

import calendar
import difflib
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser

from services.content.charter import fold

NEAR_IDENTICAL_TITLE = 0.92  # difflib ratio of folded titles: the same story under another source's pen
MAX_SUMMARY = 2000
MAX_TITLE = 300
TRACKING_PARAMETERS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ref|xtor|at_medium|at_campaign)$", re.I)
TAG = re.compile(r"<[^>]+>")
SPACES = re.compile(r"\s+")
WORDS = re.compile(r"[^\W_]+")


class FeedRefused(ValueError):
    """The bytes are not an RSS or Atom feed we can read: the cause is kept on the source."""


@dataclass(frozen=True)
class Entry:
    link: str
    title: str
    summary: str
    image_url: str | None
    published_at: datetime | None


def parse_feed(body: bytes, content_type: str | None = None) -> list[Entry]:
    """The entries of an RSS 0.9x/1.0/2.0 or Atom document. A document that is not a feed, or so
    broken that nothing could be read from it, raises FeedRefused with the parser's reason;
    entries without a link or a title are skipped (nothing to share)."""
    parsed = feedparser.parse(body, response_headers={"content-type": content_type} if content_type else None)
    if not parsed.get("version") and not parsed.entries:
        cause = parsed.get("bozo_exception")
        raise FeedRefused(f"not an RSS or Atom feed{f': {cause}' if cause else ''}")
    if parsed.get("bozo") and not parsed.entries:
        raise FeedRefused(f"ill-formed feed, no entry could be read: {parsed.get('bozo_exception')}")
    entries = []
    for item in parsed.entries:
        link, title = _link(item), _text(item.get("title", ""))[:MAX_TITLE]
        if link and title:
            entries.append(Entry(link=link, title=title, summary=_text(item.get("summary", ""))[:MAX_SUMMARY],
                                 image_url=_image(item), published_at=_published(item)))
    return entries


def _link(item: Any) -> str | None:
    candidates = [item.get("link")] + [link.get("href") for link in item.get("links", [])
                                       if link.get("rel", "alternate") == "alternate"]
    return next((c for c in candidates if c and urlsplit(c).scheme in ("http", "https")), None)


def _text(value: str) -> str:
    """Plain text of a title or summary that may hold HTML and entities."""
    return SPACES.sub(" ", html.unescape(TAG.sub(" ", value))).strip()


def _image(item: Any) -> str | None:
    """The entry's picture: media:content / media:thumbnail (Media RSS), else an image enclosure."""
    for media in [*item.get("media_content", []), *item.get("media_thumbnail", [])]:
        url = media.get("url")
        if url and (media.get("medium") in (None, "image") or "image" in media.get("type", "image")):
            return str(url)
    for link in item.get("links", []):
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return str(link.get("href"))
    return None


def _published(item: Any) -> datetime | None:
    moment = item.get("published_parsed") or item.get("updated_parsed")
    return datetime.fromtimestamp(calendar.timegm(moment), UTC) if moment else None


# --- the same story ------------------------------------------------------------------------------

def link_key(url: str) -> str:
    """A link without what says how it was reached: fragment, tracking parameters, ``www.``,
    a trailing slash; scheme and host lower-cased."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                             if not TRACKING_PARAMETERS.match(k)))
    return urlunsplit(("https" if parts.scheme in ("http", "https") else parts.scheme, host,
                       parts.path.rstrip("/") or "/", query, ""))


def title_key(title: str) -> str:
    """The title's words, case and accents folded: punctuation and spacing do not matter."""
    return " ".join(WORDS.findall(fold(title)[0]))


def similar_title(key: str, recent_keys: Iterable[str], ratio: float = NEAR_IDENTICAL_TITLE) -> str | None:
    """The recent title (its key) this one is near-identical to, if any: the same story."""
    for other in recent_keys:
        if other == key or difflib.SequenceMatcher(None, key, other).ratio() >= ratio:
            return other
    return None


# --- polling and health --------------------------------------------------------------------------

def next_poll(now: datetime, interval: timedelta, failures: int, ceiling: timedelta = timedelta(hours=24)) -> datetime:
    """A healthy source is polled every ``interval``; a failing one backs off exponentially."""
    return now + min(interval * (2 ** failures), ceiling)


def parks(failures: int, max_failures: int, status: int | None) -> bool:
    """Stop polling: too many failures in a row, or the publisher says the feed is gone (410)."""
    return failures >= max_failures or status == 410


def health(source: dict[str, Any]) -> str:
    if not source["active"]:
        return "paused"
    if source["parked_at"] is not None:
        return "parked"
    if source["failures"]:
        return "failing"
    return "ok" if source["last_ok_at"] is not None else "pending"


# --- ambassadors' ideas --------------------------------------------------------------------------

MAX_WAITING_IDEAS = 20  # per person: a queue for comms teams, not a spam channel


def idea_link_key(url: str | None, idea_id: str) -> str:
    """An idea with a link meets the feeds' entries of that link; one without is its own story."""
    return link_key(url) if url else f"idea:{idea_id}"


def idea_outcome(state: str, content_state: str | None, published_at: datetime | None) -> str:
    """What became of an idea, as its proposer is told."""
    if state == "new":
        return "waiting"
    if state == "dismissed":
        return "declined"
    if published_at is not None:
        return "published"
    return "declined" if content_state == "retired" else "in_preparation"
