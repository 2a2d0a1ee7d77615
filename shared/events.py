"""Event contracts: the ``data`` of every CloudEvents type on every topic.

Consumers ignore unknown fields (pydantic's default), so a producer may add optional fields
without breaking anyone; a breaking change is a new type or a new topic. The inbound contracts
(``hr.employees.v1``, ``intranet.content.v1``) are public: HR, identity-provider and intranet
teams build against them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl

from shared import topics
from shared.topics import Topic

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
LanguageTag = Annotated[
    str, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35, description="BCP 47"),
]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
Id = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=10_000)]
Label = Annotated[str, Field(max_length=200)]
# A source's version counter: often epoch milliseconds, stored as bigint (a larger one cannot be kept).
Version = Annotated[int, Field(ge=0, le=2**63 - 1)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone offset (RFC 3339)")
    return value


Timestamp = Annotated[datetime, AfterValidator(_aware)]


class Network(StrEnum):
    linkedin = "linkedin"
    x = "x"
    facebook = "facebook"
    xing = "xing"


class Contract(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- hr.employees.v1 (inbound, public) ---------------------------------------------------------

class EmployeeUpserted(Contract):
    """A hire, a change or a transfer: the employee's whole current record."""

    employee_id: Id
    email: Email
    given_name: Annotated[str, Field(min_length=1, max_length=200)]
    family_name: Annotated[str, Field(min_length=1, max_length=200)]
    subsidiary: Id = Field(description="Org unit code of the subsidiary")
    department: Annotated[str, Field(max_length=200)]
    site: Annotated[str, Field(max_length=200)]
    country: CountryCode
    language: LanguageTag
    manager_id: Id | None = None
    effective_at: Timestamp
    version: Version = Field(description="Increasing per employee at the source; newest wins")


class EmployeeDeparted(Contract):
    employee_id: Id
    effective_at: Timestamp
    version: Version


# --- intranet.content.v1 (inbound, public) -----------------------------------------------------

class IntranetContentSubmitted(Contract):
    external_id: Id
    source_system: Id
    title: Annotated[str, Field(min_length=1, max_length=300)]
    summary: Text
    url: HttpUrl
    image_url: HttpUrl | None = None
    language: LanguageTag
    subsidiary: Id | None = None
    tags: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=50)
    suggested_texts: dict[Network, Text] | None = None
    embargo_until: Timestamp | None = None
    version: Version


# --- content.lifecycle.v1 ----------------------------------------------------------------------

class Audience(Contract):
    """Who a content is for; every list empty means the whole tenant."""

    subsidiaries: list[Label] = Field(default_factory=list, max_length=1000)
    departments: list[Label] = Field(default_factory=list, max_length=1000)
    sites: list[Label] = Field(default_factory=list, max_length=1000)
    countries: list[Label] = Field(default_factory=list, max_length=1000)
    languages: list[Label] = Field(default_factory=list, max_length=1000)
    groups: list[Label] = Field(default_factory=list, max_length=1000)


class ShareText(Contract):
    network: Network
    language: LanguageTag
    text: Text
    variant: int = Field(0, ge=0, le=999)


class ContentPublished(Contract):
    content_id: Id
    revision: int = Field(ge=1)
    title: str
    summary: str = ""
    url: HttpUrl
    image_url: HttpUrl | None = None
    image_alt: Annotated[str, Field(max_length=1000)] | None = Field(
        None, description="What the image shows, for screen readers (the studio requires it with an image)")
    language: LanguageTag
    tags: list[str] = Field(default_factory=list)
    campaign: str | None = None
    owner_subsidiary: str | None = None
    audience: Audience = Field(default_factory=Audience)
    share_texts: list[ShareText] = Field(default_factory=list)
    published_at: Timestamp
    expire_at: Timestamp | None = None
    group_content_id: Id | None = Field(
        None, description="The group item this subsidiary item adopts or localises (roll-up to the group)")
    disclosures: dict[CountryCode, Annotated[str, Field(max_length=500)]] = Field(
        default_factory=dict, description="Disclosure to add to the post of an ambassador in that country")
    credit: Annotated[str, Field(max_length=200)] | None = Field(
        None, description="Whose idea it was: the name the ambassador who proposed it chose to be credited with "
                          "(absent: nobody to credit, or they chose not to be named)")


class ContentUpdated(ContentPublished):
    pass


class ContentRetired(Contract):
    content_id: Id
    reason: Annotated[str, Field(pattern=r"^(expired|withdrawn)$")]
    retired_at: Timestamp


# --- ambassadors.v1 (pseudonymous: never e-mails; a name only for whoever chose to be named) ---

