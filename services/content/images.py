"""The studio's images: an editor uploads one (its type recognised by its magic bytes, its size
bounded; the name and declared type are never trusted), it is kept in the content schema and
served back, read-only, at an unguessable address ambassadors and networks can load."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

import asyncpg

from services.content import domain, repository
from shared.auth import Principal


class ImageRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decoded(data: str, max_bytes: int) -> tuple[bytes, str]:
    """The image's bytes and media type, or ImageRefused with why."""
    if len(data) > (max_bytes + 2) // 3 * 4 + 4:
        raise ImageRefused("too_large", f"the image is larger than {max_bytes // 1024} KiB")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRefused("invalid_data", "the image is not valid base64") from None
    if len(raw) > max_bytes:
        raise ImageRefused("too_large", f"the image is larger than {max_bytes // 1024} KiB")
    media_type = domain.image_type(raw)
    if media_type is None:
        raise ImageRefused("unsupported_type", "only PNG, JPEG, GIF and WebP images are accepted")
    return raw, media_type


async def upload(pool: asyncpg.Pool, principal: Principal, data: str, max_bytes: int) -> dict[str, Any]:
    raw, media_type = decoded(data, max_bytes)
    image_id = uuid.uuid4()
    async with pool.acquire() as conn:
        await repository.insert_image(conn, principal.tenant, image_id, media_type, raw, principal.subject)
    return {"image_id": image_id, "media_type": media_type, "size": len(raw),
            "path": f"/v1/images/{principal.tenant}/{image_id}"}


async def read(pool: asyncpg.Pool, tenant: str, image_id: uuid.UUID) -> tuple[str, bytes] | None:
    async with pool.acquire() as conn:
        row = await repository.image(conn, tenant, image_id)
    return None if row is None else (row["media_type"], bytes(row["data"]))
