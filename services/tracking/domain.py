"""Tracking decisions, pure: no I/O."""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit, urlunsplit

from shared.events import ProfileChange

# Same alphabet and bounds as shared.events.TrackedLink.code: anything else is not ours.
CODE = re.compile(r"[A-Za-z0-9_-]{6,64}")
UNIQUE_WINDOW = timedelta(minutes=30)
UTM_MEDIUM = "employee-advocacy"

# Link-preview fetchers and crawlers: their requests are recorded, but not as human clicks.
BOT_MARKERS: tuple[str, ...] = tuple(marker.lower() for marker in (
    "LinkedInBot", "Twitterbot", "facebookexternalhit", "Facebot", "Slackbot", "Slack-ImgProxy",
    "Discordbot", "TelegramBot", "WhatsApp", "SkypeUriPreview", "XING-contenttabreceiver", "Xing Share",
    "Googlebot", "bingbot", "Applebot", "redditbot", "Pinterestbot", "Embedly", "Iframely", "Mastodon",
    "bot/", "bot;", "crawler", "spider", "preview", "python-requests", "curl/", "wget/",
))


def valid_code(code: str) -> bool:
    return CODE.fullmatch(code) is not None


def is_human(user_agent: str | None) -> bool:
    """Browsers are people; an empty User-Agent or a known fetcher is not."""
    if not user_agent or not user_agent.strip():
        return False
    agent = user_agent.lower()
    return not any(marker in agent for marker in BOT_MARKERS)


def client_fingerprint(code: str, ip: str, user_agent: str | None) -> bytes:
    """Who clicked, approximately, without storing the address as such. Mixed with the code so
    that one client's rows on two links do not share a value."""
    return hashlib.sha256(f"{code}\n{ip}\n{user_agent or ''}".encode()).digest()


def unique_clicks(clients: list[tuple[str, bytes]], opened: set[tuple[str, bytes]]) -> list[bool]:
    """Which clicks of a group, in order, are unique: a click whose (code, client) opened a new
    window, and only the first of that pair in the group (the others fall in its window)."""
    seen: set[tuple[str, bytes]] = set()
    unique = []
    for client in clients:
        unique.append(client in opened and client not in seen)
        seen.add(client)
    return unique


def with_utm(destination: str, *, network: str, content_id: str, campaign: str | None, link_code: str) -> str:
    """The destination with our UTM parameters appended. Its own query is kept byte for byte,
    except UTM parameters of the same names, which ours replace. ``utm_content`` is the link's
    code: enough for a CRM to attribute a lead to the link (and through it to the ambassador, in
    Portevoix only), never a stable id of the person for the destination's analytics tools."""
    ours = {
        "utm_source": network,
        "utm_medium": UTM_MEDIUM,
        "utm_campaign": campaign or content_id,
        "utm_content": link_code,
    }
    parts = urlsplit(destination)
    kept = [p for p in parts.query.split("&") if p and unquote_plus(p.split("=", 1)[0]) not in ours]
    query = "&".join([*kept, urlencode(ours)])
    return urlunsplit(parts._replace(query=query))


# --- engagement webhooks (Standard Webhooks) ---------------------------------------------------

SIGNATURE_TOLERANCE = timedelta(minutes=5)
SECRET_PREFIX = "whsec_"
SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{1,62}")
WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII, as the spec's ids are
TIMESTAMP = re.compile(r"\d{1,12}")
MAX_ACTIVE_SECRETS = 5


class SignatureRejected(Exception):
    """The call is not from the source's holder of a secret, or not from now: 401."""


def valid_source(source: str) -> bool:
    return SOURCE_NAME.fullmatch(source) is not None


