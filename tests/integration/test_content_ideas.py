"""Ambassadors' own ideas against the real database and broker: proposed from the hub, curated
in the same queue as the feeds' entries, through the charter and four eyes like any content; the
proposer (and only they) follows what became of each, and is credited by the name they chose
when it is published."""

from __future__ import annotations

import json

import pytest

from services.content.main import ContentSettings, create_app
from shared import topics
from tests.support import header, new_tenant, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration
ANGLE = {"angle": "Our Lyon team's robot won the prize! #employee", "networks": ["linkedin"]}


async def test_an_ambassadors_idea_is_curated_reviewed_published_and_credited(
        kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    ana, leo = token(tenant, "employee", subject="ana"), token(tenant, "employee", subject="leo")
    editor, approver = token(tenant, "editor", subject="eva"), token(tenant, "approver", subject="bob")
    async with running(create_app(settings_for(ContentSettings, kafka_bootstrap, database_url))) as client:
        linked = await client.post("/v1/ideas", headers=ana, json={
            "title": "Our robot won the Lyon innovation prize", "story": "The whole team built it in 3 months.",
            "url": "https://lyon-innovation.example/prize-2026", "language": "en", "credit_name": "Ana S."})
        assert linked.status_code == 201, linked.text
        assert linked.json()["outcome"] == "waiting"
        story = await client.post("/v1/ideas", headers=ana, json={
            "title": "A success of my team", "story": "We shipped the new line a month early.", "language": "en"})
        declined = await client.post("/v1/ideas", headers=ana, json={
            "title": "Our canteen menu", "url": "https://canteen.example/menu", "language": "en"})
        assert story.status_code == declined.status_code == 201

        again = await client.post("/v1/ideas", headers=leo, json={
            "title": "Prize!", "url": "https://lyon-innovation.example/prize-2026/?utm_source=x", "language": "en"})
        assert again.status_code == 409 and "already" in again.text
        assert (await client.post("/v1/ideas", headers=token(tenant, "analyst"), json={
            "title": "x", "language": "en"})).status_code == 403
        assert (await client.post("/v1/ideas", headers=ana, json={"title": "", "language": "en"})).status_code == 422

        queue = {s["title"]: s for s in (await client.get("/v1/watch/suggestions", headers=editor)).json()}
        prize = queue["Our robot won the Lyon innovation prize"]
        assert (prize["origin"], prize["proposed_by"], prize["credit_name"]) == ("idea", "ana", "Ana S.")

        # the story came without a link: the editor must give the page to share
        no_link = await client.post(f"/v1/watch/suggestions/{story.json()['id']}/adopt", headers=editor, json=ANGLE)
        assert no_link.status_code == 422 and "without a link" in no_link.text
        story_draft = await client.post(f"/v1/watch/suggestions/{story.json()['id']}/adopt", headers=editor,
                                        json={**ANGLE, "url": "https://acme.example/news/new-line"})
        assert story_draft.status_code == 201 and story_draft.json()["credit"] is None  # anonymous by choice
        refused = await client.post(f"/v1/watch/suggestions/{declined.json()['id']}/dismiss", headers=editor,
                                    json={"reason": "Not about our business, sorry"})
        assert refused.status_code == 200

        draft = await client.post(f"/v1/watch/suggestions/{prize['id']}/adopt", headers=editor, json=ANGLE)
        assert draft.status_code == 201 and draft.json()["credit"] == "Ana S."
        url = f"/v1/contents/{draft.json()['id']}"
        assert (await client.post(f"{url}/submit", headers=editor)).json()["state"] == "in_review"
        assert (await client.post(f"{url}/approve", headers=approver)).json()["state"] == "approved"
        assert (await client.post(f"{url}/publish", headers=approver)).json()["state"] == "published"

        mine = {i["title"]: i for i in (await client.get("/v1/me/ideas", headers=ana)).json()}
        assert {t: i["outcome"] for t, i in mine.items()} == {
            "Our robot won the Lyon innovation prize": "published", "A success of my team": "in_preparation",
            "Our canteen menu": "declined"}
        assert mine["Our canteen menu"]["reason"] == "Not about our business, sorry"
        assert mine["Our robot won the Lyon innovation prize"]["content_id"] == draft.json()["id"]
        assert (await client.get("/v1/me/ideas", headers=leo)).json() == []  # only the proposer sees them

    published = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name,
                                 lambda r: header(r, "ce_tenantid") == tenant, expect=1, settle=1.0)
    assert [json.loads(r.value)["credit"] for r in published] == ["Ana S."]
