"""Content decisions, pure: no I/O."""

from __future__ import annotations

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"published"}),
    "published": frozenset({"retired"}),
    "retired": frozenset(),
}


class IllegalTransition(Exception):
    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"cannot go from {current} to {wanted}")
        self.current = current
        self.wanted = wanted
        self.allowed = sorted(TRANSITIONS.get(current, ()))


def check_transition(current: str, wanted: str) -> None:
    if wanted not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(current, wanted)


def newer(incoming_version: int, stored_version: int | None) -> bool:
    """An upstream source's update applies only if its version is higher than what we hold."""
    return stored_version is None or incoming_version > stored_version
