"""The watch's decisions: when two entries are one story, when a feed is polled next or parked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.content.watch import domain

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("a, b", [
    ("https://www.acme.example/news/a/?utm_source=rss&utm_medium=rss", "http://acme.example/news/a"),
    ("https://acme.example/a?id=7&fbclid=x#comments", "https://acme.example/a?id=7"),
    ("https://acme.example/a?b=2&a=1", "https://acme.example/a?a=1&b=2"),
])
def test_links_that_differ_only_by_how_they_were_reached_are_one(a: str, b: str) -> None:
    assert domain.link_key(a) == domain.link_key(b)


def test_links_to_different_pages_stay_apart() -> None:
    assert domain.link_key("https://acme.example/a?id=7") != domain.link_key("https://acme.example/a?id=8")


def test_near_identical_titles_are_one_story_and_different_ones_are_not() -> None:
    seen = [domain.title_key("Our new plant in Lyon – 300 jobs by 2027")]
    assert domain.similar_title(domain.title_key("Our new plant in Lyon: 300 jobs by 2027!"), seen) == seen[0]
    assert domain.similar_title(domain.title_key("OUR NEW PLANT IN LYON, 300 JOBS BY 2027"), seen) == seen[0]
    assert domain.similar_title(domain.title_key("Our new plant in Lille: 120 jobs by 2028"), seen) is None


def test_a_failing_feed_backs_off_exponentially_up_to_a_day_and_is_parked() -> None:
    hour = timedelta(hours=1)
    assert [domain.next_poll(NOW, hour, n) - NOW for n in (0, 1, 2, 3, 10)] == [
        hour, 2 * hour, 4 * hour, 8 * hour, timedelta(hours=24)]
    assert not domain.parks(4, 5, 500) and domain.parks(5, 5, 500) and domain.parks(1, 5, 410)


def test_health_says_what_an_editor_must_do() -> None:
    base = {"active": True, "parked_at": None, "failures": 0, "last_ok_at": None}
    assert domain.health(base) == "pending"
    assert domain.health({**base, "last_ok_at": NOW}) == "ok"
    assert domain.health({**base, "last_ok_at": NOW, "failures": 2}) == "failing"
    assert domain.health({**base, "failures": 5, "parked_at": NOW}) == "parked"
    assert domain.health({**base, "active": False, "parked_at": NOW}) == "paused"


def test_a_document_that_is_not_a_feed_is_refused_with_its_cause() -> None:
    with pytest.raises(domain.FeedRefused, match="not an RSS or Atom feed"):
        domain.parse_feed(b"<!doctype html><html><body>moved</body></html>")
    with pytest.raises(domain.FeedRefused):
        domain.parse_feed(b"")


@pytest.mark.parametrize("state, content_state, published, outcome", [
    ("new", None, None, "waiting"),
    ("dismissed", None, None, "declined"),
    ("adopted", "draft", None, "in_preparation"),
    ("adopted", "in_review", None, "in_preparation"),
    ("adopted", "published", NOW, "published"),
    ("adopted", "retired", NOW, "published"),     # it was live: it counts
    ("adopted", "retired", None, "declined"),     # dropped before publication
])
def test_what_became_of_an_idea(state: str, content_state: str | None, published: datetime | None,
                                outcome: str) -> None:
    assert domain.idea_outcome(state, content_state, published) == outcome


def test_an_idea_without_a_link_is_its_own_story_and_one_with_a_link_meets_the_feeds() -> None:
    assert domain.idea_link_key(None, "i-1") != domain.idea_link_key(None, "i-2")
    assert domain.idea_link_key("https://www.acme.example/a?utm_source=x", "i-1") == domain.link_key(
        "https://acme.example/a")
