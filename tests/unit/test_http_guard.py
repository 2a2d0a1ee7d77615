"""The HTTP guard's JSON nesting gauge: whatever the chunking, it measures the depth Python's
decoder would reach, brackets inside strings (and escaped quotes) not counted."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.http_guard import JsonNesting

LEAVES = st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n\u00e9', max_size=8)
DOCUMENTS = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(alphabet='[]{}"\\k', max_size=4), inner, max_size=3), max_leaves=30)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


def gauged(body: bytes, cuts: list[int], limit: int) -> bool:
    gauge = JsonNesting(limit)
    points = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    return any(gauge.too_deep(body[a:b]) for a, b in zip(points, points[1:], strict=False))


@settings(max_examples=400, deadline=None)
@given(document=DOCUMENTS, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
       ascii_only=st.booleans())
def test_the_depth_is_measured_whatever_the_chunks(document: Any, cuts: list[int], ascii_only: bool) -> None:
    body = json.dumps(document, ensure_ascii=ascii_only).encode()
    real = depth(document)
    assert not gauged(body, cuts, real)
    if real > 0:
        assert gauged(body, cuts, real - 1)


def test_a_hundred_kilobytes_of_brackets_is_too_deep_and_strings_do_not_count() -> None:
    assert JsonNesting(64).too_deep(b"[" * 100_000)
    assert JsonNesting(64).too_deep(b'{"a":' * 65)
    assert not JsonNesting(64).too_deep(json.dumps({"text": "[" * 10_000 + '\\"' + "{" * 10_000}).encode())
    gauge = JsonNesting(3)  # a backslash ending a chunk escapes the next chunk's first byte
    assert not any(gauge.too_deep(chunk) for chunk in (b'["a\\', b'"[[[[', b'"]'))
