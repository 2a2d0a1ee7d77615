"""GET /v1/directory/org against the real broker and database: what the studio's audience picker
offers (org tree, sites, countries, languages, groups, with headcounts), to editors, approvers and
analysts, and only their own subtree to a subsidiary's staff."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.distribution.main import DistributionSettings, create_app
from shared.envelope import new_event
from shared.events import Audience, EmployeeUpserted, Network, ShareText
from shared.topics import CONTENT_LIFECYCLE, NOTIFICATIONS
from tests.integration.test_distribution_directory import admin, enrol, feed_hr
from tests.integration.test_distribution_slice import data, of, published
from tests.support import kafka_record as binary
from tests.support import new_tenant, produce, read_topic, running, settings_for, token

pytestmark = pytest.mark.integration
TREE = [("GRP", "Acme group", None), ("FR", "Acme France", "GRP"), ("FR-LYO", "Acme Lyon", "FR"),
        ("DE", "Acme Deutschland", "GRP")]


@pytest.fixture(scope="module")
async def client(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings_for(DistributionSettings, kafka_bootstrap, database_url))) as client:
        yield client


def placed(tenant: str, employee_id: str, subsidiary: str, site: str, country: str, language: str) -> Any:
    data = EmployeeUpserted(
        employee_id=employee_id, email=f"{employee_id}@example.com", given_name="Ada", family_name="Byron",
        subsidiary=subsidiary, department="Comms", site=site, country=country, language=language,
        effective_at=datetime.now(UTC), version=1)
    return new_event("hr.employee.upserted", source="hr/sap", subject=employee_id, tenant=tenant, data=data)


async def org_world(client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> str:
    tenant = new_tenant()
    for code, name, parent in TREE:
        r = await client.put(f"/v1/admin/subsidiaries/{code}", headers=admin(tenant),
                             json={"name": name, "parent": parent})
        assert r.status_code == 200, r.text
    await feed_hr(kafka_bootstrap, database_url,
                  placed(tenant, "fr-1", "FR", "Paris", "FR", "fr-FR"),
                  placed(tenant, "fr-2", "FR", "Paris", "FR", "fr"),
                  placed(tenant, "ly-1", "FR-LYO", "Lyon", "FR", "fr-FR"),
                  placed(tenant, "de-1", "DE", "Berlin", "DE", "de-DE"),
                  placed(tenant, "de-2", "DE", "Munich", "DE", "en"))
    consent = await client.put("/v1/admin/consent-texts/v1", headers=admin(tenant), json={"text": "I agree"})
    assert consent.status_code == 201, consent.text
    assert (await enrol(client, tenant, "fr-1")).status_code == 201
    assert (await client.put("/v1/admin/groups/sales", headers=admin(tenant), json={"members": ["fr-1", "de-1"]})
            ).status_code == 200
    assert (await client.put("/v1/admin/groups/berlin-tech", headers=admin(tenant), json={"members": ["de-1"]})
            ).status_code == 200
    return tenant


def facet(answer: dict[str, Any], name: str) -> dict[str, tuple[int, int]]:
    return {f["value"]: (f["headcount"], f["ambassadors"]) for f in answer[name]}


async def test_group_staff_see_the_whole_org_with_headcounts(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = await org_world(client, kafka_bootstrap, database_url)
    for role in ("editor", "approver", "analyst", "admin"):
        r = await client.get("/v1/directory/org", headers=token(tenant, role, subject="staff-1"))
        assert r.status_code == 200, (role, r.text)
    answer = r.json()
    assert answer["scope"] is None
    assert [(u["code"], u["name"], u["parent"], u["headcount"], u["ambassadors"]) for u in answer["subsidiaries"]] == [
        ("DE", "Acme Deutschland", "GRP", 2, 0), ("FR", "Acme France", "GRP", 2, 1),
        ("FR-LYO", "Acme Lyon", "FR", 1, 0), ("GRP", "Acme group", None, 0, 0)]
    assert facet(answer, "sites") == {"Berlin": (1, 0), "Lyon": (1, 0), "Munich": (1, 0), "Paris": (2, 1)}
    assert facet(answer, "countries") == {"DE": (2, 0), "FR": (3, 1)}
    assert facet(answer, "languages") == {"de-DE": (1, 0), "en": (1, 0), "fr": (1, 0), "fr-FR": (2, 1)}
    assert answer["groups"] == [{"name": "berlin-tech", "headcount": 1}, {"name": "sales", "headcount": 2}]


async def test_a_subsidiary_editor_sees_only_his_subtree(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = await org_world(client, kafka_bootstrap, database_url)
    r = await client.get("/v1/directory/org", headers=token(tenant, "editor", subject="ed-fr", subsidiary="FR"))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["scope"] == "FR"
    # His subsidiary is the root of what he sees: neither the group above nor its sister DE.
    assert [(u["code"], u["parent"], u["headcount"]) for u in answer["subsidiaries"]] == [
        ("FR", None, 2), ("FR-LYO", "FR", 1)]
    assert facet(answer, "sites") == {"Lyon": (1, 0), "Paris": (2, 1)}
    assert facet(answer, "countries") == {"FR": (3, 1)}
    assert "de-DE" not in facet(answer, "languages") and "en" not in facet(answer, "languages")
    # A group is counted within his subtree; a group with nobody in it is not even named.
    assert answer["groups"] == [{"name": "sales", "headcount": 1}]

    leaf = await client.get("/v1/directory/org", headers=token(tenant, "analyst", subject="an", subsidiary="FR-LYO"))
    assert [u["code"] for u in leaf.json()["subsidiaries"]] == ["FR-LYO"]
    assert facet(leaf.json(), "sites") == {"Lyon": (1, 0)} and leaf.json()["groups"] == []


async def test_the_org_directory_refuses_employees_and_anonymous_callers(
        client: httpx.AsyncClient) -> None:
    tenant = new_tenant()
    assert (await client.get("/v1/directory/org")).status_code == 401
    refused = await client.get("/v1/directory/org", headers=token(tenant, "employee", subject="e-1"))
    assert refused.status_code == 403 and "editor" in refused.json()["detail"]
    empty = await client.get("/v1/directory/org", headers=token(tenant, "editor", subject="ed"))
    assert empty.json() == {"scope": None, "subsidiaries": [], "sites": [], "countries": [], "languages": [],
                            "groups": []}


async def test_a_post_for_a_subsidiary_reaches_its_whole_subtree_and_no_other(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    """Audience FR: FR's and FR-LYO's ambassadors (a unit below FR), not DE's."""
    tenant = await org_world(client, kafka_bootstrap, database_url)
    ids = {e: (await enrol(client, tenant, e)).json()["ambassador_id"] for e in ("ly-1", "de-1")}
    content_id = str(uuid.uuid4())
    event = published(tenant, content_id, Audience(subsidiaries=["FR"]),
                      [ShareText(network=Network.linkedin, language="fr", text="Bonne nouvelle")])
    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [binary(event)])
    sent = await read_topic(kafka_bootstrap, NOTIFICATIONS.name, of(tenant, "notification.sent"), expect=2, settle=2.0)
    assert sorted(data(r)["subsidiary"] for r in sent) == ["FR", "FR-LYO"]  # fr-1 (enrolled in org_world), ly-1
    assert ids["de-1"] not in {data(r)["ambassador_id"] for r in sent}
