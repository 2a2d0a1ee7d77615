"""The HTTP API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Network, ShareText

AudienceSize = Annotated[int, Field(ge=0, le=1_000_000_000)]


class EnrolmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consent_text_version: str = Field(min_length=1, max_length=100,
                                      description="Version of the consent text the employee accepted")
    networks: dict[Network, AudienceSize] = Field(
        default_factory=dict, description="Networks the employee will share on, with his audience size there")


class Enrolment(BaseModel):
    ambassador_id: UUID = Field(description="Pseudonymous id: what every other service knows him by")
    consent_text_version: str
    networks: dict[Network, int]
    enrolled_at: datetime


class FeedLink(BaseModel):
    network: Network
    tracked_url: str = Field(description="The link to share: it counts clicks, then redirects")
    share_url: str = Field(description="The network's share page, prefilled with the tracked link")


class FeedItem(BaseModel):
    notification_id: UUID
    content_id: str
    title: str
    url: str
    share_texts: list[ShareText]
    links: list[FeedLink]
    sent_at: datetime


class Feed(BaseModel):
    items: list[FeedItem]
