"""The HTTP API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from shared.events import Audience, LanguageTag, ShareText


class ContentDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    summary: str = Field("", max_length=10_000)
    url: HttpUrl
    image_url: HttpUrl | None = None
    language: LanguageTag
    tags: list[str] = Field(default_factory=list, max_length=50)
    campaign: str | None = Field(None, max_length=200)
    owner_subsidiary: str | None = Field(None, max_length=200)
    audience: Audience = Field(default_factory=Audience)
    share_texts: list[ShareText] = Field(default_factory=list, max_length=200)


class Content(ContentDraft):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    state: str
    revision: int
    created_by: str
    created_at: datetime
    published_at: datetime | None = None
