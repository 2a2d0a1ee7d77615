"""The watch API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from shared.events import LanguageTag, Network

Tag = Annotated[str, Field(min_length=1, max_length=100)]
Health = Literal["pending", "ok", "failing", "parked", "paused"]


class SourceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="An RSS (0.9x, 1.0, 2.0) or Atom feed")
    name: str = Field(min_length=1, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=20, description="Given to its suggestions")
    language: LanguageTag = Field(description="The language its suggestions are written in")
    subsidiary: str | None = Field(None, max_length=200, description="Watched for one subsidiary (a subsidiary's "
                                                                      "staff: theirs, always); empty: the group")


class SourceEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    tags: list[Tag] | None = Field(None, max_length=20)
    language: LanguageTag | None = None
    active: bool | None = Field(None, description="false pauses polling; true resumes it (and un-parks)")
    resume: bool = Field(False, description="Un-park a source parked after failures, and poll it now")


class Source(BaseModel):
    id: UUID
    subsidiary: str | None
    url: str
    name: str
    tags: list[str]
    language: str
    active: bool
    health: Health = Field(description="pending (never polled), ok, failing (backing off), parked (stopped after "
                                       "repeated failures or 410 Gone: resume it), paused")
    failures: int = Field(description="Failed polls in a row")
    last_error: str | None = Field(description="Why the last poll failed (e.g. an ill-formed feed, HTTP 404)")
    parked_at: datetime | None
    last_polled_at: datetime | None
    last_ok_at: datetime | None
    next_poll_at: datetime
    entries_seen: int
    created_by: str
    created_at: datetime


class Suggestion(BaseModel):
    id: UUID
    subsidiary: str | None
    origin: Literal["feed", "idea"] = Field(description="A watched feed's entry, or an ambassador's idea")
    source_id: UUID | None = Field(description="The feed (feed entries)")
    proposed_by: str | None = Field(description="Who proposed it (ideas)")
    credit_name: str | None = Field(description="The name the proposer chose to be credited with, if any")
    reason: str | None = Field(description="Why it was dismissed, shown to the proposer of an idea")
    also_from: list[UUID] = Field(description="Other sources that carried the same story")
    link: str
    title: str
    summary: str
    image_url: str | None
    published_at: datetime | None
    language: str
    tags: list[str]
    state: Literal["new", "adopted", "dismissed"]
    content_id: UUID | None = Field(description="The draft it became")
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime


class Adoption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = Field(None, description="The page to share, for an idea that came without a link")
    image_alt: str | None = Field(None, min_length=1, max_length=1000, description=(
        "What the entry's image shows, for people who cannot see it (default: the entry's title)"))

    angle: str = Field(min_length=1, max_length=10_000,
                       description="The suggested text ambassadors start from (the editor's angle)")
    networks: list[Network] = Field(min_length=1, max_length=4, description="The networks the angle is for")
    language: LanguageTag | None = Field(None, description="Default: the source's language")


class Dismissal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=500, description="Told to the ambassador whose idea it was")


class IdeaRequest(BaseModel):
    """An ambassador's idea: a link worth sharing, or a story of their team."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    story: str = Field("", max_length=5000, description="What it is about, in the ambassador's words")
    url: HttpUrl | None = Field(None, description="The page to share, if there is one")
    language: LanguageTag
    credit_name: str | None = Field(None, min_length=1, max_length=100, description=(
        "Give it to be credited by that name when the idea is published (your choice); leave it out to stay "
        "anonymous"))


class MyIdea(BaseModel):
    id: UUID
    title: str
    story: str
    url: str | None
    credit_name: str | None
    outcome: Literal["waiting", "in_preparation", "published", "declined"] = Field(description=(
        "waiting: in the comms team's queue; in_preparation: adopted, being written and reviewed; published: "
        "live for the ambassadors (credited if you gave a name); declined: not taken (see reason)"))
    reason: str | None
    content_id: UUID | None
    published_at: datetime | None
    created_at: datetime
