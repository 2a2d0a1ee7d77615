"""Tracking's pure webhook and share decisions: Standard Webhooks signatures (checked against the
reference library's signer), post identity, safe redirect locations, event references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from services.tracking import domain

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
BODY = b'{"events":[{"type":"reaction"}]}'


def reference_headers(secret: str, at: datetime = NOW, msg_id: str = "msg_1") -> dict[str, str | None]:
    return {"webhook_id": msg_id, "timestamp": str(int(at.timestamp())),
            "signatures": Webhook(secret).sign(msg_id, at, BODY.decode())}


def test_a_reference_signature_verifies_with_any_active_secret() -> None:
    old, new = domain.new_webhook_secret(), domain.new_webhook_secret()
    domain.verify_signature([old, new], **reference_headers(new), body=BODY, now=NOW)
    domain.verify_signature([old, new], **reference_headers(old), body=BODY, now=NOW + timedelta(minutes=5))


def test_one_matching_signature_among_several_is_enough() -> None:
    secret = domain.new_webhook_secret()
    headers = reference_headers(secret)
    headers["signatures"] = f"v2,abc v1,bm9wZQ== {headers['signatures']}"
    domain.verify_signature([secret], **headers, body=BODY, now=NOW)


@pytest.mark.parametrize("change, reason", [
    ({"webhook_id": None}, "missing"),
    ({"timestamp": "1700000000.5"}, "integer seconds"),
    ({"signatures": "v1,not-base64!!"}, "no matching signature"),
    ({"signatures": "v1a,abc"}, "no matching signature"),
    ({"webhook_id": "msg 2"}, "printable ASCII"),
])
def test_malformed_headers_are_refused(change: dict[str, str | None], reason: str) -> None:
    secret = domain.new_webhook_secret()
    with pytest.raises(domain.SignatureRejected, match=reason):
        domain.verify_signature([secret], **{**reference_headers(secret), **change}, body=BODY, now=NOW)


def test_other_secret_body_or_id_does_not_verify() -> None:
    secret = domain.new_webhook_secret()
    for secrets, body, msg_id in ([domain.new_webhook_secret()], BODY, "msg_1"), ([secret], BODY + b" ", "msg_1"):
        with pytest.raises(domain.SignatureRejected, match="no matching signature"):
            domain.verify_signature(secrets, **reference_headers(secret, msg_id=msg_id), body=body, now=NOW)
    headers = reference_headers(secret)
    with pytest.raises(domain.SignatureRejected):
        domain.verify_signature([secret], **{**headers, "webhook_id": "msg_2"}, body=BODY, now=NOW)
    with pytest.raises(domain.SignatureRejected, match="no matching signature"):
        domain.verify_signature([], **headers, body=BODY, now=NOW)


@pytest.mark.parametrize("skew", [timedelta(minutes=5, seconds=1), -timedelta(minutes=5, seconds=1)])
def test_timestamps_outside_the_tolerance_are_refused(skew: timedelta) -> None:
    secret = domain.new_webhook_secret()
    with pytest.raises(domain.SignatureRejected, match="5-minute"):
        domain.verify_signature([secret], **reference_headers(secret, at=NOW - skew), body=BODY, now=NOW)


def test_event_ids_are_stable_per_delivery() -> None:
    assert domain.event_id("src", "msg_1", 3) == domain.event_id("src", "msg_1", 3)
    assert len({domain.event_id("src", "msg_1", 3), domain.event_id("src", "msg_1", 4),
                domain.event_id("src", "msg_2", 3), domain.event_id("other", "msg_1", 3)}) == 4


@pytest.mark.parametrize("source, ok", [("linkedin-analytics", True), ("ab", True), ("a", False),
                                        ("Upper", False), ("../x", False), ("a" * 64, False)])
def test_source_names(source: str, ok: bool) -> None:
    assert domain.valid_source(source) is ok


def test_the_same_post_written_differently_has_one_key() -> None:
    key = domain.post_key("linkedin", "https://www.linkedin.com/feed/update/urn:li:activity:7100/")
    assert key == domain.post_key("linkedin", "https://linkedin.com/feed/update/urn:li:activity:7100?trk=a&utm_x=1")
    assert key != domain.post_key("linkedin", "https://www.linkedin.com/feed/update/urn:li:activity:7101/")
    assert domain.post_key("facebook", "https://m.facebook.com/permalink.php?story_fbid=1&id=2&fbclid=z") == \
        domain.post_key("facebook", "https://www.facebook.com/permalink.php?id=2&story_fbid=1")
    assert domain.post_key("x", None) == ""


@pytest.mark.parametrize("network, url", [("linkedin", "https://evil.example/linkedin.com"),
                                          ("linkedin", "https://notlinkedin.com/p"), ("x", "https://linkedin.com/p"),
                                          ("xing", "ftp://xing.com/p")])
def test_a_post_elsewhere_than_its_network_is_refused(network: str, url: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        domain.post_key(network, url)


@pytest.mark.parametrize("url, ok", [
    ("https://www.example.com/a?b=c&utm_source=x#f", True),
    ("http://example.com/", True),
    ("javascript:alert(1)", False),
    ("//evil.example/", False),
    ("https://example.com/a\r\nSet-Cookie: x=1", False),
    ("https://example.com/a b", False),
    ("https:///nohost", False),
    ("https://exämple.com/", False),
])
def test_only_plain_http_locations_are_sent(url: str, ok: bool) -> None:
    assert domain.safe_location(url) is ok


LINK = {"content_id": "c1", "network": "linkedin", "ambassador_id": "a1"}


@pytest.mark.parametrize("fields, problem", [
    ({"content_id": "c1"}, None),
    ({"content_id": "c9"}, "unknown content"),
    ({"content_id": "c1", "link_code": "code01", "link": LINK}, None),
    ({"content_id": "c1", "link_code": "code01", "link": None}, "unknown tracked link"),
    ({"content_id": "c2", "link_code": "code01", "link": LINK}, "another content"),
    ({"content_id": "c1", "link_code": "code01", "link": LINK, "network": "x"}, "network"),
    ({"content_id": "c1", "link_code": "code01", "link": LINK, "ambassador_id": "a2"}, "ambassador"),
])
def test_webhook_events_must_name_the_tenants_contents_and_links(fields: dict, problem: str | None) -> None:  # type: ignore[type-arg]
    arguments = {"network": "linkedin", "ambassador_id": None, "link_code": None, "link": None,
                 "known_contents": {"c1", "c2"}, **fields}
    found = domain.reference_problem(**arguments)
    assert (found is None) if problem is None else (problem in (found or ""))
