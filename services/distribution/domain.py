"""Distribution decisions, pure: no I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.events import Audience, Network, ShareText

# Networks a content is shared on when its editors wrote no share text at all.
DEFAULT_NETWORKS: tuple[Network, ...] = (Network.linkedin,)

SHARE_INTENTS: dict[Network, str] = {
    Network.linkedin: "https://www.linkedin.com/sharing/share-offsite/?url={url}",
    Network.x: "https://twitter.com/intent/tweet?text={text}&url={url}",
    Network.facebook: "https://www.facebook.com/sharer/sharer.php?u={url}",
    Network.xing: "https://www.xing.com/spi/shares/new?url={url}",
}


@dataclass(frozen=True)
class Member:
    """An enrolled ambassador, as audience targeting sees him: his current HR placement."""

    ambassador_id: str
    subsidiary: str
    department: str
    site: str
    country: str
    language: str
    groups: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()  # the ambassador's preferences: empty = any
    topics: frozenset[str] = frozenset()


class NotEnrolled(Exception):
    """The caller is not (or no longer) an ambassador."""


class EnrolmentRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownEmployee(EnrolmentRefused):
    def __init__(self) -> None:
        super().__init__("unknown_employee", "HR has not told us about this employee")


class EmployeeGone(EnrolmentRefused):
    def __init__(self) -> None:
        super().__init__("employee_departed", "this employee has left the company")


class ConsentTextOutdated(EnrolmentRefused):
    def __init__(self, current: str) -> None:
        super().__init__("consent_text_outdated", f"the consent text in force is version {current!r}: "
                                                  "read and accept that one")
        self.current = current


def check_enrolment(known: bool, departed: bool) -> None:
    """Only a current employee of the token's tenant may become an ambassador."""
    if not known:
        raise UnknownEmployee()
    if departed:
        raise EmployeeGone()


def check_consent_version(accepted: str, current: str | None) -> None:
    """Consent is to the text in force. A tenant that has published no text yet records the
    version the employee's client showed (the texts are then managed outside Portevoix)."""
    if current is not None and accepted != current:
        raise ConsentTextOutdated(current)


def in_audience(audience: Audience, member: Member, content_language: str = "", tags: Sequence[str] = ()) -> bool:
    """Every non-empty list of the audience must contain the member's value (empty = anyone),
    and the content must suit the ambassador's own language and topic preferences."""
    if audience.groups and not member.groups.intersection(audience.groups):
        return False
    if member.topics and not member.topics.intersection(t.lower() for t in tags):
        return False
    if member.languages and content_language and not _language_allows(list(member.languages), content_language):
        return False
    return (_allows(audience.subsidiaries, member.subsidiary)
            and _allows(audience.departments, member.department)
            and _allows(audience.sites, member.site)
            and _allows((c.upper() for c in audience.countries), member.country.upper())
            and _language_allows(audience.languages, member.language))


def _allows(wanted: Iterable[str], value: str) -> bool:
    wanted = list(wanted)
    return not wanted or value in wanted


def _language_allows(wanted: Sequence[str], language: str) -> bool:
    """BCP 47, case-insensitive; an audience "fr" also takes "fr-CA" speakers."""
    if not wanted:
        return True
    language = language.lower()
    primary = language.split("-", 1)[0]
    return any(w.lower() in (language, primary) for w in wanted)


def link_networks(share_texts: Sequence[ShareText]) -> list[Network]:
    """One tracked link per network the editors wrote for, in a stable order."""
    present = {text.network for text in share_texts}
    return [network for network in Network if network in present] or list(DEFAULT_NETWORKS)


def tracked_url(tracking_base_url: str, code: str) -> str:
    return f"{tracking_base_url.rstrip('/')}/r/{code}"


def share_intent(network: Network, url: str, text: str = "") -> str:
    """The network's own "share this" page, prefilled with the tracked link (and text on X)."""
    return SHARE_INTENTS[network].format(url=quote(url, safe=""), text=quote(text, safe=""))


