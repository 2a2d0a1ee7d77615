"""The HTTP API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from shared.events import Id, Network, Timestamp

LinkCode = Annotated[str, Field(min_length=6, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class WebhookEvent(BaseModel):
    """One engagement reported by a connector; each event of a batch is validated on its own."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["reaction", "comment", "reshare", "impression", "click"]
    content_id: Id
    network: Network
    count: int = Field(1, ge=1, le=10_000_000, description="How many of them (impressions come in bulk)")
    ambassador_id: Id | None = Field(None, description="Whose post it was, when the connector knows")
    link_code: LinkCode | None = Field(None, description="The tracked link it came through, when known")
    occurred_at: Timestamp


class WebhookBatch(BaseModel):
    """The body of a webhook call (documentation: events are validated one by one)."""

    events: list[WebhookEvent] = Field(description="Up to webhook_max_events engagements")


class Rejection(BaseModel):
    index: int = Field(description="Position of the event in the batch")
    reason: str


class WebhookAnswer(BaseModel):
    webhook_id: str
    accepted: int = Field(description="Events recorded (acknowledged by Kafka)")
    rejected: list[Rejection] = Field(default_factory=list)
    duplicate: bool = Field(False, description="This webhook-id was accepted before: nothing counted again")


class WebhookSecret(BaseModel):
    secret_id: UUID
    source: str
    created_at: datetime
    revoked_at: datetime | None = None


class NewWebhookSecret(WebhookSecret):
    secret: str = Field(description="`whsec_<base64>`: shown once, give it to the connector")


class ShareConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    link_code: LinkCode = Field(description="A tracked link code the ambassador received for this content: "
                                            "it names the content and proves whose share this is")
    network: Network | None = Field(None, description="Where it was posted (default: the link's network)")
    post_url: HttpUrl | None = Field(None, description="The post, on that network")


class ShareRecorded(BaseModel):
    content_id: str
    network: Network
    counted: bool = Field(description="False: this share was confirmed before and is not counted again")


class MyShare(BaseModel):
    content_id: str
    network: str
    link_code: str
    confirmed_at: datetime


class MyShares(BaseModel):
    shares: list[MyShare] = Field(description="What I confirmed sharing, newest first (every enrolment period)")
