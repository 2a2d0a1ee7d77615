"""Tracking decisions, pure: no I/O."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

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


def with_utm(destination: str, *, network: str, content_id: str, campaign: str | None, ambassador_id: str) -> str:
    """The destination with our UTM parameters appended. Its own query is kept byte for byte,
    except UTM parameters of the same names, which ours replace."""
    ours = {
        "utm_source": network,
        "utm_medium": UTM_MEDIUM,
        "utm_campaign": campaign or content_id,
        "utm_content": ambassador_id,
    }
    parts = urlsplit(destination)
    kept = [p for p in parts.query.split("&") if p and unquote_plus(p.split("=", 1)[0]) not in ours]
    query = "&".join([*kept, urlencode(ours)])
    return urlunsplit(parts._replace(query=query))
