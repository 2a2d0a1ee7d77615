"""Group → subsidiary cascade: a group item offered to subsidiaries, adopted as is, localised or
declined; the local version approved by the subsidiary's own approvers and linked to the group
item in its publication event, so reporting can roll it up."""

from __future__ import annotations

import json

import pytest

from services.content.main import ContentSettings, create_app
from shared import topics
from tests.support import header, new_tenant, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration

GROUP_ITEM = {"title": "Group results", "url": "https://acme.example/results", "language": "en",
              "audience": {"countries": ["FR", "DE"]},
              "share_texts": [{"network": "linkedin", "language": "en", "text": "Great year for the group."}]}


async def test_offer_adopt_localise_decline_and_roll_up(kafka_bootstrap, database_url):
    tenant = new_tenant()
    group = token(tenant, "editor", "approver", subject="group-ed")
    group_approver = token(tenant, "approver", subject="group-ap")
    a_editor, a_approver = (token(tenant, "editor", subject="a-ed", subsidiary="SUB-A"),
                            token(tenant, "approver", subject="a-ap", subsidiary="SUB-A"))
    b_editor = token(tenant, "editor", "approver", subject="b-ed", subsidiary="SUB-B")
    c_editor = token(tenant, "editor", subject="c-ed", subsidiary="SUB-C")
    app = create_app(settings_for(ContentSettings, kafka_bootstrap, database_url))
    async with running(app) as client:
        item = (await client.post("/v1/contents", json=GROUP_ITEM, headers=group)).json()
        offers_url = f"/v1/contents/{item['id']}/offers"
        early = await client.post(offers_url, json={"subsidiaries": ["SUB-A"]}, headers=group)
        assert early.status_code == 409  # a draft is not offered
        await client.post(f"/v1/contents/{item['id']}/publish", headers=group_approver)
        assert (await client.post(offers_url, json={"subsidiaries": ["SUB-A"]}, headers=a_editor)).status_code == 403
        offered = await client.post(offers_url, json={"subsidiaries": ["SUB-A", "SUB-B", "SUB-C"]}, headers=group)
        assert [o["status"] for o in offered.json()["offers"]] == ["offered"] * 3

        mine = (await client.get("/v1/offers", headers=a_editor)).json()["offers"]
        assert [(o["subsidiary"], o["group_content_id"]) for o in mine] == [("SUB-A", item["id"])]
        # The subsidiary cannot read the group's item itself: its offer carries what it says.
        assert (await client.get(f"/v1/contents/{item['id']}", headers=a_editor)).status_code == 404
        assert (mine[0]["group_item"]["title"], mine[0]["group_item"]["share_texts"]) == (
            GROUP_ITEM["title"], item["share_texts"])

        adopted = await client.post(f"/v1/offers/{item['id']}/adopt", headers=a_editor)
        assert adopted.status_code == 201, adopted.text
        local_a = adopted.json()
        assert local_a["state"] == "in_review" and local_a["group_content_id"] == item["id"]
        assert local_a["owner_subsidiary"] == "SUB-A"
        assert local_a["audience"] == {**GROUP_ITEM["audience"], "subsidiaries": ["SUB-A"], "departments": [],
                                       "sites": [], "languages": [], "groups": []}
        again = await client.post(f"/v1/offers/{item['id']}/decline", json={"reason": "changed my mind"},
                                  headers=a_editor)
        assert again.status_code == 409
        assert (await client.post(f"/v1/contents/{local_a['id']}/approve", headers=a_editor)).status_code == 403
        assert (await client.post(f"/v1/contents/{local_a['id']}/approve",
                                  headers=b_editor)).status_code == 404  # another subsidiary's approver
        approved = await client.post(f"/v1/contents/{local_a['id']}/approve", headers=a_approver)
        assert approved.json()["state"] == "approved"
        assert (await client.post(f"/v1/contents/{local_a['id']}/publish", headers=a_approver)).status_code == 200

        wide = await client.post(f"/v1/offers/{item['id']}/adopt", headers=b_editor,
                                 json={"audience": {"subsidiaries": ["SUB-A"]}})
        assert wide.status_code == 403  # a localisation stays inside its subsidiary
        localised = (await client.post(f"/v1/offers/{item['id']}/adopt", headers=b_editor, json={
            "language": "de", "title": "Gruppenergebnisse",
            "share_texts": [{"network": "xing", "language": "de", "text": "Ein starkes Jahr."}]})).json()
        assert localised["title"] == "Gruppenergebnisse" and localised["url"] == GROUP_ITEM["url"]

        declined = await client.post(f"/v1/offers/{item['id']}/decline", json={"reason": "Not relevant here"},
                                     headers=c_editor)
        assert declined.json()["status"] == "declined" and declined.json()["reason"] == "Not relevant here"
        not_offered = token(tenant, "editor", subsidiary="SUB-D")
        assert (await client.post(f"/v1/offers/{item['id']}/adopt", headers=not_offered)).status_code == 404

        roll_up = (await client.get("/v1/offers", params={"group_content_id": item["id"]}, headers=group)).json()
        events = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name,
                                  lambda r: header(r, "ce_tenantid") == tenant, expect=2)
    assert {(o["subsidiary"], o["status"], o["local_content_id"]) for o in roll_up["offers"]} == {
        ("SUB-A", "adopted", local_a["id"]), ("SUB-B", "localised", localised["id"]), ("SUB-C", "declined", None)}
    published = {header(e, "ce_subject"): json.loads(e.value) for e in events}
    assert published[local_a["id"]]["group_content_id"] == item["id"]
    assert published[item["id"]]["group_content_id"] is None
