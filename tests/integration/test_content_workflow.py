"""The content workflow on the real broker and database: four eyes, rejections with a reason,
edits sending approved items back to review, 409s naming the allowed states, the audit trail
matching the events on content.lifecycle.v1, subsidiary scoping, the brand charter and its
audited admin override."""

from __future__ import annotations

import json

import pytest

from services.content.main import ContentSettings, create_app
from shared import topics
from tests.support import header, new_tenant, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration

DRAFT = {
    "title": "Our new plant", "summary": "It runs on renewables.", "body": "Long story.",
    "url": "https://acme.example/news/plant", "language": "en",
    "share_texts": [{"network": "linkedin", "language": "en", "text": "Proud of our plant! #employee"},
                    {"network": "linkedin", "language": "en", "variant": 1,
                     "text": "Wind powers our newest site. #employee"}],
}


@pytest.fixture
def content_app(kafka_bootstrap, database_url):
    return create_app(settings_for(ContentSettings, kafka_bootstrap, database_url))


def lifecycle_of(tenant: str):
    return lambda r: header(r, "ce_tenantid") == tenant


async def test_four_eyes_workflow_with_rejection_edits_and_an_audit_trail_matching_the_events(
        content_app, kafka_bootstrap):
    tenant = new_tenant()
    claire = token(tenant, "editor", "approver", subject="claire")
    bob = token(tenant, "approver", subject="bob")
    async with running(content_app) as client:
        item = (await client.post("/v1/contents", json=DRAFT, headers=claire)).json()
        url = f"/v1/contents/{item['id']}"
        early = await client.post(f"{url}/approve", headers=bob)
        assert early.status_code == 409
        assert early.json()["detail"]["state"] == "draft"
        assert early.json()["detail"]["allowed"] == ["in_review", "retired"]

        assert (await client.post(f"{url}/submit", headers=claire)).json()["state"] == "in_review"
        own = await client.post(f"{url}/approve", headers=claire)
        assert own.status_code == 403 and "cannot approve" in own.json()["detail"]
        assert (await client.post(f"{url}/reject", json={}, headers=bob)).status_code == 422  # a reason is required
        rejected = await client.post(f"{url}/reject", json={"reason": "Say which site"}, headers=bob)
        assert rejected.json()["state"] == "draft"

        await client.patch(url, json={"title": "Our new plant in Lyon"}, headers=claire)
        await client.post(f"{url}/submit", headers=claire)
        approved = (await client.post(f"{url}/approve", headers=bob)).json()
        assert approved["state"] == "approved" and approved["approved_by"] == "bob" and approved["authors"] == []

        # Bob edits the approved item: back to review, and now Bob may not approve it; Claire may.
        edited = (await client.patch(url, json={"summary": "Runs on wind."}, headers=token(
            tenant, "editor", "approver", subject="bob"))).json()
        assert edited["state"] == "in_review" and edited["authors"] == ["bob"] and edited["revision"] == 3
        assert (await client.post(f"{url}/approve", headers=bob)).status_code == 403
        assert (await client.post(f"{url}/approve", headers=claire)).json()["state"] == "approved"
        assert (await client.post(f"{url}/publish", headers=bob)).json()["state"] == "published"

        # Editing what is out goes back to review; publishing again updates it.
        await client.patch(url, json={"campaign": "wind-2026"}, headers=claire)
        assert (await client.post(f"{url}/publish", headers=bob)).json()["state"] == "published"
        retired = await client.post(f"{url}/retire", json={"reason": "Plant renamed"}, headers=bob)
        assert retired.json()["state"] == "retired"
        final = await client.post(f"{url}/publish", headers=bob)
        assert final.status_code == 409 and final.json()["detail"]["allowed"] == []
        assert (await client.patch(url, json={"title": "x"}, headers=claire)).status_code == 409

        trail = (await client.get(f"{url}/audit", headers=bob)).json()["transitions"]
        events = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name, lifecycle_of(tenant), expect=3,
                                  settle=1.5)

    assert [(t["action"], t["from_state"], t["to_state"], t["actor"]) for t in trail] == [
        ("create", None, "draft", "claire"), ("submit", "draft", "in_review", "claire"),
        ("reject", "in_review", "draft", "bob"), ("edit", "draft", "draft", "claire"),
        ("submit", "draft", "in_review", "claire"), ("approve", "in_review", "approved", "bob"),
        ("edit", "approved", "in_review", "bob"), ("approve", "in_review", "approved", "claire"),
        ("publish", "approved", "published", "bob"), ("edit", "published", "in_review", "claire"),
        ("approve", "in_review", "approved", "bob"), ("publish", "approved", "published", "bob"),
        ("withdraw", "published", "retired", "bob"),
    ]
    assert trail[2]["reason"] == "Say which site" and trail[-1]["reason"] == "Plant renamed"
    assert trail[6]["reason"] == "edited: back to review"

    kinds = [header(e, "ce_type") for e in events]
    assert kinds == ["content.published", "content.updated", "content.retired"]
    # exactly one event per transition that distribution must know about, as in the audit trail
    assert kinds.count("content.published") + kinds.count("content.updated") == \
        sum(1 for t in trail if t["to_state"] == "published")
    updated = json.loads(events[1].value)
    assert updated["title"] == "Our new plant in Lyon" and updated["campaign"] == "wind-2026"
    assert [t["variant"] for t in updated["share_texts"]] == [0, 1]
    assert json.loads(events[2].value)["reason"] == "withdrawn"