def share_text_for(share_texts: Sequence[ShareText], network: Network, language: str, variant: int = 0,
                   fallback_language: str = "") -> str:
    """The text for a network, in the reader's language when the content has it (exact tag,
    then the same primary language), else ``fallback_language`` (the content's), else any; of
    the variants written in that language, the reader's (modulo their number)."""
    candidates = [t for t in share_texts if t.network == network]
    if not candidates:
        return ""

    def rank(text: ShareText) -> int:
        tag, wanted, fallback = text.language.lower(), language.lower(), fallback_language.lower()
        if tag == wanted:
            return 0
        if tag.split("-", 1)[0] == wanted.split("-", 1)[0]:
            return 1
        if fallback and tag.split("-", 1)[0] == fallback.split("-", 1)[0]:
            return 2
        return 3

    best = min(rank(t) for t in candidates)
    same_language = sorted((t for t in candidates if rank(t) == best), key=lambda t: (t.language, t.variant))
    exact = [t for t in same_language if t.variant == variant]
    return (exact or [same_language[variant % len(same_language)]])[0].text


def variant_for(content_id: str, ambassador_id: str, share_texts: Sequence[ShareText]) -> int:
    """Which variant of the share texts an ambassador gets: spread evenly and at random across
    ambassadors (colleagues should not post identical words), stable for one ambassador and
    content (redelivery and updates keep it)."""
    variants = sorted({t.variant for t in share_texts})
    if len(variants) <= 1:
        return variants[0] if variants else 0
    digest = hashlib.blake2b(f"{content_id}/{ambassador_id}".encode(), digest_size=8).digest()
    return variants[int.from_bytes(digest, "big") % len(variants)]


# --- the HR directory ---------------------------------------------------------------------------

class UnknownSubsidiary(ValueError):
    """An HR record names an org unit the tenant's org tree does not have: retried (the admin may
    be adding it), then parked in the DLQ with this cause, never applied to the wrong subtree."""

    def __init__(self, tenant: str, code: str) -> None:
        super().__init__(f"subsidiary {code!r} is not in the org tree of tenant {tenant!r}: "
                         "add it (PUT /v1/admin/subsidiaries/{code}) and replay the record")


def check_subsidiary(tenant: str, code: str, org_tree_configured: bool, known: bool) -> None:
    if org_tree_configured and not known:
        raise UnknownSubsidiary(tenant, code)


PROFILE_FIELDS = ("subsidiary", "department", "site", "country", "language")


