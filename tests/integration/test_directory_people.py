"""The directory's people for the administration page, against the real broker and database: the
administration page's searchable, paged list of the people HR told of with their enrolment and
consent state (admins only, a subsidiary-scoped admin in his subtree)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.test_distribution_directory import admin, enrol_once_known, feed_hr, hire
from tests.integration.test_distribution_directory import client as directory_client  # noqa: F401 (the fixture)
from tests.support import new_tenant, token

pytestmark = pytest.mark.integration


def admin_of(tenant: str, subsidiary: str) -> dict[str, str]:
    return token(tenant, "admin", subject="admin-2", subsidiary=subsidiary)


async def people(client: httpx.AsyncClient, headers: dict[str, str], **query: Any) -> dict[str, Any]:
    answer = await client.get("/v1/directory/people", headers=headers, params=query)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_admins_search_the_people_with_their_enrolment_and_consent(directory_client: httpx.AsyncClient,  # noqa: F811
                                                                         kafka_bootstrap, database_url):
    client, tenant = directory_client, new_tenant()
    await feed_hr(kafka_bootstrap, database_url, hire(tenant, "E1", 1, "FR01"), hire(tenant, "E2", 1, "FR01"),
                  hire(tenant, "E3", 1, "DE01"))
    assert (await enrol_once_known(client, tenant, "E1")).status_code == 201

    found = await people(client, admin(tenant))
    assert found["total"] == 3 and [p["employee_id"] for p in found["people"]] == ["E1", "E2", "E3"]
    assert [(p["enrolled"], p["consent"]) for p in found["people"]] == [(True, "in_force"), (False, "none"),
                                                                       (False, "none")]
    assert found["people"][0]["email"] == "E1@example.com" and found["people"][0]["consent_text_version"] == "v1"

    assert [p["employee_id"] for p in (await people(client, admin(tenant), q="e2@EXAMPLE"))["people"]] == ["E2"]
    assert (await people(client, admin(tenant), q="hopper", limit=1, offset=1)) | {"people": []} == \
        {"total": 3, "limit": 1, "offset": 1, "people": []}
    assert (await people(client, admin(tenant), q="%"))["total"] == 0  # a wildcard is a character
    past = await people(client, admin(tenant), offset=10)
    assert past["total"] == 3 and past["people"] == []

    scoped = await people(client, admin_of(tenant, "DE01"))
    assert [p["employee_id"] for p in scoped["people"]] == ["E3"]

    published = await client.put("/v1/admin/consent-texts/v2", headers=admin(tenant),
                                 json={"text": "New terms", "reconsent_within_days": 30})
    assert published.status_code == 201, published.text
    assert (await people(client, admin(tenant), q="E1"))["people"][0]["consent"] == "outdated"

    for role in ("editor", "analyst", "employee"):
        assert (await client.get("/v1/directory/people", headers=token(tenant, role))).status_code == 403
    assert (await client.get("/v1/directory/people", headers=admin(tenant), params={"q": "x" * 201})).status_code == 422