async def test_subsidiary_staff_stay_in_their_subsidiary_and_tenants_never_meet(content_app):
    tenant, other = new_tenant(), new_tenant()
    editor_a = token(tenant, "editor", subject="ed-a", subsidiary="SUB-A")
    approver_a = token(tenant, "approver", subject="ap-a", subsidiary="SUB-A")
    editor_b = token(tenant, "editor", "approver", subject="ed-b", subsidiary="SUB-B")
    group = token(tenant, "editor", "approver", subject="group")
    async with running(content_app) as client:
        created = (await client.post("/v1/contents", json=DRAFT, headers=editor_a)).json()
        assert created["owner_subsidiary"] == "SUB-A" and created["audience"]["subsidiaries"] == ["SUB-A"]
        url = f"/v1/contents/{created['id']}"

        wrong_owner = await client.post("/v1/contents", json={**DRAFT, "owner_subsidiary": "SUB-B"}, headers=editor_a)
        assert wrong_owner.status_code == 403
        wide = await client.post("/v1/contents", json={**DRAFT, "audience": {"subsidiaries": ["SUB-A", "SUB-B"]}},
                                 headers=editor_a)
        assert wide.status_code == 403
        assert (await client.patch(url, json={"audience": {"subsidiaries": ["SUB-B"]}},
                                   headers=editor_a)).status_code == 403

        for method, path in (("GET", url), ("PATCH", url), ("POST", f"{url}/submit"), ("POST", f"{url}/publish"),
                             ("GET", f"{url}/audit"), ("GET", f"{url}/check")):
            kwargs = {"json": {"title": "mine now"}} if method == "PATCH" else {}
            assert (await client.request(method, path, headers=editor_b, **kwargs)).status_code == 404, path
            assert (await client.request(method, path, headers=token(other, "editor", "approver", "admin"),
                                         **kwargs)).status_code == 404, path
        assert (await client.get("/v1/contents", headers=editor_b)).json()["items"] == []
        assert [i["id"] for i in (await client.get("/v1/contents", headers=group)).json()["items"]] == [created["id"]]
        assert (await client.post(f"{url}/submit", headers=token(tenant, "employee"))).status_code == 403

        # The subsidiary's own approver publishes; a group approver could too.
        assert (await client.post(f"{url}/publish", headers=approver_a)).json()["state"] == "published"


