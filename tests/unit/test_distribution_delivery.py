"""Distribution's pure delivery decisions: the alert channel, fatigue (budget, daily cap, quiet
hours on the ambassador's clock, the digest), share-text language and variants, backoff with
jitter, the circuit breaker, and the Standard Webhooks signature."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import standardwebhooks

from services.distribution import channels, domain
from shared.events import Network, NotificationDeferred, NotificationSent, ShareText

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 13:00 in Paris, 01:00 (next day) in Auckland


def test_the_alert_channel_is_the_first_chosen_and_the_feed_by_default() -> None:
    assert domain.alert_channel([]) == "in_app"
    assert domain.alert_channel(["slack", "email"]) == "slack"


def test_within_budget_and_outside_quiet_hours_an_alert_goes_now() -> None:
    fatigue = domain.Fatigue(weekly_budget=3, quiet_start=time(22), quiet_end=time(7), time_zone="Europe/Paris")
    assert domain.when_to_alert(NOW, "email", fatigue, [NOW - timedelta(days=1)] * 2) is None


def test_the_weekly_budget_defers_until_the_oldest_alert_leaves_the_window() -> None:
    sent = [NOW - timedelta(days=6), NOW - timedelta(days=2), NOW - timedelta(days=8)]
    deferral = domain.when_to_alert(NOW, "in_app", domain.Fatigue(weekly_budget=2), sent)
    assert deferral == domain.Deferral(NOW + timedelta(days=1), "weekly_budget")


def test_the_ambassadors_daily_cap_defers_too() -> None:
    deferral = domain.when_to_alert(NOW, "slack", domain.Fatigue(weekly_budget=10, daily_cap=1),
                                    [NOW - timedelta(hours=3)])
    assert deferral == domain.Deferral(NOW + timedelta(hours=21), "daily_cap")


def test_quiet_hours_are_read_on_the_ambassadors_own_clock() -> None:
    night = domain.Fatigue(weekly_budget=5, quiet_start=time(22), quiet_end=time(7), time_zone="Pacific/Auckland")
    deferral = domain.when_to_alert(NOW, "email", night, [])
    assert deferral is not None and deferral.reason == "quiet_hours"
    assert deferral.until.astimezone(ZoneInfo("Pacific/Auckland")).replace(tzinfo=None) == datetime(2026, 3, 11, 7)
    paris = domain.Fatigue(weekly_budget=5, quiet_start=time(22), quiet_end=time(7), time_zone="Europe/Paris")
    assert domain.when_to_alert(NOW, "email", paris, []) is None


def test_a_budget_slot_that_frees_in_quiet_hours_waits_for_their_end() -> None:
    fatigue = domain.Fatigue(weekly_budget=1, quiet_start=time(0), quiet_end=time(8), time_zone="UTC")
    deferral = domain.when_to_alert(NOW, "email", fatigue, [NOW - timedelta(days=6, hours=10)])  # frees at 02:00
    assert deferral == domain.Deferral(datetime(2026, 3, 11, 8, tzinfo=UTC), "weekly_budget")


def test_the_digest_goes_at_the_next_digest_hour_local() -> None:
    deferral = domain.when_to_alert(NOW, "email_digest", domain.Fatigue(5, time_zone="America/New_York"), [],
                                    digest_hour=8)
    assert deferral is not None and deferral.reason == "digest"
    assert deferral.until.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None) == datetime(2026, 3, 11, 8)


def test_share_texts_in_the_readers_language_and_his_variant() -> None:
    texts = [ShareText(network=Network.linkedin, language="fr", text="un", variant=0),
             ShareText(network=Network.linkedin, language="fr", text="deux", variant=1),
             ShareText(network=Network.linkedin, language="de-DE", text="eins", variant=0),
             ShareText(network=Network.linkedin, language="en", text="one", variant=0)]
    assert domain.share_text_for(texts, Network.linkedin, "fr-CA", 1, "en") == "deux"
    assert domain.share_text_for(texts, Network.linkedin, "de-AT", 1, "en") == "eins"  # only variant 0 in German
    assert domain.share_text_for(texts, Network.linkedin, "it", 0, "en") == "one"  # the content's language


def test_variants_spread_evenly_and_stay_put() -> None:
    texts = [ShareText(network=Network.x, language="fr", text=str(v), variant=v) for v in range(3)]
    picks = [domain.variant_for("c1", f"a{n}", texts) for n in range(3000)]
    assert all(800 < picks.count(v) < 1200 for v in range(3))
    assert picks == [domain.variant_for("c1", f"a{n}", texts) for n in range(3000)]
    assert domain.variant_for("c1", "a1", texts[:1]) == 0


def test_retries_back_off_exponentially_with_jitter_and_a_cap() -> None:
    assert domain.retry_delay(1, 2, 60, 0.0) == 1.0 and domain.retry_delay(1, 2, 60, 0.999) < 2
    assert domain.retry_delay(3, 2, 60, 0.0) == 4.0
    assert domain.retry_delay(20, 2, 60, 0.999) <= 60


def test_a_failing_endpoint_opens_its_circuit_alone_then_lets_one_probe_through() -> None:
    breaker = domain.CircuitBreaker(threshold=2, open_seconds=10)
    breaker.failed("t/webhook", 0)
    assert breaker.allows("t/webhook", 1)
    breaker.failed("t/webhook", 1)
    assert not breaker.allows("t/webhook", 2) and breaker.allows("t/slack", 2)
    assert breaker.allows("t/webhook", 11)  # the probe
    assert not breaker.allows("t/webhook", 12)  # only one
    breaker.succeeded("t/webhook")
    assert breaker.allows("t/webhook", 12)


def test_webhook_signatures_follow_the_standard_webhooks_scheme() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = json.dumps({"type": "notification.sent"}).encode()
    ours = channels.sign(secret, "msg_1", int(NOW.timestamp()), body)
    assert ours == standardwebhooks.Webhook(secret).sign("msg_1", NOW, body.decode())  # the reference library


def test_the_fanouts_event_data_meets_the_contracts() -> None:
    data = {"notification_id": "n", "content_id": "c", "ambassador_id": "a", "subsidiary": "FR01",
            "department": "", "campaign": None, "channel": "email", "reason": "quiet_hours", "at": NOW.isoformat(),
            "due_at": (NOW + timedelta(hours=1)).isoformat(),
            "links": [{"code": "abcdefgh", "network": "x", "destination_url": "https://acme.example/"}]}
    assert NotificationDeferred.model_validate(data).due_at == NOW + timedelta(hours=1)
    assert NotificationSent.model_validate({**data, "due_at": None}).links[0].code == "abcdefgh"