def profile_changed(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether an ambassador's pseudonymous profile (what ambassadors.v1 carries) changed."""
    return before is None or any(before.get(f) != after.get(f) for f in PROFILE_FIELDS)


def tombstone_id(tenant: str, employee_id: str) -> str:
    """What an erased employee's HR id becomes: stable (a replayed HR record finds it and is not
    re-imported), and not the id itself."""
    return "erased-" + hashlib.sha256(f"{tenant}/{employee_id}".encode()).hexdigest()[:40]


def withdrawal_time(now: datetime, departure_effective_at: datetime, enrolled_at: datetime) -> datetime:
    """A departure withdraws at once; when HR tells us late, the withdrawal dates back to the
    departure (reporting must not count a departed person), never before the enrolment."""
    return max(min(now, departure_effective_at), enrolled_at)


def retention_cutoff(now: datetime, retention_days: float) -> datetime:
    """Departed before this instant: their personal data is past retention."""
    return now - timedelta(days=retention_days)


# --- consent ------------------------------------------------------------------------------------

def consent_expiry(consented_at: datetime, validity_days: float) -> datetime:
    """Consent is renewed, never assumed: it lapses after the configured period."""
    return consented_at + timedelta(days=validity_days)


def consent_in_force(ambassador: Mapping[str, Any], now: datetime) -> bool:
    """An enrolment whose consent lapsed stays (same ambassador, same networks) but is not in
    force: nothing is sent to him, his feed and preferences answer "not enrolled", until he renews."""
    return bool(ambassador["consent_expires_at"] > now)


def lapse_to_record(ambassador: Mapping[str, Any], now: datetime) -> bool:
    """His consent lapsed and the lapse is not recorded (nor told) yet."""
    return not consent_in_force(ambassador, now) and ambassador["lapsed_at"] is None


def consent_state(text_version: str | None, expires_at: datetime | None, current_version: str | None,
                  now: datetime) -> str:
    """What the directory shows of a person's consent: none (not enrolled), expired, outdated
    (given to an older text than the one in force) or in_force."""
    if text_version is None or expires_at is None:
        return "none"
    if expires_at <= now:
        return "expired"
    if current_version is not None and text_version != current_version:
        return "outdated"
    return "in_force"


def reconsent_deadline(published_at: datetime, reconsent_within_days: float) -> datetime:
    """When a new consent text is published, consent to an older one lapses at this instant."""
    return published_at + timedelta(days=reconsent_within_days)


# --- preferences --------------------------------------------------------------------------------

CHANNELS = ("in_app", "email", "email_digest", "slack", "teams", "webhook")


def in_quiet_hours(now: datetime, start: time | None, end: time | None, time_zone: str) -> bool:
    """Whether ``now`` falls in the ambassador's quiet hours, read on his own clock (IANA zone).
    A window may span midnight (22:00-07:00)."""
    if start is None or end is None or start == end:
        return False
    local = now.astimezone(ZoneInfo(time_zone)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end


def valid_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        return False
    return True


# --- notifications: channel, fatigue, retries -----------------------------------------------------

# Channels whose messages can be edited or retracted after sending (Slack-compatible chat.update
# and chat.delete; a generic webhook is told "updated"/"retracted"). E-mail and Teams incoming
# webhooks cannot: what they delivered stays delivered.
EDITABLE_CHANNELS = ("slack", "webhook")
PUSH_CHANNELS = ("email", "email_digest", "slack", "teams", "webhook")


def alert_channel(preferred: Sequence[str]) -> str:
    """The one channel an ambassador is alerted on for a content: the first he chose (never a
    second alert for the same content on another channel); the in-app feed by default."""
    return next((c for c in preferred if c in CHANNELS), "in_app")


@dataclass(frozen=True)
class Fatigue:
    """What governs an ambassador's alerts, across channels."""

    weekly_budget: int  # at most this many alerts in any 7 days, whatever the channel
    daily_cap: int | None = None  # his own frequency cap (preferences.max_per_day)
    quiet_start: time | None = None
    quiet_end: time | None = None
    time_zone: str = "UTC"


@dataclass(frozen=True)
class Deferral:
    until: datetime
    reason: str  # weekly_budget, daily_cap, quiet_hours, digest


def when_to_alert(now: datetime, channel: str, fatigue: Fatigue, recently_sent: Sequence[datetime],
                  digest_hour: int = 8) -> Deferral | None:
    """None: alert now. Otherwise the earliest instant the alert may go, and why: the budget
    frees a slot when the oldest alert of the window leaves it; quiet hours end on the
    ambassador's own clock. A deferred alert is delivered later, never dropped."""
    if channel == "email_digest":
        return Deferral(next_local_time(now, time(digest_hour), fatigue.time_zone), "digest")
    at, reason = now, ""
    windows = [(fatigue.weekly_budget, timedelta(days=7), "weekly_budget")]
    if fatigue.daily_cap is not None:
        windows.append((fatigue.daily_cap, timedelta(days=1), "daily_cap"))
    for limit, window, why in windows:
        inside = sorted(t for t in recently_sent if t > now - window)
        if len(inside) >= limit:
            frees = inside[len(inside) - limit] + window
            if frees > at:
                at, reason = frees, why
    if in_quiet_hours(at, fatigue.quiet_start, fatigue.quiet_end, fatigue.time_zone):
        assert fatigue.quiet_end is not None
        at, reason = next_local_time(at, fatigue.quiet_end, fatigue.time_zone), reason or "quiet_hours"
    return Deferral(at, reason) if at > now else None


def next_local_time(now: datetime, wall: time, time_zone: str) -> datetime:
    """The next instant (after ``now``) the ambassador's own clock shows ``wall``."""
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), wall, zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), wall, zone)
    return candidate.astimezone(now.tzinfo)