async def test_charter_violations_block_publication_until_an_admin_overrides_with_an_audited_reason(
        content_app, kafka_bootstrap):
    tenant = new_tenant()
    admin = token(tenant, "admin", subject="ada")
    editor = token(tenant, "editor", subject="ed", subsidiary="SUB-A")
    approver = token(tenant, "approver", subject="ap")
    charter = {"forbidden_terms": ["Rivalcorp"], "required_spellings": ["Ramsay Santé"],
               "max_length": {"x": 40}, "mandatory_disclosure": "#employee",
               "allowed_link_domains": ["acme.example"], "country_disclosures": {"US": "#ad"}}
    async with running(content_app) as client:
        assert (await client.put("/v1/admin/charter", json=charter, headers=approver)).status_code == 403
        sub_admin = token(tenant, "admin", subject="sa", subsidiary="SUB-A")
        assert (await client.put("/v1/admin/charter", json=charter, headers=sub_admin)).status_code == 403
        assert (await client.put("/v1/admin/charter", json=charter, headers=admin)).status_code == 200
        override = await client.put("/v1/admin/charter/subsidiaries/SUB-A", headers=sub_admin,
                                    json={"forbidden_terms": ["Globex"], "country_disclosures": {"GB": "#ad"}})
        assert override.status_code == 200
        assert override.json()["effective"]["forbidden_terms"] == ["Rivalcorp", "Globex"]
        assert (await client.put("/v1/admin/charter/subsidiaries/SUB-B", json={}, headers=sub_admin)).status_code == 403

        bad = {**DRAFT, "title": "Ramsay Sante beats RIVALCORP", "share_texts": [
            {"network": "x", "language": "en", "text": "Better than globex, see https://elsewhere.example/x"}]}
        checked = (await client.post("/v1/contents/check", json=bad, headers=editor)).json()["violations"]
        assert {(v["field"], v["position"], v["rule"]) for v in checked} == {
            ("title", 0, "required_spellings"), ("title", 19, "forbidden_terms"),
            ("share_texts[0].text", 12, "forbidden_terms"),
            ("share_texts[0].text", 24, "allowed_link_domains"),
            ("share_texts[0].text", 40, "max_length"), ("share_texts[0].text", 51, "mandatory_disclosure")}

        item = (await client.post("/v1/contents", json=bad, headers=editor)).json()
        url = f"/v1/contents/{item['id']}"
        assert len((await client.get(f"{url}/check", headers=editor)).json()["violations"]) == 6
        refused = await client.post(f"{url}/publish", headers=approver)
        assert refused.status_code == 422 and len(refused.json()["detail"]["violations"]) == 6
        assert (await client.get(url, headers=editor)).json()["state"] == "draft"  # nothing half-done
        not_admin = await client.post(f"{url}/publish", json={"override_reason": "urgent"}, headers=approver)
        assert not_admin.status_code == 403
        forced = await client.post(f"{url}/publish", json={"override_reason": "Legal approved the wording"},
                                   headers=admin)
        assert forced.status_code == 200 and forced.json()["charter_override_reason"] == "Legal approved the wording"
        trail = (await client.get(f"{url}/audit", headers=admin)).json()["transitions"]
        approval = next(t for t in trail if t["action"] == "approve")
        assert approval["actor"] == "ada" and approval["reason"] == "charter override: Legal approved the wording"
        assert len(approval["detail"]["overridden_violations"]) == 6

        clean = {**DRAFT, "owner_subsidiary": None}
        ok = (await client.post("/v1/contents", json=clean, headers=token(tenant, "editor"))).json()
        assert (await client.post(f"/v1/contents/{ok['id']}/publish", headers=approver)).status_code == 200
        events = await read_topic(kafka_bootstrap, topics.CONTENT_LIFECYCLE.name, lifecycle_of(tenant), expect=2)

    by_id = {json.loads(e.value)["content_id"]: json.loads(e.value) for e in events}
    assert by_id[item["id"]]["disclosures"] == {"US": "#ad", "GB": "#ad"}  # the subsidiary's charter
    assert by_id[ok["id"]]["disclosures"] == {"US": "#ad"}


async def test_invalid_and_oversized_payloads_name_the_field_and_variants_too_alike_are_warned(content_app):
    tenant = new_tenant()
    editor = token(tenant, "editor")
    async with running(content_app) as client:
        cases = [
            ({**DRAFT, "title": "x" * 301}, ("body", "title")),
            ({**DRAFT, "share_texts": [DRAFT["share_texts"][0]] * 2}, ("body", "share_texts")),
            ({**DRAFT, "share_texts": [{"network": "myspace", "language": "en", "text": "hi"}]},
             ("body", "share_texts", 0, "network")),
            ({**DRAFT, "publish_at": "2030-01-02T00:00:00Z", "expire_at": "2030-01-01T00:00:00Z"}, ("body",)),
            ({**DRAFT, "publish_at": "2030-01-02T00:00:00"}, ("body", "publish_at")),
        ]
        for payload, loc in cases:
            answer = await client.post("/v1/contents", json=payload, headers=editor)
            assert answer.status_code == 422, loc
            assert loc in [tuple(e["loc"]) for e in answer.json()["detail"]], answer.json()

        item = (await client.post("/v1/contents", json={**DRAFT, "publish_at": "2030-01-02T00:00:00Z"},
                                  headers=editor)).json()
        late = await client.patch(f"/v1/contents/{item['id']}", json={"expire_at": "2030-01-01T00:00:00Z"},
                                  headers=editor)
        assert late.status_code == 422 and late.json()["detail"][0]["loc"] == ["body"]

        alike = {**DRAFT, "share_texts": [
            {"network": "linkedin", "language": "en", "text": "Proud of our brand new plant! #employee"},
            {"network": "linkedin", "language": "en", "variant": 1, "text": "Proud of our brand-new plant! #employee"}]}
        warned = (await client.post("/v1/contents", json=alike, headers=editor)).json()["warnings"]
        assert [(w["field"], w["rule"]) for w in warned] == [("share_texts[1].text", "near_duplicate")]
