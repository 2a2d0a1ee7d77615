"""What the comms studio needs of the content service, on the real broker and database: images
uploaded (type by magic bytes, size bounded, never trusting a name) and served back, alt text
required with an image, the calendar's window on the list API, and a subsidiary editor kept
inside his subsidiary."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.content.main import ContentSettings, create_app
from shared import topics
from tests.support import header, new_tenant, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
                       "AAAABJRU5ErkJggg==")
DRAFT = {"title": "Our new plant", "url": "https://acme.example/news/plant", "language": "en"}


@pytest.fixture
def content_app(kafka_bootstrap, database_url):
    return create_app(settings_for(ContentSettings, kafka_bootstrap, database_url, image_max_bytes=4096))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def reason(response: httpx.Response) -> str:
    return response.json()["detail"][0]["ctx"]["reason"]


async def test_an_uploaded_image_is_checked_kept_served_and_needs_an_alt_text(content_app, kafka_bootstrap):
    tenant = new_tenant()
    editor = token(tenant, "editor", subject="ed-1")
    async with running(content_app) as client:
        uploaded = await client.post("/v1/images", headers=editor, json={"data": b64(PNG)})
        assert uploaded.status_code == 201, uploaded.text
        image = uploaded.json()
        assert image["media_type"] == "image/png" and image["size"] == len(PNG)
        assert image["path"] == f"/v1/images/{tenant}/{image['image_id']}"
        served = await client.get(image["path"])  # no token: ambassadors' and networks' browsers load it
        assert served.status_code == 200 and served.content == PNG
        assert served.headers["content-type"] == "image/png" and served.headers["x-content-type-options"] == "nosniff"
        assert (await client.get(f"/v1/images/other-tenant/{image['image_id']}")).status_code == 404

        # What the bytes are decides, not what the file was called: SVG (scripts), HTML, a PNG name on text.
        for data in (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                     b"<html><body>hi</body></html>", b"not really a png at all"):
            refused = await client.post("/v1/images", headers=editor, json={"data": b64(data)})
            assert refused.status_code == 422 and reason(refused) == "unsupported_type"
        too_large = await client.post("/v1/images", headers=editor, json={"data": b64(PNG + bytes(5000))})
        assert too_large.status_code == 422 and reason(too_large) == "too_large"
        garbage = await client.post("/v1/images", headers=editor, json={"data": "%%%%not base64%%%%"})
        assert garbage.status_code == 422 and reason(garbage) == "invalid_data"
        employee = await client.post("/v1/images", headers=token(tenant, "employee"), json={"data": b64(PNG)})
        assert employee.status_code == 403

        image_url = f"https://portevoix.example/api/content{image['path']}"
        blind = await client.post("/v1/contents", headers=editor, json={**DRAFT, "image_url": image_url})
        assert blind.status_code == 422 and "image_alt" in blind.text
        blank = await client.post("/v1/contents", headers=editor,
                                  json={**DRAFT, "image_url": image_url, "image_alt": "  "})
        assert blank.status_code == 422
        made = await client.post("/v1/contents", headers=editor,
                                 json={**DRAFT, "image_url": image_url, "image_alt": "The plant's solar roof"})
        assert made.status_code == 201, made.text
        assert (made.json()["image_url"], made.json()["image_alt"]) == (image_url, "The plant's solar roof")
        item = f"/v1/contents/{made.json()['id']}"
        swapped = await client.patch(item, headers=editor, json={"image_url": "https://cdn.example/b.png"})
        assert swapped.status_code == 422  # a new image, a new description
        described = await client.patch(item, headers=editor, json={"image_alt": "The solar roof at dawn"})
        assert described.status_code == 200 and described.json()["image_alt"] == "The solar roof at dawn"
        published = await client.post(f"{item}/publish", headers=token(tenant, "approver", subject="ap-1"))
        assert published.status_code == 200, published.text
        # The alt text travels with the image to distribution and the hub.
        [event] = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name,
                                   lambda r: header(r, "ce_tenantid") == tenant)
        assert json.loads(event.value)["image_alt"] == "The solar roof at dawn"


async def test_the_calendar_window_lists_what_is_due_and_a_subsidiary_editor_stays_inside(content_app):
    tenant = new_tenant()
    editor = token(tenant, "editor", subject="ed-1")
    fr_editor = token(tenant, "editor", subject="ed-fr", subsidiary="FR")
    monday = datetime(2031, 3, 3, tzinfo=UTC)
    at = lambda days: (monday + timedelta(days=days)).isoformat()  # noqa: E731
    async with running(content_app) as client:
        async def draft(title: str, headers: dict[str, str], **fields: object) -> None:
            r = await client.post("/v1/contents", headers=headers, json={**DRAFT, "title": title, **fields})
            assert r.status_code == 201, r.text
        await draft("goes out this week", editor, publish_at=at(2), expire_at=at(30))
        await draft("expires this week", editor, publish_at=at(-20), expire_at=at(4))
        await draft("next week", editor, publish_at=at(8))
        await draft("no date", editor)
        await draft("French, this week", fr_editor, publish_at=at(1))

        async def due(headers: dict[str, str], start: str, end: str) -> list[str]:
            r = await client.get("/v1/contents", headers=headers, params={"due_from": start, "due_to": end})
            assert r.status_code == 200, r.text
            return sorted(i["title"] for i in r.json()["items"])

        assert await due(editor, at(0), at(7)) == ["French, this week", "expires this week", "goes out this week"]
        assert await due(editor, at(7), at(14)) == ["next week"]
        assert await due(fr_editor, at(0), at(7)) == ["French, this week"]
        for params in ({"due_from": at(0)}, {"due_from": at(7), "due_to": at(0)},
                       {"due_from": "2031-03-03T00:00:00", "due_to": "2031-03-10T00:00:00"}):
            assert (await client.get("/v1/contents", headers=editor, params=params)).status_code == 422

        # Targeting outside his subsidiary, or writing for another one, is refused.
        outside = await client.post("/v1/contents", headers=fr_editor,
                                    json={**DRAFT, "audience": {"subsidiaries": ["DE"]}})
        assert outside.status_code == 403 and "stays inside FR" in outside.json()["detail"]
        foreign = await client.post("/v1/contents", headers=fr_editor, json={**DRAFT, "owner_subsidiary": "DE"})
        assert foreign.status_code == 403
        inside = await client.post("/v1/contents", headers=fr_editor,
                                   json={**DRAFT, "audience": {"subsidiaries": ["FR"], "sites": ["Lyon"]}})
        assert inside.status_code == 201 and inside.json()["audience"]["subsidiaries"] == ["FR"]