def retry_delay(attempt: int, base_seconds: float, max_seconds: float, jitter: float) -> float:
    """Exponential backoff with jitter (``jitter`` in [0, 1), drawn by the caller): between half
    and all of base·2^(attempt-1), capped, so that retries of many failed sends spread out."""
    ceiling = min(max_seconds, base_seconds * 2 ** max(attempt - 1, 0))
    return ceiling * (0.5 + jitter / 2)


@dataclass
class CircuitBreaker:
    """Per endpoint: after ``threshold`` consecutive failures, stop calling it for
    ``open_seconds`` (its notifications are rescheduled without waiting on it), then let one
    attempt through; a success closes it. Times are monotonic seconds given by the caller."""

    threshold: int
    open_seconds: float
    failures: dict[str, int] = field(default_factory=dict)
    open_until: dict[str, float] = field(default_factory=dict)

    def allows(self, endpoint: str, now: float) -> bool:
        until = self.open_until.get(endpoint)
        if until is None:
            return True
        if now >= until:  # half-open: one probe, and stay open meanwhile
            self.open_until[endpoint] = now + self.open_seconds
            return True
        return False

    def succeeded(self, endpoint: str) -> None:
        self.failures.pop(endpoint, None)
        self.open_until.pop(endpoint, None)

    def failed(self, endpoint: str, now: float) -> None:
        self.failures[endpoint] = self.failures.get(endpoint, 0) + 1
        if self.failures[endpoint] >= self.threshold:
            self.open_until[endpoint] = now + self.open_seconds


# --- SCIM filters (RFC 7644 section 3.4.2.2) ------------------------------------------------------

class InvalidFilter(ValueError):
    """A filter or path that does not parse: SCIM answers 400 with scimType invalidFilter."""


@dataclass(frozen=True)
class AttrPath:
    """``[schema:]attribute[.sub]``; names as written (SCIM names are case-insensitive)."""

    attribute: str
    sub: str | None = None
    schema: str | None = None


@dataclass(frozen=True)
class Compare:
    path: AttrPath
    op: str  # eq ne co sw ew gt ge lt le
    value: Any  # str, bool, int, float or None


@dataclass(frozen=True)
class Present:
    path: AttrPath


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    inner: Filter


@dataclass(frozen=True)
class ValuePath:
    """``emails[type eq "work"]``: elements of a multi-valued attribute that match ``inner``."""

    path: AttrPath
    inner: Filter


