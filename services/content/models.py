"""The HTTP API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from services.content.charter import Caution, Charter, Violation
from shared.events import Audience, LanguageTag, ShareText, Timestamp

Reason = Annotated[str, Field(min_length=3, max_length=2000)]


def _distinct_variants(texts: list[ShareText]) -> list[ShareText]:
    seen: set[tuple[str, str, int]] = set()
    for t in texts:
        key = (t.network.value, t.language, t.variant)
        if key in seen:
            raise ValueError(f"two share texts for {t.network.value}/{t.language} variant {t.variant}")
        seen.add(key)
    return texts


class ContentFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    summary: str = Field("", max_length=10_000)
    body: str = Field("", max_length=100_000)
    url: HttpUrl = Field(description="Canonical URL of what is shared")
    image_url: HttpUrl | None = None
    image_alt: str | None = Field(None, max_length=1000, description="What the image shows, for screen readers "
                                  "(required with an image in the studio's drafts)")
    language: LanguageTag
    tags: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=50)
    campaign: str | None = Field(None, max_length=200)
    owner_subsidiary: str | None = Field(None, max_length=200,
                                         description="Empty: a group item; a subsidiary's staff own theirs only")
    audience: Audience = Field(default_factory=Audience)
    share_texts: list[ShareText] = Field(
        default_factory=list, max_length=200,
        description="Per network and language, several variants (variant 0, 1, …) so colleagues differ")
    publish_at: Timestamp | None = None
    expire_at: Timestamp | None = None

    @field_validator("share_texts")
    @classmethod
    def _variants(cls, texts: list[ShareText]) -> list[ShareText]:
        return _distinct_variants(texts)

    @model_validator(mode="after")
    def _expiry_after_publication(self) -> ContentFields:
        if self.publish_at and self.expire_at and self.expire_at <= self.publish_at:
            raise ValueError("expire_at must be after publish_at")
        return self


def _alt_with_image(image_url: HttpUrl | None, image_alt: str | None) -> None:
    if image_url is not None and not (image_alt or "").strip():
        raise ValueError("image_alt: describe the image for people who cannot see it")


class ContentDraft(ContentFields):
    pass


class DescribedDraft(ContentDraft):
    """A draft written by a person: an image comes with its alt text (a feed's image adopted from
    the watch has none yet; the editor describes it when he edits the draft)."""

    @model_validator(mode="after")
    def _image_described(self) -> DescribedDraft:
        _alt_with_image(self.image_url, self.image_alt)
        return self


class ContentEdit(BaseModel):
    """Only the fields given change; editing an approved/scheduled/published item sends it back to review."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=300)
    summary: str | None = Field(None, max_length=10_000)
    body: str | None = Field(None, max_length=100_000)
    url: HttpUrl | None = None
    image_url: HttpUrl | None = None
    image_alt: str | None = Field(None, max_length=1000)
    language: LanguageTag | None = None
    tags: list[Annotated[str, Field(max_length=100)]] | None = Field(None, max_length=50)
    campaign: str | None = Field(None, max_length=200)
    audience: Audience | None = None
    share_texts: list[ShareText] | None = Field(None, max_length=200)
    publish_at: Timestamp | None = None
    expire_at: Timestamp | None = None

    @field_validator("share_texts")
    @classmethod
    def _variants(cls, texts: list[ShareText] | None) -> list[ShareText] | None:
        return None if texts is None else _distinct_variants(texts)

    @model_validator(mode="after")
    def _image_described(self) -> ContentEdit:
        _alt_with_image(self.image_url, self.image_alt)
        return self


class Content(ContentFields):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    state: str
    revision: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    authors: list[str] = Field(description="Who wrote this version since its last approval")
    approved_by: str | None = None
    embargo_until: datetime | None = None
    published_at: datetime | None = None
    retired_at: datetime | None = None
    charter_override_reason: str | None = None
    group_content_id: UUID | None = None
    source_system: str | None = None
    external_id: str | None = None
    external_version: int | None = None
    credit: str | None = Field(None, description="Whose idea it was, by the name the ambassador chose to be "
                                                 "credited with (an ambassador's idea adopted from the queue)")
    warnings: list[Caution] = Field(default_factory=list, description="Near-duplicate variants")


class ContentList(BaseModel):
    items: list[Content]


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class RetireRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason | None = None


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    override_reason: Reason | None = Field(
        None, description="Admins only: approve/publish despite charter violations (audited)")


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    publish_at: Timestamp
    expire_at: Timestamp | None = None

    @model_validator(mode="after")
    def _expiry_after_publication(self) -> ScheduleRequest:
        if self.expire_at and self.expire_at <= self.publish_at:
            raise ValueError("expire_at must be after publish_at")
        return self


class CheckResult(BaseModel):
    violations: list[Violation]
    warnings: list[Caution]


class Transition(BaseModel):
    revision: int | None
    action: str | None
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None
    detail: Any = None
    at: datetime


class AuditTrail(BaseModel):
    content_id: UUID
    transitions: list[Transition]


class CharterDocument(BaseModel):
    scope: str = Field(description='"" for the tenant, else the subsidiary')
    rules: Charter
    effective: Charter


class SourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auto_approve: bool = Field(False, description="Items from this source are approved if the charter passes")


class Source(BaseModel):
    source_system: str
    auto_approve: bool
    has_webhook_secret: bool


class WebhookSecret(BaseModel):
    source_system: str
    secret: str = Field(description="Standard Webhooks secret (whsec_ + base64); shown once")


class OfferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subsidiaries: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1, max_length=500)


class Localisation(BaseModel):
    """What a subsidiary changes when it adopts a group item; unset fields stay the group's."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, min_length=1, max_length=300)
    summary: str | None = Field(None, max_length=10_000)
    body: str | None = Field(None, max_length=100_000)
    language: LanguageTag | None = None
    audience: Audience | None = None
    share_texts: list[ShareText] | None = Field(None, max_length=200)

    @field_validator("share_texts")
    @classmethod
    def _variants(cls, texts: list[ShareText] | None) -> list[ShareText] | None:
        return None if texts is None else _distinct_variants(texts)


class Decline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class Offer(BaseModel):
    group_content_id: UUID
    subsidiary: str
    status: Literal["offered", "adopted", "localised", "declined"]
    local_content_id: UUID | None = None
    offered_by: str
    offered_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    group_item: OfferedItem | None = None


class OfferedItem(BaseModel):
    """What the group's item says, for the subsidiary deciding (it cannot read the group's item itself)."""
    title: str
    summary: str = ""
    url: str
    language: str
    image_url: str | None = None
    image_alt: str | None = None
    share_texts: list[ShareText] = Field(default_factory=list)
    state: str


class OfferList(BaseModel):
    offers: list[Offer]


class ImageUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: str = Field(min_length=8, max_length=70 * 1024 * 1024,
                      description="The image file, base64; PNG, JPEG, GIF or WebP, recognised by its first bytes "
                                  "(its name and declared type are not trusted)")


class UploadedImage(BaseModel):
    image_id: UUID
    media_type: str
    size: int = Field(description="Bytes")
    path: str = Field(description="Where the content service serves it (no token needed: the id is unguessable)")
