"""Tracked links held in memory for the redirector. A code never changes its link once learnt
(the first destination is kept, links are never deleted), so an entry never goes stale: no
expiry, only a bound on the number kept (least recently used out). Unknown codes are not kept:
a link may be learnt a moment later."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Link:
    code: str
    tenant: str
    content_id: str
    ambassador_id: str
    network: str
    location: str | None  # the destination with UTM parameters; None: not one we redirect to
    key: bytes  # the engagement's record key: one content's events stay in order


class LinkCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._links: OrderedDict[str, Link] = OrderedDict()

    def get(self, code: str) -> Link | None:
        link = self._links.get(code)
        if link is not None:
            self._links.move_to_end(code)
        return link

    def put(self, link: Link) -> None:
        self._links[link.code] = link
        self._links.move_to_end(link.code)
        while len(self._links) > self.size:
            self._links.popitem(last=False)


class KnownContents:
    """The (tenant, content) pairs known to have tracked links, for the webhooks: known once,
    known for good (links are never deleted), so only the others are looked up in the database.
    Bounded: past ``size`` pairs, all are forgotten at once (then learnt again)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._known: set[tuple[str, str]] = set()

    def unknown(self, tenant: str, content_ids: set[str]) -> set[str]:
        return {c for c in content_ids if (tenant, c) not in self._known}

    def learn(self, tenant: str, content_ids: set[str]) -> None:
        if len(self._known) + len(content_ids) > self.size:
            self._known.clear()
        self._known.update((tenant, c) for c in content_ids)