Filter = Compare | Present | And | Or | Not | ValuePath
COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<punct>[()\[\]])|(?P<word>[^\s()\[\]"]+))')


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise InvalidFilter(f"unexpected character at {position} in {text!r}")
        tokens.append(match.group(match.lastgroup or "word"))
        position = match.end()
    return tokens


def parse_attr_path(text: str) -> AttrPath:
    """``userName``, ``name.givenName``, ``urn:…:enterprise:2.0:User:department``, ``…:manager.value``."""
    schema = None
    if text.lower().startswith("urn:"):
        schema, _, text = text.rpartition(":")
        if not schema or not text:
            raise InvalidFilter(f"invalid attribute path {text!r}")
    attribute, _, sub = text.partition(".")
    if not re.fullmatch(r"\$?[A-Za-z][\w-]*", attribute) or (sub and not re.fullmatch(r"\$?[A-Za-z][\w-]*", sub)):
        raise InvalidFilter(f"invalid attribute path {text!r}")
    return AttrPath(attribute, sub or None, schema)


MAX_FILTER_NESTING = 32  # parentheses, not(...) and [...] inside one another: each level recurses


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.lower() != expected):
            raise InvalidFilter(f"expected {expected or 'more'} at token {self.at + 1} of {self.text!r}")
        self.at += 1
        return token

    def filter(self) -> Filter:
        node = self.conjunction()
        while (self.peek() or "").lower() == "or":
            self.take()
            node = Or(node, self.conjunction())
        return node

    def conjunction(self) -> Filter:
        node = self.term()
        while (self.peek() or "").lower() == "and":
            self.take()
            node = And(node, self.term())
        return node

    def nested(self, closing: str) -> Filter:
        self.depth += 1
        if self.depth > MAX_FILTER_NESTING:
            raise InvalidFilter(f"filter nested deeper than {MAX_FILTER_NESTING} levels")
        node = self.filter()
        self.take(closing)
        self.depth -= 1
        return node

    def term(self) -> Filter:
        token = self.take()
        if token == "(":
            return self.nested(")")
        if token.lower() == "not":
            self.take("(")
            return Not(self.nested(")"))
        if token in ("(", ")", "[", "]") or token.startswith('"'):
            raise InvalidFilter(f"expected an attribute, got {token!r} in {self.text!r}")
        path = parse_attr_path(token)
        if self.peek() == "[":
            self.take()
            return ValuePath(path, self.nested("]"))
        op = self.take().lower()
        if op == "pr":
            return Present(path)
        if op not in COMPARE_OPS:
            raise InvalidFilter(f"unknown operator {op!r} in {self.text!r}")
        return Compare(path, op, _literal(self.take()))


def _literal(token: str) -> Any:
    if token.startswith('"'):
        import json

        try:
            return json.loads(token)
        except ValueError as error:
            raise InvalidFilter(f"invalid string {token}") from error
    lowered = token.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return int(token) if re.fullmatch(r"-?\d+", token) else float(token)
    except ValueError as error:
        raise InvalidFilter(f"invalid value {token!r}: strings are quoted") from error


def parse_filter(text: str) -> Filter:
    if len(text) > 4000:
        raise InvalidFilter("filter too long")
    parser = _Parser(text)
    if not parser.tokens:
        raise InvalidFilter("empty filter")
    node = parser.filter()
    if parser.peek() is not None:
        raise InvalidFilter(f"unexpected {parser.peek()!r} in {text!r}")
    return node


@dataclass(frozen=True)
class PatchPath:
    """A PATCH path: ``attr``, ``attr.sub``, ``attr[filter]`` or ``attr[filter].sub``."""

    path: AttrPath
    selector: Filter | None = None
    sub: str | None = field(default=None)


def parse_patch_path(text: str) -> PatchPath:
    text = text.strip()
    if "[" not in text:
        return PatchPath(parse_attr_path(text))
    head, _, rest = text.partition("[")
    inner, closing, tail = rest.rpartition("]")
    if not closing or (tail and not tail.startswith(".")):
        raise InvalidFilter(f"invalid path {text!r}")
    return PatchPath(parse_attr_path(head), parse_filter(inner), tail[1:] or None)


def _get(obj: dict[str, Any], name: str) -> Any:
    for key, value in obj.items():
        if key.lower() == name.lower():
            return value
    return None


def matches(node: Filter, element: dict[str, Any]) -> bool:
    """Evaluate a filter on one element (a PATCH value selector such as ``type eq "work"``).
    Strings compare case-insensitively (SCIM's default, caseExact false)."""
    match node:
        case And(left, right):
            return matches(left, element) and matches(right, element)
        case Or(left, right):
            return matches(left, element) or matches(right, element)
        case Not(inner):
            return not matches(inner, element)
        case Present(path):
            value = _path_value(path, element)
            return value not in (None, "", [], {})
        case Compare(path, op, expected):
            return _compare(_path_value(path, element), op, expected)
        case ValuePath(path, inner):
            values = _path_value(path, element)
            return isinstance(values, list) and any(isinstance(v, dict) and matches(inner, v) for v in values)
    return False


def _path_value(path: AttrPath, element: dict[str, Any]) -> Any:
    container = _get(element, path.schema) if path.schema and _get(element, path.schema) is not None else element
    value = _get(container, path.attribute) if isinstance(container, dict) else None
    if path.sub is not None:
        if isinstance(value, list):
            return [_get(v, path.sub) for v in value if isinstance(v, dict)]
        return _get(value, path.sub) if isinstance(value, dict) else None
    return value


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(actual, list):
        return any(_compare(a, op, expected) for a in actual)
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if actual is None or expected is None:
        return False
    if op in ("co", "sw", "ew"):
        if not (isinstance(actual, str) and isinstance(expected, str)):
            return False
        return {"co": expected in actual, "sw": actual.startswith(expected), "ew": actual.endswith(expected)}[op]
    try:
        return {"gt": actual > expected, "ge": actual >= expected, "lt": actual < expected,
                "le": actual <= expected}[op]
    except TypeError:
        return False
