"""The web front's own request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@:-]*$")]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: Id
    subject: Id = Field(description="The user: for an ambassador, his HR employee id")
    roles: list[Annotated[str, Field(max_length=50)]] = Field(min_length=1, max_length=6)
    subsidiary: Id | None = Field(None, description="Confine the roles to this org unit's subtree")


class SessionInfo(BaseModel):
    """The signed-in person as the pages see him (the tokens stay with the front)."""
    subject: str
    tenant: str
    roles: list[str]
    subsidiary: str | None
    kind: str = Field(description="oidc (identity provider), local (demo), token (signed in with a token), bearer")
    csrf_token: str | None = Field(description="Send it in X-CSRF-Token with every POST, PUT, PATCH and DELETE")
    expires_at: datetime | None = Field(description="The session's end (refreshed tokens do not extend it)")
    landing: str = Field(description="The page the person's roles start on")


class SignedOutAnswer(BaseModel):
    detail: dict[str, str] = Field(description='{"reason": "signed_out" | "expired" | "token_refused", "message": …}')


class TokenSignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=20_000)


class TrainingKit(BaseModel):
    version: int = Field(description="0: the default kit of the settings file (nothing written in the studio yet)")
    language: str
    text: str
    texts: dict[str, str]
    written_in_studio: bool
    updated_by: str | None
    read_version: int | None = Field(description="The version the caller confirmed reading; None: not yet")
    read_at: datetime | None


KitLanguage = Annotated[str, Field(pattern=r"^[a-z]{2}$")]
KitText = Annotated[str, Field(min_length=1, max_length=20_000)]


class TrainingKitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: dict[KitLanguage, KitText] = Field(min_length=1, max_length=10, description="The kit per language (en, fr…)")


class TrainingKitWritten(BaseModel):
    version: int
    texts: dict[str, str]
    updated_by: str
    updated_at: datetime


class ReadConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=0, le=2**31 - 1, description="The kit version the reader was shown (0: the default kit)")


class ReadRecorded(BaseModel):
    version: int
    read_at: datetime


class FrontConfig(BaseModel):
    local_login: bool
    oidc: bool = Field(description="Sign-in with the enterprise's identity provider (/auth/login) is configured")
    kpi_poll_seconds: float


class PageAccess(BaseModel):
    page: str = Field(description="hub, studio, dashboard or admin")
    path: str
    roles: list[str] = Field(description="The roles that may open it (one is enough)")
    allowed: bool


class Me(BaseModel):
    subject: str
    tenant: str
    roles: list[str]
    subsidiary: str | None = Field(description="None: group level")
    language: str = Field(description="The display language the front chose (Accept-Language, else English)")
    landing: str = Field(description="Where this person's work is: the page to land on after signing in")
    pages: list[PageAccess] = Field(description="Every page, whether this person may open it (navigation shows "
                                                "the allowed ones)")
