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
