"""Distribution decisions, pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

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


def check_enrolment(known: bool, departed: bool) -> None:
    """Only a current employee of the token's tenant may become an ambassador."""
    if not known:
        raise UnknownEmployee()
    if departed:
        raise EmployeeGone()


def in_audience(audience: Audience, member: Member) -> bool:
    """Every non-empty list of the audience must contain the member's value (empty = anyone)."""
    if audience.groups:
        # Distribution does not know group memberships yet: reaching nobody is safer than
        # widening a targeted content to the whole tenant.
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


def share_text_for(share_texts: Sequence[ShareText], network: Network, language: str) -> str:
    """The text for a network: the content's language first, then the first variant."""
    candidates = [t for t in share_texts if t.network == network]
    if not candidates:
        return ""
    best = min(candidates, key=lambda t: (t.language.lower() != language.lower(), t.variant))
    return best.text
