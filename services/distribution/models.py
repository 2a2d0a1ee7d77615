"""The HTTP API's request and response bodies."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.distribution import domain
from shared.events import Network, ShareText

AudienceSize = Annotated[int, Field(ge=0, le=1_000_000_000)]


class EnrolmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consent_text_version: str = Field(min_length=1, max_length=100,
                                      description="Version of the consent text the employee accepted")
    channel: str = Field("web", min_length=1, max_length=50, pattern=r"^[a-z_]+$",
                         description="Where the consent was given (web, mobile, teams…): kept in the consent record")
    networks: dict[Network, AudienceSize] = Field(
        default_factory=dict, description="Networks the employee will share on, with his audience size there")


class Enrolment(BaseModel):
    ambassador_id: UUID = Field(description="Pseudonymous id: what every other service knows him by")
    consent_text_version: str
    consent_channel: str
    consented_at: datetime
    consent_expires_at: datetime = Field(description="Renew the consent (POST again) before this instant; past it, "
                                                     "the consent has lapsed: nothing is sent, feed and preferences "
                                                     "answer 404, until renewed (same ambassador_id and networks)")
    networks: dict[Network, int]
    enrolled_at: datetime


class ConsentEntry(BaseModel):
    action: str = Field(description="given, renewed, lapsed (not renewed in time) or withdrawn")
    text_version: str
    channel: str
    at: datetime
    expires_at: datetime | None


class ConsentText(BaseModel):
    version: str
    text: str
    reconsent_within_days: float
    published_at: datetime


class ConsentStatus(BaseModel):
    current_text: ConsentText | None
    in_force: bool = Field(description="Whether the caller is an ambassador with a consent in force")
    enrolment: Enrolment | None = Field(description="The caller's enrolment, its consent in force or lapsed (renew "
                                                    "it with POST /v1/me/enrolment); null when not enrolled")
    record: list[ConsentEntry]


class NetworksRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    networks: dict[Network, AudienceSize] = Field(description="Connections/followers per connected network")


class Preferences(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[Annotated[str, Field(pattern="^(" + "|".join(domain.CHANNELS) + ")$")]] = Field(
        default_factory=list, max_length=10, description="Channels to be told on; empty = the default (in_app)")
    languages: list[Annotated[str, Field(max_length=35)]] = Field(
        default_factory=list, max_length=20, description="Content languages wanted (BCP 47); empty = any")
    topics: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=50, description="Content tags wanted; empty = any")
    max_per_day: int | None = Field(None, ge=1, le=100, description="Frequency cap: notifications per day")
    quiet_start: time | None = Field(None, description="Quiet hours start, on the ambassador's own clock")
    quiet_end: time | None = None
    time_zone: str = Field("UTC", max_length=64, description="IANA time zone of the quiet hours, e.g. Europe/Paris")
    named_in_leaderboards: bool = Field(
        False, description="Opt in to being named (not only counted) in leaderboards and digests; off by default")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not domain.valid_time_zone(value):
            raise ValueError(f"unknown IANA time zone {value!r}")
        return value


class PreferencesView(Preferences):
    updated_at: datetime | None = None


class Subsidiary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    parent: str | None = Field(None, min_length=1, max_length=200, description="Parent org unit code")


class SubsidiaryView(Subsidiary):
    code: str


class ConsentTextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=100_000)
    reconsent_within_days: float = Field(0, ge=0, le=365, description="Grace period for consents to older texts")


class PublishedConsentText(ConsentText):
    reconsent_deadline: datetime
    ambassadors_to_reconsent: int


class ScimTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=200)


class ScimToken(BaseModel):
    token_id: UUID
    description: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedScimToken(ScimToken):
    token: str = Field(description="Shown once: only its hash is stored")


class GroupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        max_length=100_000, description="HR ids of the members")


class Group(BaseModel):
    group_id: UUID
    name: str
    members: list[str]


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: str = Field(min_length=1, max_length=200)


class Erasure(BaseModel):
    tombstone_id: str = Field(description="What the HR id became everywhere")


class Person(BaseModel):
    employee_id: str
    given_name: str | None
    family_name: str | None
    email: str | None
    subsidiary: str
    department: str
    site: str
    country: str
    language: str
    departed: bool
    enrolled: bool = Field(description="An ambassador now (enrolled, not withdrawn)")
    enrolled_at: datetime | None
    consent_text_version: str | None
    consent_expires_at: datetime | None
    consent: Literal["none", "in_force", "outdated", "expired"] = Field(
        description="none: not enrolled; outdated: given to an older text than the one in force")


class People(BaseModel):
    total: int = Field(description="How many people match, over all pages")
    limit: int
    offset: int
    people: list[Person]


class Headcount(BaseModel):
    at: datetime
    subsidiary: str | None
    headcount: int
    enrolled: int



class Reach(BaseModel):
    headcount: int = Field(description="Current employees")
    ambassadors: int = Field(description="Of them, enrolled ambassadors with a consent in force")


class OrgUnit(Reach):
    code: str
    name: str
    parent: str | None = Field(description="None at the top of what the caller may see")


class Facet(Reach):
    value: str


class GroupReach(BaseModel):
    name: str
    headcount: int = Field(description="Current members (within the caller's subtree)")


class OrgDirectory(BaseModel):
    scope: str | None = Field(description="The caller's subsidiary (his subtree only), or None: the whole tenant")
    subsidiaries: list[OrgUnit]
    sites: list[Facet]
    countries: list[Facet]
    languages: list[Facet]
    groups: list[GroupReach]

class FeedLink(BaseModel):
    network: Network
    tracked_url: str = Field(description="The link to share: it counts clicks, then redirects")
    share_url: str = Field(description="The network's share page, prefilled with the tracked link")
    text: str = Field("", description="The suggested text for this network, in your language and variant")


class FeedItem(BaseModel):
    notification_id: UUID
    content_id: str
    title: str
    url: str
    summary: str = ""
    image_url: str | None = Field(None, description="The content's image, for the card")
    share_texts: list[ShareText]
    links: list[FeedLink]
    sent_at: datetime


class Feed(BaseModel):
    items: list[FeedItem]


class ChannelEndpointRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="slack: the Web API base (e.g. https://slack.com/api); teams: the incoming "
                                        "webhook URL; webhook: the intranet's URL")
    secret: str | None = Field(None, min_length=1, max_length=500,
                               description="slack: the bot token; webhook: the Standard Webhooks secret (whsec_ + "
                                           "base64); teams: none")

    @model_validator(mode="after")
    def _secret(self) -> ChannelEndpointRequest:
        if self.secret and self.secret.startswith("whsec_"):
            import base64
            import binascii

            try:
                base64.b64decode(self.secret.removeprefix("whsec_"), validate=True)
            except binascii.Error:
                raise ValueError("a whsec_ secret must be base64 after the prefix") from None
        return self


class ChannelEndpoint(BaseModel):
    channel: str
    url: str
    updated_at: datetime
