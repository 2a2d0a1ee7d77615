"""Distribution's pure decisions: enrolment checks, audience targeting, links and share URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from services.distribution import domain
from shared.events import Audience, Network, ShareText

MEMBER = domain.Member(ambassador_id="a1", subsidiary="FR01", department="Sales", site="Lyon",
                       country="FR", language="fr-FR")


def test_only_a_known_current_employee_may_enrol() -> None:
    domain.check_enrolment(known=True, departed=False)
    with pytest.raises(domain.UnknownEmployee) as unknown:
        domain.check_enrolment(known=False, departed=False)
    assert unknown.value.reason == "unknown_employee"
    with pytest.raises(domain.EmployeeGone) as gone:
        domain.check_enrolment(known=True, departed=True)
    assert gone.value.reason == "employee_departed"


def test_an_empty_audience_is_everyone() -> None:
    assert domain.in_audience(Audience(), MEMBER)


@pytest.mark.parametrize("audience, expected", [
    (Audience(subsidiaries=["FR01", "DE02"]), True),
    (Audience(subsidiaries=["DE02"]), False),
    (Audience(departments=["Sales"], sites=["Lyon"]), True),
    (Audience(departments=["Sales"], sites=["Paris"]), False),  # every non-empty list must match
    (Audience(countries=["fr"]), True),
    (Audience(countries=["DE"]), False),
    (Audience(languages=["fr"]), True),  # a primary language takes its regional variants
    (Audience(languages=["FR-fr"]), True),
    (Audience(languages=["fr-CA"]), False),
    (Audience(languages=["en"]), False),
    (Audience(groups=["champions"]), False),  # not a member: a group audience never widens to everyone
])
def test_audience_targeting(audience: Audience, expected: bool) -> None:
    assert domain.in_audience(audience, MEMBER) is expected


def test_one_link_per_network_with_share_texts_else_linkedin() -> None:
    texts = [ShareText(network=Network.xing, language="de", text="a"),
             ShareText(network=Network.linkedin, language="de", text="b"),
             ShareText(network=Network.xing, language="en", text="c", variant=1)]
    assert domain.link_networks(texts) == [Network.linkedin, Network.xing]
    assert domain.link_networks([]) == [Network.linkedin]


def test_tracked_url() -> None:
    assert domain.tracked_url("https://go.example.com/", "abc_DEF-123") == "https://go.example.com/r/abc_DEF-123"


def test_share_intents_carry_the_encoded_tracked_link() -> None:
    link = "https://go.example.com/r/abc?x=1&y=2"
    linkedin = domain.share_intent(Network.linkedin, link)
    assert linkedin.startswith("https://www.linkedin.com/sharing/share-offsite/?url=")
    assert parse_qs(urlsplit(linkedin).query) == {"url": [link]}
    x = domain.share_intent(Network.x, link, "Nous recrutons & c'est #génial")
    assert x.startswith("https://twitter.com/intent/tweet?")
    assert parse_qs(urlsplit(x).query) == {"text": ["Nous recrutons & c'est #génial"], "url": [link]}
    assert parse_qs(urlsplit(domain.share_intent(Network.facebook, link)).query) == {"u": [link]}
    assert domain.share_intent(Network.xing, link).startswith("https://www.xing.com/spi/shares/new?url=https%3A%2F%2F")


def test_share_text_prefers_the_content_language_then_the_first_variant() -> None:
    texts = [ShareText(network=Network.x, language="en", text="english"),
             ShareText(network=Network.x, language="fr", text="second", variant=1),
             ShareText(network=Network.x, language="fr", text="first", variant=0)]
    assert domain.share_text_for(texts, Network.x, "fr") == "first"
    assert domain.share_text_for(texts, Network.x, "de") == "english"
    assert domain.share_text_for(texts, Network.linkedin, "fr") == ""


def test_a_lapsed_consent_is_not_in_force_and_its_lapse_is_recorded_once() -> None:
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    in_force = {"consent_expires_at": now + timedelta(seconds=1), "lapsed_at": None}
    lapsed = {"consent_expires_at": now, "lapsed_at": None}
    recorded = {"consent_expires_at": now - timedelta(days=1), "lapsed_at": now - timedelta(days=1)}
    assert [domain.consent_in_force(a, now) for a in (in_force, lapsed, recorded)] == [True, False, False]
    assert [domain.lapse_to_record(a, now) for a in (in_force, lapsed, recorded)] == [False, True, False]
