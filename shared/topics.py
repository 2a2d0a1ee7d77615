"""The topic registry: every Kafka topic the platform uses, with its partitions and retention.

Topics are created from here (``deploy.local`` and the Kafka operator manifests), so the
registry is the one place a topic is declared. Each topic has a dead-letter topic
``<name>.dlq`` and a retry topic ``<name>.retry`` beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    retention_ms: int | None  # None: keep forever
    compacted: bool = False
    description: str = ""

    def config(self) -> dict[str, str]:
        config = {
            "cleanup.policy": "compact" if self.compacted else "delete",
            "retention.ms": str(self.retention_ms if self.retention_ms is not None else -1),
        }
        if self.compacted:
            # Let the KPI stream compact promptly so a late reader gets the latest values fast.
            config["min.cleanable.dirty.ratio"] = "0.1"
            config["segment.ms"] = str(3600 * 1000)
        return config

    @property
    def dlq(self) -> Topic:
        return Topic(f"{self.name}.dlq", partitions=1, retention_ms=90 * DAY_MS,
                     description=f"Dead letters of {self.name}: original bytes, headers and cause")

    @property
    def retry(self) -> Topic:
        return Topic(f"{self.name}.retry", partitions=1, retention_ms=7 * DAY_MS,
                     description=f"Delayed retries of {self.name}, per consumer group")


HR_EMPLOYEES = Topic(
    "hr.employees.v1", partitions=6, retention_ms=30 * DAY_MS,
    description="Inbound from HR systems and identity providers: employee upserts and departures.",
)
INTRANET_CONTENT = Topic(
    "intranet.content.v1", partitions=3, retention_ms=30 * DAY_MS,
    description="Inbound from intranets and PR tools: content submitted for sharing.",
)
CONTENT_LIFECYCLE = Topic(
    "content.lifecycle.v1", partitions=3, retention_ms=365 * DAY_MS,
    description="Content published, updated and retired.",
)
AMBASSADORS = Topic(
    "ambassadors.v1", partitions=6, retention_ms=365 * DAY_MS,
    description="Ambassadors enrolled, updated and withdrawn (pseudonymous ids only).",
)
NOTIFICATIONS = Topic(
    "distribution.notifications.v1", partitions=6, retention_ms=365 * DAY_MS,
    description="Notifications sent, deferred, failed and cancelled, with their tracked link codes.",
)
ENGAGEMENTS = Topic(
    "tracking.engagements.v1", partitions=6, retention_ms=365 * DAY_MS,
    description="Clicks, shares, reactions, comments, reshares and impressions, keyed by content.",
)
KPIS = Topic(
    "reporting.kpis.v1", partitions=3, retention_ms=None, compacted=True,
    description="The KPI stream: latest value per tenant/scope/window, compacted.",
)

MAIN_TOPICS: tuple[Topic, ...] = (
    HR_EMPLOYEES, INTRANET_CONTENT, CONTENT_LIFECYCLE, AMBASSADORS, NOTIFICATIONS, ENGAGEMENTS, KPIS,
)


def all_topics() -> list[Topic]:
    """Every topic to create: the main topics, then each one's retry and dead-letter topics."""
    topics = list(MAIN_TOPICS)
    for topic in MAIN_TOPICS:
        topics += [topic.retry, topic.dlq]
    return topics
