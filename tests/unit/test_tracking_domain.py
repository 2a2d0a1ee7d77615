"""Tracking's pure decisions: code validation, bot detection, client fingerprints, UTM links."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from services.tracking import domain

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")


@pytest.mark.parametrize("code", ["abcdef", "Ab3_-x9QzPLm0aBc", "a" * 64])
def test_valid_codes(code: str) -> None:
    assert domain.valid_code(code)


@pytest.mark.parametrize("code", ["", "abc", "a" * 65, "//evil.example", "/evil.example", "abc.def",
                                  "abcdef\n", "abc def", "abcdé1", "https://evil.example", "abcdef?x=1"])
def test_malformed_codes(code: str) -> None:
    assert not domain.valid_code(code)


@pytest.mark.parametrize("agent", [
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Twitterbot/1.0",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "WhatsApp/2.23.20.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "",
    None,
])
def test_link_preview_fetchers_and_robots_are_not_human(agent: str | None) -> None:
    assert not domain.is_human(agent)


@pytest.mark.parametrize("agent", [
    CHROME,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
])
def test_browsers_are_human(agent: str) -> None:
    assert domain.is_human(agent)


def test_client_fingerprint_is_stable_and_specific() -> None:
    one = domain.client_fingerprint("abcdef", "203.0.113.7", CHROME)
    assert one == domain.client_fingerprint("abcdef", "203.0.113.7", CHROME)
    assert one != domain.client_fingerprint("abcdef", "203.0.113.8", CHROME)
    assert one != domain.client_fingerprint("abcdef", "203.0.113.7", "Firefox")
    assert one != domain.client_fingerprint("abcdeg", "203.0.113.7", CHROME)
    assert b"203.0.113.7" not in one


def utm(destination: str, campaign: str | None = None) -> str:
    return domain.with_utm(destination, network="linkedin", content_id="c-42", campaign=campaign,
                           link_code="Zk3pQ8xw")


def test_utm_parameters_are_appended() -> None:
    url = utm("https://www.example.com/news/launch")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "www.example.com", "/news/launch")
    assert dict(parse_qsl(parts.query)) == {"utm_source": "linkedin", "utm_medium": "employee-advocacy",
                                            "utm_campaign": "c-42", "utm_content": "Zk3pQ8xw"}


def test_campaign_wins_over_content_id() -> None:
    assert dict(parse_qsl(urlsplit(utm("https://x.example/", campaign="spring 2026")).query))["utm_campaign"] \
        == "spring 2026"


def test_the_destination_query_and_fragment_are_preserved() -> None:
    url = utm("https://x.example/p?a=1&b=hello%20world&flag&utm_source=newsletter&UTM_x=kept#section-2")
    parts = urlsplit(url)
    assert parts.fragment == "section-2"
    assert parts.query.startswith("a=1&b=hello%20world&flag&UTM_x=kept&")
    query = parse_qsl(parts.query, keep_blank_values=True)
    assert [v for k, v in query if k == "utm_source"] == ["linkedin"]  # ours replace theirs


def test_a_lapsed_consent_stops_shares_counting_until_renewed_and_other_changes_leave_it() -> None:
    from shared.events import ProfileChange

    assert domain.counts_shares_after(None) is True  # enrolled
    assert domain.counts_shares_after(ProfileChange.consent_lapsed) is False
    assert domain.counts_shares_after(ProfileChange.consent_renewed) is True
    assert domain.counts_shares_after(ProfileChange.profile) is None  # as it was