def new_webhook_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    """HMAC-SHA256 over ``id.timestamp.body``, the Standard Webhooks signed content."""
    return hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def verify_signature(secrets_: Iterable[str], *, webhook_id: str | None, timestamp: str | None,
                     signatures: str | None, body: bytes, now: datetime) -> None:
    """Raise :class:`SignatureRejected` unless one ``v1`` signature of the header matches one of
    the source's active secrets, and the timestamp is within the tolerance of ``now``."""
    if not (webhook_id and timestamp and signatures):
        raise SignatureRejected("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not WEBHOOK_ID.fullmatch(webhook_id):
        raise SignatureRejected("webhook-id must be 1 to 200 printable ASCII characters")
    if not TIMESTAMP.fullmatch(timestamp):
        raise SignatureRejected("webhook-timestamp must be integer seconds since the epoch")
    sent_at = datetime.fromtimestamp(int(timestamp), UTC)
    if abs(now - sent_at) > SIGNATURE_TOLERANCE:
        raise SignatureRejected("webhook-timestamp is outside the 5-minute tolerance")
    offered = [_signature_bytes(s) for s in signatures.split() if s.startswith("v1,")]
    for secret in secrets_:
        expected = signature(secret_key(secret), webhook_id, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered if candidate):
            return
    raise SignatureRejected("no matching signature")


def _signature_bytes(versioned: str) -> bytes | None:
    try:
        return base64.b64decode(versioned.removeprefix("v1,"), validate=True)
    except (binascii.Error, ValueError):
        return None


def event_id(source: str, webhook_id: str, index: int) -> str:
    """The same delivery always yields the same CloudEvents ids: a retry after an answer that
    was lost is absorbed by the consumers' inboxes even past our replay window."""
    return f"webhook/{source}/{webhook_id}/{index}"


def too_far_ahead(occurred_at: datetime, now: datetime) -> bool:
    return occurred_at > now + SIGNATURE_TOLERANCE


# --- share confirmations -----------------------------------------------------------------------

NETWORK_HOSTS: dict[str, tuple[str, ...]] = {
    "linkedin": ("linkedin.com", "lnkd.in"),
    "x": ("x.com", "twitter.com"),
    "facebook": ("facebook.com", "fb.com", "fb.watch"),
    "xing": ("xing.com",),
}
# One name per place: the same post reached through an old or short domain is the same post.
CANONICAL_HOSTS = {"twitter.com": "x.com", "fb.com": "facebook.com"}
X_STATUS = re.compile(r"^/(?:[^/]+|i/web)/status(?:es)?/(\d+)")
# Query parameters that say how a post was reached, not which post it is.
TRACKING_PARAMETERS = frozenset({"trk", "rcm", "s", "t", "ref", "fbclid", "igshid", "mibextid", "sc_lang"})


def post_key(network: str, post_url: str | None) -> str:
    """What makes two confirmations the same post: host without ``www.``/``m.``, path without a
    trailing slash, and the identifying query parameters sorted. ``''`` when no URL was given.
    Raise ValueError when the URL is not a post on that network."""
    if post_url is None:
        return ""
    parts = urlsplit(post_url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not any(
            host == domain or host.endswith("." + domain) for domain in NETWORK_HOSTS[network]):
        raise ValueError(f"post_url is not a {network} address")
    for prefix in ("www.", "m.", "mobile."):
        host = host.removeprefix(prefix)
    host = CANONICAL_HOSTS.get(host, host)
    if status := X_STATUS.match(parts.path) if host == "x.com" else None:
        return f"x.com/status/{status.group(1)}"  # the id names the post, whoever's handle is in the path
    kept = sorted(
        (name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not name.lower().startswith("utm_") and name.lower() not in TRACKING_PARAMETERS)
    path = parts.path.rstrip("/")
    return f"{host}{path}" + (f"?{urlencode(kept)}" if kept else "")


def location_header(url: str) -> str | None:
    """The Location header for ``url`` (quoted as Starlette's RedirectResponse does), or None
    when it is not a location we send."""
    return quote(url, safe=":/%#?=@[]!$&'()*+,;") if safe_location(url) else None


def safe_location(url: str) -> bool:
    """A Location we are willing to send: absolute http(s), printable ASCII only (no CR, LF or
    space that could split or bend the header)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and all(
        "\x21" <= char <= "\x7e" for char in url)


def reference_problem(*, content_id: str, network: str, ambassador_id: str | None, link_code: str | None,
                      known_contents: set[str], link: dict[str, str] | None,
                      known_ambassadors: Collection[str] = ()) -> str | None:
    """Why a webhook event does not name the tenant's own content or link (None: it does)."""
    if link_code is not None:
        if link is None:
            return "link_code: unknown tracked link"
        if link["content_id"] != content_id:
            return "link_code: the link is of another content"
        if link["network"] != network:
            return "network: not the network of the link"
        if ambassador_id is not None and ambassador_id != link["ambassador_id"]:
            return "ambassador_id: not the ambassador of the link"
        return None
    if content_id not in known_contents:
        return "content_id: unknown content"
    if ambassador_id is not None and ambassador_id not in known_ambassadors:
        return "ambassador_id: unknown ambassador"
    return None


def counts_shares_after(change: ProfileChange | None) -> bool | None:
    """Whether an ambassador's shares count after a profile event (None: as before). An
    enrolment (no change) or a renewal: yes; a lapsed consent: not until he renews."""
    if change is ProfileChange.profile:
        return None
    return change is not ProfileChange.consent_lapsed


class ShareClaim(enum.Enum):
    OWN = "own"
    NOT_YET_KNOWN = "not_yet_known"  # the enrolment has not reached tracking yet: retry shortly
    NOT_OWNER = "not_owner"
    NOT_ACTIVE = "not_active"  # the ambassador withdrew


def share_claim(ambassador: Mapping[str, object] | None, caller_holder: str) -> ShareClaim:
    """May the caller (his holder digest) confirm a share of this link's ambassador? Tracked links
    are public in posts, so the link code proves nothing: only its own ambassador may."""
    if ambassador is None or ambassador["holder"] is None:
        return ShareClaim.NOT_YET_KNOWN
    if not hmac.compare_digest(str(ambassador["holder"]), caller_holder):
        return ShareClaim.NOT_OWNER
    return ShareClaim.OWN if ambassador["active"] else ShareClaim.NOT_ACTIVE
