"""Content decisions without I/O: workflow, four eyes, the brand charter, near-duplicates,
webhook signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.content import charter as charters
from services.content import domain, webhooks
from services.content.charter import Charter


def test_illegal_transitions_name_the_current_state_and_the_allowed_ones():
    with pytest.raises(domain.IllegalTransition) as refused:
        domain.check_transition("draft", "published")
    assert refused.value.current == "draft" and refused.value.allowed == ["in_review", "retired"]
    domain.check_transition("in_review", "draft")  # a rejection
    with pytest.raises(domain.IllegalTransition):
        domain.check_transition("retired", "draft")


def test_one_step_publication_walks_review_and_approval_but_not_from_published_or_retired():
    assert domain.publication_path("draft") == ["in_review", "approved", "published"]
    assert domain.publication_path("scheduled") == ["published"]
    for state in ("published", "retired"):
        with pytest.raises(domain.IllegalTransition):
            domain.publication_path(state)


def test_four_eyes_and_edits_send_approved_items_back_to_review():
    with pytest.raises(domain.SelfApproval):
        domain.check_four_eyes(["claire", "bob"], "bob")
    domain.check_four_eyes(["claire"], "bob")
    assert [domain.state_after_edit(s) for s in ("draft", "in_review", "approved", "scheduled", "published")] == \
        ["draft", "in_review", "in_review", "in_review", "in_review"]
    with pytest.raises(domain.IllegalTransition):
        domain.state_after_edit("retired")
    assert domain.authors_after_edit(["a"], "b") == ["a", "b"] and domain.authors_after_edit(["a"], "a") == ["a"]


def test_embargo_holds_publication_whatever_the_schedule():
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert domain.publication_time(now, now + timedelta(hours=1)) == now + timedelta(hours=1)
    assert domain.publication_time(now + timedelta(hours=2), now) == now + timedelta(hours=2)
    assert domain.under_embargo(now + timedelta(seconds=1), now) and not domain.under_embargo(None, now)


def test_scope_and_versions():
    assert domain.may_manage(None, "SUB-A") and domain.may_manage("SUB-A", "SUB-A")
    assert not domain.may_manage("SUB-A", "SUB-B") and not domain.may_manage("SUB-A", None)
    assert domain.newer(2, 1) and not domain.newer(1, 1) and not domain.newer(1, 2) and domain.newer(0, None)
    assert domain.event_type_for_publication(True) == "content.updated"
    assert domain.ingested_state(True, 0) == "approved" and domain.ingested_state(True, 1) == "draft"


def _item(text: str, **more) -> dict:
    return {"title": "t", "summary": "", "body": "", "url": "https://acme.example/x",
            "share_texts": [{"network": "x", "language": "fr", "text": text}], **more}


def test_forbidden_terms_match_whatever_the_case_and_accents_at_the_authors_position():
    charter = Charter(forbidden_terms=["Concurrent Santé"])
    found = charters.check(_item("Mieux que CONCURRENT sante, vraiment"), charter)
    assert [(v.field, v.position, v.length, v.rule) for v in found] == \
        [("share_texts[0].text", 10, 16, "forbidden_terms")]
    # folding "ß" to "ss" lengthens the folded text: positions still point into the original
    shifted = charters.check(_item("Straße: concurrent santé"), charter)
    assert [(v.position, v.length) for v in shifted] == [(8, 16)]
    assert charters.check(_item("Concurrentsanté n'est pas un mot"), charter) == []  # whole words only


@pytest.mark.parametrize("written", [
    "a concurrent\nsanté", "a concurrent  sante", "a concurrent-santé", "a Concurrent\t–\tSanté",
    "a concurrent_santé", "a concurrent. Santé", "a con\u00adcurrent sante", "a concurrent\u200b sante"])
def test_a_forbidden_phrase_is_caught_across_any_run_of_whitespace_and_punctuation(written: str) -> None:
    [violation] = charters.check(_item(written), Charter(forbidden_terms=["Concurrent Santé"]))
    assert (violation.position, violation.rule) == (2, "forbidden_terms")
    assert written[violation.position:violation.position + violation.length].endswith(("santé", "sante", "Santé"))


def test_required_spelling_flags_any_other_case_or_accents():
    charter = Charter(required_spellings=["Ramsay Santé"])
    found = charters.check(_item("Chez Ramsay Sante et ramsay santé, mais Ramsay Santé est juste"), charter)
    assert [(v.position, v.rule) for v in found] == [(5, "required_spellings"), (21, "required_spellings")]


def test_length_disclosure_and_link_domains():
    charter = Charter(max_length={"x": 20}, mandatory_disclosure="#Employee",
                      allowed_link_domains=["acme.example"])
    item = _item("Read https://evil.example/a and more text", image_url="https://cdn.acme.example/i.png")
    rules = {(v.rule, v.field, v.position) for v in charters.check(item, charter)}
    assert rules == {("allowed_link_domains", "share_texts[0].text", 5), ("max_length", "share_texts[0].text", 20),
                     ("mandatory_disclosure", "share_texts[0].text", 41)}
    assert charters.check(_item("ok #employee"), charter) == []
    outside = charters.check({**_item("ok #employee"), "url": "https://acme.example.evil.com/"}, charter)
    assert [(v.field, v.rule) for v in outside] == [("url", "allowed_link_domains")]


def test_a_subsidiary_override_adds_terms_and_replaces_what_it_sets():
    group = Charter(forbidden_terms=["Rival"], max_length={"x": 280, "linkedin": 3000}, mandatory_disclosure="#staff",
                    country_disclosures={"US": "#ad"})
    local = Charter.model_validate({"forbidden_terms": ["Autre"], "max_length": {"x": 200},
                                    "country_disclosures": {"GB": "#ad"}})
    merged = charters.effective(group, local)
    assert merged.forbidden_terms == ["Rival", "Autre"]
    assert merged.max_length == {"x": 200, "linkedin": 3000}
    assert merged.mandatory_disclosure == "#staff"  # not set by the override: inherited
    assert merged.country_disclosures == {"US": "#ad", "GB": "#ad"}
    cleared = Charter.model_validate({"mandatory_disclosure": None})
    assert charters.effective(group, cleared).mandatory_disclosure is None


def test_near_duplicate_variants_are_warned_per_network_and_language():
    texts = [{"network": "linkedin", "language": "en", "text": "Proud of our new plant running on renewables!"},
             {"network": "linkedin", "language": "en", "text": "Proud of our new plant running on renewables!!"},
             {"network": "linkedin", "language": "en", "text": "A factory powered by wind: have a look."},
             {"network": "x", "language": "en", "text": "Proud of our new plant running on renewables!"}]
    warned = charters.near_duplicates(texts)
    assert [(w.field, w.rule) for w in warned] == [("share_texts[1].text", "near_duplicate")]


def test_standard_webhooks_signatures():
    secret = webhooks.new_secret()
    body = b'{"a":1}'
    signature = webhooks.sign(secret, "msg_1", 1_700_000_000, body)
    webhooks.verify(secret, "msg_1", "1700000000", f"v1,bogus {signature}", body, now=1_700_000_100,
                    tolerance_seconds=300)
    refusals = [("msg_1", "1700000000", signature, b'{"a":2}', 1_700_000_000),  # body changed
                ("msg_2", "1700000000", signature, body, 1_700_000_000),  # id changed
                ("msg_1", "1700000000", signature, body, 1_700_000_301),  # too old
                ("msg_1", "yesterday", signature, body, 1_700_000_000),
                ("msg_1", "1700000000", None, body, 1_700_000_000)]
    for webhook_id, timestamp, sig, payload, now in refusals:
        with pytest.raises(webhooks.InvalidSignature):
            webhooks.verify(secret, webhook_id, timestamp, sig, payload, now=now, tolerance_seconds=300)
    with pytest.raises(webhooks.InvalidSignature):
        webhooks.verify(webhooks.new_secret(), "msg_1", "1700000000", signature, body, now=1_700_000_000,
                        tolerance_seconds=300)
