"""The one metrics module: every Prometheus metric the mechanisms expose, named by the
conventions (base units, ``_total``, ``_seconds``). Labels stay bounded: topics, routes,
outcomes, never tenants' entities."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

EVENTS_CONSUMED = Counter(
    "portevoix_events_consumed_total",
    "Events taken from Kafka by a consumer, by outcome "
    "(processed, duplicate, ignored, retried, dead_lettered)",
    ["topic", "consumer", "outcome"],
)
CONSUMER_BATCH_SECONDS = Histogram(
    "portevoix_consumer_batch_duration_seconds",
    "Time to process one consumer batch in one database transaction",
    ["topic", "consumer"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_INFRA_FAILURES = Counter(
    "portevoix_consumer_infrastructure_failures_total",
    "Batches handed back to Kafka because the database or broker failed (redelivered later)",
    ["topic", "consumer"],
)
CONSUMER_LAG = Gauge(
    "portevoix_consumer_lag_records",
    "Records not yet consumed, by partition",
    ["topic", "consumer", "partition"],
)
OUTBOX_PUBLISHED = Counter(
    "portevoix_outbox_published_total", "Events published to Kafka by the outbox relay", ["topic"],
)
OUTBOX_BACKLOG = Gauge("portevoix_outbox_backlog_events", "Events in the outbox not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "portevoix_outbox_oldest_age_seconds", "Age of the oldest event in the outbox not yet published",
)
OUTBOX_FAILURES = Counter(
    "portevoix_outbox_relay_failures_total", "Relay rounds that failed (retried on the next round)",
)
EVENTS_PRODUCED = Counter(
    "portevoix_events_produced_total", "Events written directly to Kafka (not through the outbox)",
    ["topic"],
)
HTTP_REQUESTS = Counter(
    "portevoix_http_requests_total", "HTTP requests answered", ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "portevoix_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# Business figures, per tenant and subsidiary only (never per ambassador or content), and for a
# bounded number of each (the largest), so that the label sets stay bounded.
BUSINESS_KPI = Gauge(
    "portevoix_business_kpi",
    "All-time KPI value per tenant and subsidiary (subsidiary empty: the whole tenant)",
    ["tenant", "subsidiary", "kpi"],
)
WEBHOOK_DELIVERIES = Counter(
    "portevoix_webhook_deliveries_total", "Outbound webhook delivery attempts, by outcome (delivered, retried, failed)",
    ["outcome"],
)
WEBHOOK_AUTO_PAUSED = Counter(
    "portevoix_webhook_subscriptions_auto_paused_total",
    "Outbound webhook subscriptions paused after too many failed attempts in a row",
)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
NOTIFICATIONS = Counter(
    "portevoix_notifications_total", "Notifications by channel and outcome (sent, deferred, failed, cancelled)",
    ["channel", "outcome"],
)
WEBHOOK_SIGNATURE_FAILURES = Counter(
    "portevoix_webhook_signature_failures_total",
    "Inbound signed webhook calls refused: missing, forged or stale signature, or unknown source",
    ["endpoint"],
)
WATCH_POLLS = Counter(
    "portevoix_watch_polls_total", "Industry-watch feed polls, by outcome (ok, not_modified, failed, parked)",
    ["outcome"],
)
WATCH_SUGGESTIONS = Counter(
    "portevoix_watch_suggestions_total",
    "Suggestions entering the curation queue, by origin (feed: a watched feed's entry, each story once per scope; "
    "idea: an ambassador's own)", ["origin"])
WATCH_CURATED = Counter(
    "portevoix_watch_curated_total", "Suggestions curated by an editor, by decision (adopted, dismissed)",
    ["decision"],
)
