"""Property tests (hypothesis): envelope parsing never fails but with EnvelopeError, the charter's
positions stay within the text and checking is deterministic, and the KPI arithmetic merges the
same whatever the order or grouping of the events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.content import charter
from services.reporting import domain
from services.reporting.domain import Effect, ScopeType, Window
from shared.envelope import CloudEvent, EnvelopeError, from_kafka, parse, typed

PROPERTY = settings(max_examples=300, deadline=None, database=None)

header_names = st.sampled_from(["ce_id", "ce_type", "ce_source", "ce_specversion", "ce_tenantid", "ce_subject",
                                "ce_time", "content-type", "ce_traceparent", "x-other"])
header_values = st.one_of(st.binary(max_size=40), st.sampled_from(
    [b"1.0", b"0.3", b"application/cloudevents+json", b"application/json", b"content.published",
     b"2026-01-01T00:00:00Z", b"\xff\xfe", b""]))
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                         max_size=4), max_leaves=12)
structured = st.fixed_dictionaries({}, optional={
    "specversion": st.sampled_from(["1.0", "0.3", 1]), "id": st.text(max_size=8), "type": st.text(max_size=30),
    "source": st.text(max_size=8), "tenantid": st.text(max_size=8), "time": st.text(max_size=25),
    "data": json_values, "data_base64": st.text(max_size=20)}).map(lambda d: json.dumps(d).encode())


@PROPERTY
@given(value=st.one_of(st.none(), st.binary(max_size=200), structured,
                       json_values.map(lambda v: json.dumps(v).encode())),
       headers=st.lists(st.tuples(header_names, header_values), max_size=10))
def test_any_record_parses_to_an_event_or_an_envelope_error(value: bytes | None,
                                                            headers: list[tuple[str, bytes]]) -> None:
    try:
        expected: CloudEvent | str = typed(from_kafka(value, headers))
    except EnvelopeError as error:
        expected = str(error)
    try:
        got: CloudEvent | str = parse(value, headers)  # the consumers' one-pass path: the same outcome
    except EnvelopeError as error:
        got = str(error)
    assert got == expected


words = st.text(alphabet=st.sampled_from("abcéÉèçAB xyz-'ßﬁİı\u0301"), min_size=1, max_size=12)
texts = st.text(alphabet=st.sampled_from("abcéÉèçAB xyz-'.ßﬁİı\u0301\n"), max_size=80)


@PROPERTY
@given(text=texts)
def test_folding_maps_every_folded_character_back_into_the_text(text: str) -> None:
    folded, origin = charter.fold(text)
    assert len(origin) == len(folded)
    assert origin == sorted(origin) and all(0 <= i < len(text) for i in origin)


@PROPERTY
@given(text=texts, phrase=words)
def test_occurrences_lie_within_the_text(text: str, phrase: str) -> None:
    for start, end in charter.occurrences(text, phrase):
        assert 0 <= start < end <= len(text)


@PROPERTY
@given(title=texts, summary=texts, share=texts, forbidden=st.lists(words, max_size=4),
       spellings=st.lists(words, max_size=3), disclosure=st.none() | words,
       limit=st.none() | st.integers(1, 50))
def test_charter_violations_point_inside_their_field_and_checking_is_deterministic(
        title: str, summary: str, share: str, forbidden: list[str], spellings: list[str],
        disclosure: str | None, limit: int | None) -> None:
    item = {"title": title, "summary": summary, "url": "https://acme.example/a",
            "share_texts": [{"network": "linkedin", "language": "en", "text": share}]}
    rules = charter.Charter(forbidden_terms=[w for w in forbidden if w.strip()],
                            required_spellings=[w for w in spellings if w.strip()],
                            mandatory_disclosure=disclosure, max_length={"linkedin": limit} if limit else {})
    violations = charter.check(item, rules)
    fields = dict(charter.texts_of(item))
    for v in violations:
        text = fields.get(v.field, item.get(v.field, ""))
        assert 0 <= v.position <= len(text) and v.length >= 0, v
        assert v.position + v.length <= max(len(text), 1) or v.rule == "max_length", v
    assert charter.check(item, rules) == violations  # same input, same answer
    # An item without any of the forbidden terms has no forbidden-term violation.
    clean = charter.check({"title": "", "summary": "", "share_texts": []}, rules)
    assert not [v for v in clean if v.rule == "forbidden_terms"]


START = datetime(2026, 1, 1, tzinfo=UTC)
effects = st.lists(st.tuples(
    st.sampled_from(["t1", "t2"]),
    st.builds(Effect, scope_type=st.sampled_from(list(ScopeType)), scope_id=st.sampled_from(["a", "b"]),
              kpi=st.sampled_from(["clicks_total", "reactions", "impressions"]), delta=st.integers(-5, 50),
              at=st.integers(0, 24 * 60 * 40).map(lambda m: START + timedelta(minutes=m)),
              member=st.none())), max_size=40)


def spread(deltas: domain.Deltas) -> dict[tuple[Any, ...], int]:
    """What the database makes of the hour-level deltas: each added to its hour's four windows."""
    total: dict[tuple[Any, ...], int] = {}
    for key, delta in deltas.plain.items():
        for window, start in deltas.windows[key.hour]:
            k = (key.tenant, str(key.scope_type), key.scope_id, window, start, key.kpi)
            total[k] = total.get(k, 0) + delta
    return total