class AmbassadorProfile(Contract):
    ambassador_id: Id = Field(description="Pseudonymous id, never the HR id or e-mail")
    subsidiary: str
    department: str = ""
    site: str = ""
    country: CountryCode
    language: LanguageTag
    groups: list[str] = Field(default_factory=list)
    network_audience: dict[Network, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    named_in_leaderboards: bool = Field(False, description="Opted in to being named in leaderboards and digests")
    display_name: Annotated[str, Field(max_length=200)] | None = Field(
        None, description="The name shown in leaderboards and digests: only while named_in_leaderboards is true "
                          "(the person's own choice); absent otherwise, and absent means forget it")
    holder: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="HMAC of the tenant and the person's sign-in subject under the deployment's identity key "
                          "(shared.auth.holder_digest): lets tracking and reporting recognise the ambassador's own "
                          "calls; not reversible without the key")
    effective_at: Timestamp


class AmbassadorEnrolled(AmbassadorProfile):
    pass


class ProfileChange(StrEnum):
    profile = "profile"
    consent_lapsed = "consent_lapsed"
    consent_renewed = "consent_renewed"


class AmbassadorUpdated(AmbassadorProfile):
    change: ProfileChange = Field(
        ProfileChange.profile,
        description="What changed. profile: placement, groups, networks or naming. consent_lapsed: the consent was "
                    "not renewed in time (a new consent text, or its validity ran out): the same ambassador, not "
                    "notified and not counted as enrolled until he renews. consent_renewed: renewed after a lapse, "
                    "with the same id and networks. Neither is a withdrawal or an enrolment. Absent (older records): "
                    "profile.")


class AmbassadorWithdrawn(Contract):
    ambassador_id: Id
    reason: Annotated[str, Field(max_length=100)]
    effective_at: Timestamp


# --- distribution.notifications.v1 -------------------------------------------------------------

class TrackedLink(Contract):
    code: Annotated[str, Field(min_length=6, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    network: Network
    destination_url: HttpUrl


class Notification(Contract):
    notification_id: Id
    content_id: Id
    ambassador_id: Id
    subsidiary: str = ""
    department: str = ""
    campaign: str | None = None
    channel: Annotated[str, Field(max_length=50)]
    links: list[TrackedLink] = Field(default_factory=list)
    reason: str | None = None
    at: Timestamp
    due_at: Timestamp | None = Field(None, description="notification.deferred: when it will be sent at the earliest")


class NotificationSent(Notification):
    pass


class NotificationDeferred(Notification):
    pass


class NotificationFailed(Notification):
    pass


class NotificationCancelled(Notification):
    pass


# --- tracking.engagements.v1 -------------------------------------------------------------------

class EngagementKind(StrEnum):
    click = "click"
    share = "share"
    reaction = "reaction"
    comment = "comment"
    reshare = "reshare"
    impression = "impression"


class EngagementRecorded(Contract):
    content_id: Id
    kind: EngagementKind
    network: Network
    count: int = Field(default=1, ge=1, le=10_000_000)
    ambassador_id: Id | None = None
    link_code: str | None = None
    human: bool = True
    unique: bool = True
    connector: str = Field(default="portevoix", max_length=100)
    occurred_at: Timestamp


# --- reporting.kpis.v1 -------------------------------------------------------------------------

class KpiChanged(Contract):
    scope_type: str
    scope_id: str
    window: str
    window_start: Timestamp | None = None
    values: dict[str, float]
    computed_at: Timestamp


EVENT_TYPES: dict[str, tuple[Topic, type[Contract]]] = {
    "hr.employee.upserted": (topics.HR_EMPLOYEES, EmployeeUpserted),
    "hr.employee.departed": (topics.HR_EMPLOYEES, EmployeeDeparted),
    "intranet.content.submitted": (topics.INTRANET_CONTENT, IntranetContentSubmitted),
    "content.published": (topics.CONTENT_LIFECYCLE, ContentPublished),
    "content.updated": (topics.CONTENT_LIFECYCLE, ContentUpdated),
    "content.retired": (topics.CONTENT_LIFECYCLE, ContentRetired),
    "ambassador.enrolled": (topics.AMBASSADORS, AmbassadorEnrolled),
    "ambassador.updated": (topics.AMBASSADORS, AmbassadorUpdated),
    "ambassador.withdrawn": (topics.AMBASSADORS, AmbassadorWithdrawn),
    "notification.sent": (topics.NOTIFICATIONS, NotificationSent),
    "notification.deferred": (topics.NOTIFICATIONS, NotificationDeferred),
    "notification.failed": (topics.NOTIFICATIONS, NotificationFailed),
    "notification.cancelled": (topics.NOTIFICATIONS, NotificationCancelled),
    "engagement.recorded": (topics.ENGAGEMENTS, EngagementRecorded),
    "kpi.changed": (topics.KPIS, KpiChanged),
}
