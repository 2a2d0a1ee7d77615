"""Content decisions, pure: no I/O."""

from __future__ import annotations

from datetime import datetime

# The explicit transitions (one command each). in_review → draft is a rejection; scheduled →
# approved an unscheduling. Editing is not a command: see ``state_after_edit``.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"in_review", "retired"}),
    "in_review": frozenset({"approved", "draft", "retired"}),
    "approved": frozenset({"scheduled", "published", "retired"}),
    "scheduled": frozenset({"published", "approved", "retired"}),
    "published": frozenset({"retired"}),
    "retired": frozenset(),
}
EDITABLE = frozenset({"draft", "in_review", "approved", "scheduled", "published"})
# An approver may publish an item not yet approved in one step (review, approval, publication
# recorded one by one), under the same four-eyes and charter rules.
ONE_STEP_PUBLICATION = {"draft": ["in_review", "approved", "published"],
                        "in_review": ["approved", "published"],
                        "approved": ["published"], "scheduled": ["published"]}


class IllegalTransition(Exception):
    def __init__(self, current: str, wanted: str, why: str | None = None) -> None:
        super().__init__(why or f"cannot go from {current} to {wanted}")
        self.current = current
        self.wanted = wanted
        self.allowed = sorted(TRANSITIONS.get(current, ()))


class SelfApproval(Exception):
    """Four eyes: whoever wrote a version cannot approve it."""


def check_transition(current: str, wanted: str) -> None:
    if wanted not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(current, wanted)


def publication_path(current: str) -> list[str]:
    """The states an item goes through to be published now, or IllegalTransition."""
    if current not in ONE_STEP_PUBLICATION:
        raise IllegalTransition(current, "published")
    return ONE_STEP_PUBLICATION[current]


def check_four_eyes(authors: list[str], approver: str) -> None:
    if approver in authors:
        raise SelfApproval(f"{approver} wrote this version and cannot approve it")


def state_after_edit(current: str) -> str:
    """Editing an approved, scheduled or published item sends it back to review."""
    if current not in EDITABLE:
        raise IllegalTransition(current, current, f"a {current} item cannot be edited")
    return "in_review" if current in ("approved", "scheduled", "published") else current


def authors_after_edit(authors: list[str], editor: str) -> list[str]:
    return authors if editor in authors else [*authors, editor]


def publication_time(publish_at: datetime | None, embargo_until: datetime | None) -> datetime | None:
    """When a scheduled item may go out: its schedule, never before its embargo."""
    if publish_at is None:
        return embargo_until
    if embargo_until is None:
        return publish_at
    return max(publish_at, embargo_until)


def under_embargo(embargo_until: datetime | None, now: datetime) -> bool:
    return embargo_until is not None and now < embargo_until


def event_type_for_publication(published_before: bool) -> str:
    """A second publication (after an edit went back through review) updates what is out."""
    return "content.updated" if published_before else "content.published"


def may_manage(principal_subsidiary: str | None, owner_subsidiary: str | None) -> bool:
    """Group-level staff manage every item; a subsidiary's staff only their subsidiary's."""
    return principal_subsidiary is None or principal_subsidiary == owner_subsidiary


def newer(incoming_version: int, stored_version: int | None) -> bool:
    """An upstream source's update applies only if its version is higher than what we hold."""
    return stored_version is None or incoming_version > stored_version


def ingested_state(auto_approve: bool, violations: int) -> str:
    """An ingested item is a draft, or approved where the tenant trusts its source and the
    charter has nothing against it."""
    return "approved" if auto_approve and violations == 0 else "draft"


# Image types the studio accepts, recognised by their first bytes (never by name or declared type).
IMAGE_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"), (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"), (b"GIF89a", 0, "image/gif"), (b"WEBP", 8, "image/webp"))


def image_type(data: bytes) -> str | None:
    """The media type of an image from its magic bytes, or None (SVG, HTML, anything else)."""
    for signature, offset, media_type in IMAGE_SIGNATURES:
        if data[offset:offset + len(signature)] == signature and (offset == 0 or data[:4] == b"RIFF"):
            return media_type
    return None