def merged(*parts: dict[tuple[Any, ...], int]) -> dict[tuple[Any, ...], int]:
    total: dict[tuple[Any, ...], int] = {}
    for part in parts:
        for key, delta in part.items():
            total[key] = total.get(key, 0) + delta
    return {k: v for k, v in total.items() if v}


@PROPERTY
@given(events=effects, cut=st.integers(0, 40), seed=st.randoms(use_true_random=False))
def test_rollups_are_the_same_whatever_the_order_and_batching_of_the_events(events, cut, seed) -> None:  # noqa: ANN001
    whole = merged(spread(domain.expand(events)))
    shuffled = list(events)
    seed.shuffle(shuffled)
    assert merged(spread(domain.expand(shuffled))) == whole  # order-independent
    assert merged(spread(domain.expand(events[:cut])), spread(domain.expand(events[cut:]))) == whole  # batches add up
    # Every window's total is the sum of the deltas of the events in it.
    for window in Window:
        totals: dict[tuple[str, str, str, str], int] = {}
        for tenant, e in events:
            key = (tenant, str(e.scope_type), e.scope_id, e.kpi)
            totals[key] = totals.get(key, 0) + e.delta
        by_key: dict[tuple[str, str, str, str], int] = {}
        for (tenant, scope_type, scope_id, w, _, kpi), delta in whole.items():
            if w == window:
                by_key[(tenant, scope_type, scope_id, kpi)] = by_key.get((tenant, scope_type, scope_id, kpi), 0) + delta
        assert {k: v for k, v in by_key.items() if v} == {k: v for k, v in totals.items() if v}


@PROPERTY
@given(counted=st.dictionaries(st.sampled_from(["clicks_total", "reactions", "comments", "reshares", "impressions",
                                                "sharing_ambassadors", "notified_ambassadors"]),
                               st.integers(0, 10**9)))
def test_derived_kpis_are_the_sums_and_ratios_they_are_defined_as(counted: dict[str, int]) -> None:
    values = domain.kpi_values(counted)
    assert values["engagements"] == sum(counted.get(k, 0) for k in ("clicks_total", "reactions", "comments",
                                                                     "reshares"))
    if counted.get("impressions"):
        assert abs(values["engagement_rate"] - values["engagements"] / counted["impressions"]) < 1e-6
    else:
        assert "engagement_rate" not in values
    if counted.get("notified_ambassadors"):
        assert values["adoption_rate"] >= 0
