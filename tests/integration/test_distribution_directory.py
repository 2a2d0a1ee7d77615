"""The ambassador directory against the real broker and database: SCIM 2.0 (errors, ETags,
filters, one truth through hr.employees.v1), HR convergence and unknown subsidiaries, consent
(re-consent, expiry), groups and preferences in targeting, departures, erasure, headcount."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.distribution.main import DistributionSettings, create_app
from shared.auth import holder_digest
from shared.envelope import new_event
from shared.events import Audience, ContentPublished, EmployeeDeparted, EmployeeUpserted
from shared.topics import AMBASSADORS, CONTENT_LIFECYCLE, HR_EMPLOYEES, NOTIFICATIONS
from tests.integration.test_distribution_slice import binary, processed
from tests.support import (
    IDENTITY_KEY,
    eventually,
    header,
    new_tenant,
    produce,
    read_topic,
    running,
    settings_for,
    token,
)

pytestmark = pytest.mark.integration

SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture(scope="module")
async def client(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(DistributionSettings, kafka_bootstrap, database_url,
                            personal_data_retention_days=0.1, directory_sweep_interval_seconds=0.3)
    async with running(create_app(settings)) as client:
        yield client


async def sql(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def hire(tenant: str, employee_id: str, version: int, subsidiary: str = "FR01", at: datetime | None = None,
         **fields: Any) -> Any:
    data = EmployeeUpserted(
        employee_id=employee_id, email=f"{employee_id}@example.com", given_name="Grace", family_name="Hopper",
        subsidiary=subsidiary, department=fields.get("department", "Sales"), site="Lyon", country="FR",
        language="fr-FR", effective_at=at or datetime.now(UTC), version=version)
    return new_event("hr.employee.upserted", source="hr/sap", subject=employee_id, tenant=tenant, data=data)


def leave(tenant: str, employee_id: str, version: int, at: datetime | None = None) -> Any:
    data = EmployeeDeparted(employee_id=employee_id, effective_at=at or datetime.now(UTC), version=version)
    return new_event("hr.employee.departed", source="hr/sap", subject=employee_id, tenant=tenant, data=data)


async def feed_hr(kafka_bootstrap: str, database_url: str, *events: Any) -> None:
    await produce(kafka_bootstrap, HR_EMPLOYEES.name, [binary(e) for e in events])
    await processed(database_url, *events)


def admin(tenant: str) -> dict[str, str]:
    return token(tenant, "admin", subject="admin-1")


def me(tenant: str, employee_id: str) -> dict[str, str]:
    return token(tenant, "employee", subject=employee_id)


async def scim_token(client: httpx.AsyncClient, tenant: str) -> dict[str, str]:
    issued = await client.post("/v1/admin/scim-tokens", headers=admin(tenant), json={"description": "Entra ID"})
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Bearer {issued.json()['token']}", "Content-Type": SCIM}


def scim_user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER, ENTERPRISE], "userName": user_name, "externalId": user_name.split("@")[0],
            "name": {"givenName": "Alan", "familyName": "Turing"}, "active": True,
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            "addresses": [{"locality": "Manchester", "country": "GB", "primary": True}],
            "preferredLanguage": "en-GB",
            ENTERPRISE: {"organization": "UK01", "department": "Research"}, **extra}


def of(tenant: str, event_type: str) -> Any:
    return lambda r: header(r, "ce_tenantid") == tenant and header(r, "ce_type") == event_type


async def enrol(client: httpx.AsyncClient, tenant: str, employee_id: str, version: str = "v1") -> httpx.Response:
    return await client.post("/v1/me/enrolment", headers=me(tenant, employee_id),
                             json={"consent_text_version": version, "channel": "mobile", "networks": {"linkedin": 300}})


async def enrol_once_known(client: httpx.AsyncClient, tenant: str, employee_id: str) -> httpx.Response:
    """Enrol as soon as the directory has consumed the employee's HR event."""
    async def attempt() -> httpx.Response | None:
        response = await enrol(client, tenant, employee_id)
        return None if response.status_code == 404 else response
    return await eventually(attempt)


def assert_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM)
    body = response.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status) and body["detail"]
    assert body.get("scimType") == scim_type


# --- SCIM ----------------------------------------------------------------------------------------

async def test_scim_users_lifecycle_goes_through_hr_events(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    auth = await scim_token(client, tenant)
    stored = await sql(database_url, "SELECT token_hash FROM distribution.scim_tokens WHERE tenant = $1", tenant)
    assert auth["Authorization"].split()[1].encode() not in bytes(stored[0]["token_hash"])  # only a hash

    created = await client.post("/scim/v2/Users", headers=auth, json=scim_user("alan@example.com"))
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith(SCIM)
    user = created.json()
    assert user["meta"]["version"] == created.headers["etag"] == 'W/"1"'
    assert user["meta"]["location"].endswith(f"/scim/v2/Users/{user['id']}")
    assert user[ENTERPRISE]["organization"] == "UK01"
    assert (await client.get(f"/scim/v2/Users/{user['id']}", headers=auth)).json()["userName"] == "alan@example.com"

    # One truth: the directory learns the user from hr.employees.v1, like from an HR system.
    [upsert] = await read_topic(kafka_bootstrap, HR_EMPLOYEES.name, of(tenant, "hr.employee.upserted"))
    assert header(upsert, "ce_source") == "portevoix/scim" and header(upsert, "ce_subject") == "alan"
    record = json.loads(upsert.value)
    assert (record["subsidiary"], record["department"], record["country"], record["language"], record["site"]) == (
        "UK01", "Research", "GB", "en-GB", "Manchester")
    assert (await enrol_once_known(client, tenant, "alan")).status_code == 201

    stale = await client.put(f"/scim/v2/Users/{user['id']}", headers={**auth, "If-Match": 'W/"7"'},
                             json=scim_user("alan@example.com"))
    assert_scim_error(stale, 412)
    patched = await client.patch(f"/scim/v2/Users/{user['id']}", headers={**auth, "If-Match": 'W/"1"'}, json={
        "schemas": [PATCH], "Operations": [
            {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Cryptanalysis"},
            {"op": "Replace", "path": "name.givenName", "value": "Alan M."},
            {"op": "Add", "path": 'phoneNumbers[type eq "work"].value', "value": "+44 161 000"}]})
    assert patched.status_code == 200, patched.text
    assert patched.headers["etag"] == 'W/"2"'
    assert patched.json()[ENTERPRISE]["department"] == "Cryptanalysis"
    assert patched.json()["phoneNumbers"] == [{"type": "work", "value": "+44 161 000"}]

    [updated] = await read_topic(kafka_bootstrap, AMBASSADORS.name, of(tenant, "ambassador.updated"))
    assert json.loads(updated.value)["department"] == "Cryptanalysis"
    assert "alan" not in updated.value.decode().lower()

    deactivated = await client.patch(f"/scim/v2/Users/{user['id']}", headers=auth, json={
        "schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
    assert deactivated.json()["active"] is False
    [withdrawn] = await read_topic(kafka_bootstrap, AMBASSADORS.name, of(tenant, "ambassador.withdrawn"))
    assert json.loads(withdrawn.value)["reason"] == "departed"

    assert (await client.delete(f"/scim/v2/Users/{user['id']}", headers=auth)).status_code == 204
    assert_scim_error(await client.get(f"/scim/v2/Users/{user['id']}", headers=auth), 404)
    versions = [json.loads(r.value)["version"] for r in await read_topic(
        kafka_bootstrap, HR_EMPLOYEES.name, lambda r: header(r, "ce_tenantid") == tenant, expect=4)]
    assert versions == sorted(versions) and len(set(versions)) == 4


async def test_scim_filters_and_pagination(client: httpx.AsyncClient) -> None:
    tenant = new_tenant()
    auth = await scim_token(client, tenant)
    for name in ("ada@example.com", "adele@example.org", "bob@example.com"):
        assert (await client.post("/scim/v2/Users", headers=auth, json=scim_user(name))).status_code == 201
    with_title = scim_user("carl@example.com", title="CISO")
    assert (await client.post("/scim/v2/Users", headers=auth, json=with_title)).status_code == 201

    async def names(filter_text: str) -> list[str]:
        response = await client.get("/scim/v2/Users", headers=auth, params={"filter": filter_text})
        assert response.status_code == 200, response.text
        return sorted(r["userName"] for r in response.json()["Resources"])

    assert await names('userName eq "ADA@example.com"') == ["ada@example.com"]  # case-insensitive
    assert await names('userName sw "ad"') == ["ada@example.com", "adele@example.org"]
    assert await names('emails.value co "example.org"') == ["adele@example.org"]
    assert await names('emails[type eq "work" and value ew ".com"] and userName sw "b"') == ["bob@example.com"]
    assert await names("title pr") == ["carl@example.com"]
    assert await names(f'{ENTERPRISE}:organization eq "UK01" and not (userName sw "a")') == [
        "bob@example.com", "carl@example.com"]
    assert await names('userName eq "ada@example.com" or externalId eq "bob"') == ["ada@example.com",
                                                                                   "bob@example.com"]

    second = (await client.get("/scim/v2/Users", headers=auth, params={"startIndex": 2, "count": 2})).json()
    assert (second["totalResults"], second["startIndex"], second["itemsPerPage"]) == (4, 2, 2)
    assert [r["userName"] for r in second["Resources"]] == ["adele@example.org", "bob@example.com"]
    only_total = (await client.get("/scim/v2/Users", headers=auth, params={"count": 0})).json()
    assert (only_total["totalResults"], only_total["Resources"]) == (4, [])

    # Another tenant's credentials see none of them.
    other = await scim_token(client, new_tenant())
    assert (await client.get("/scim/v2/Users", headers=other)).json()["totalResults"] == 0
    some_id = second["Resources"][0]["id"]
    assert_scim_error(await client.get(f"/scim/v2/Users/{some_id}", headers=other), 404)


async def test_scim_refusals_are_rfc_error_bodies(client: httpx.AsyncClient) -> None:
    tenant = new_tenant()
    auth = await scim_token(client, tenant)
    assert_scim_error(await client.get("/scim/v2/Users"), 401)
    assert_scim_error(await client.get("/scim/v2/Users", headers={"Authorization": "Bearer scim_forged"}), 401)
    assert_scim_error(await client.post("/scim/v2/Users", headers=auth, content=b"{not json"), 400, "invalidSyntax")
    assert_scim_error(await client.post("/scim/v2/Users", headers=auth, json={"userName": "x@example.com"}),
                      400, "invalidSyntax")  # no schemas
    assert_scim_error(await client.post("/scim/v2/Users", headers=auth, json={"schemas": [USER]}),
                      400, "invalidValue")  # no userName
    assert_scim_error(await client.post("/scim/v2/Users", headers=auth,
                                        json={"schemas": [USER], "userName": "no-mail", "active": "maybe"}),
                      400, "invalidValue")
    assert_scim_error(await client.post("/scim/v2/Users", headers=auth, json={"schemas": [USER], "userName": "x"}),
                      400, "invalidValue")  # no e-mail: cannot be a directory entry
    first = await client.post("/scim/v2/Users", headers=auth, json=scim_user("dup@example.com"))
    assert first.status_code == 201
    assert_scim_error(await client.post("/scim/v2/Users", headers=auth, json=scim_user("DUP@example.com")),
                      409, "uniqueness")
    assert_scim_error(await client.get("/scim/v2/Users", headers=auth, params={"filter": 'userName eq'}),
                      400, "invalidFilter")
    assert_scim_error(await client.get("/scim/v2/Users", headers=auth, params={"filter": 'shoeSize gt 3'}),
                      400, "invalidFilter")
    user_id = first.json()["id"]
    assert_scim_error(await client.patch(f"/scim/v2/Users/{user_id}", headers=auth, json={
        "schemas": [PATCH], "Operations": [{"op": "replace", "path": "emails[type eq \"home\"].value",
                                            "value": "x@y.z"}]}), 400, "noTarget")
    assert_scim_error(await client.patch(f"/scim/v2/Users/{user_id}", headers=auth, json={
        "schemas": [PATCH], "Operations": [{"op": "add", "path": "groups", "value": [{"value": "g"}]}]}),
        400, "mutability")
    assert_scim_error(await client.patch(f"/scim/v2/Users/{user_id}", headers=auth, json={"Operations": []}),
                      400, "invalidSyntax")
    # An organization outside the tenant's org tree is refused before anything is emitted.
    assert (await client.put("/v1/admin/subsidiaries/FR01", headers=admin(tenant), json={"name": "France"})
            ).status_code == 200
    assert_scim_error(await client.post("/scim/v2/Users", headers=auth, json=scim_user("z@example.com")),
                      400, "invalidValue")


async def test_scim_groups_and_discovery(client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    auth = await scim_token(client, tenant)
    user = (await client.post("/scim/v2/Users", headers=auth, json=scim_user("eve@example.com"))).json()
    created = await client.post("/scim/v2/Groups", headers=auth, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "cyber",
        "members": [{"value": user["id"]}]})
    assert created.status_code == 201, created.text
    group = created.json()
    assert [m["value"] for m in group["members"]] == [user["id"]]
    listed = await client.get("/scim/v2/Groups", headers=auth, params={"filter": 'displayName eq "CYBER"',
                                                                       "excludedAttributes": "members"})
    assert [(g["id"], "members" in g) for g in listed.json()["Resources"]] == [(group["id"], False)]
    removed = await client.patch(f"/scim/v2/Groups/{group['id']}", headers=auth, json={
        "schemas": [PATCH], "Operations": [{"op": "Remove", "path": f'members[value eq "{user["id"]}"]'}]})
    assert removed.status_code == 200 and removed.json()["members"] == []
    assert_scim_error(await client.post("/scim/v2/Groups", headers=auth, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "x",
        "members": [{"value": str(uuid.uuid4())}]}), 400, "invalidValue")

    config = (await client.get("/scim/v2/ServiceProviderConfig")).json()
    assert config["patch"]["supported"] and config["filter"]["supported"] and config["etag"]["supported"]
    types = (await client.get("/scim/v2/ResourceTypes")).json()
    assert {t["id"] for t in types["Resources"]} == {"User", "Group"}
    schemas = (await client.get("/scim/v2/Schemas")).json()
    assert {s["id"] for s in schemas["Resources"]} == {USER, ENTERPRISE, "urn:ietf:params:scim:schemas:core:2.0:Group"}


# --- HR events -----------------------------------------------------------------------------------

async def test_hr_events_for_unknown_subsidiaries_go_to_the_dlq_with_the_cause(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    assert (await client.put("/v1/admin/subsidiaries/FR01", headers=admin(tenant), json={"name": "France"})
            ).status_code == 200
    known, unknown = hire(tenant, "e-ok", 1, "FR01"), hire(tenant, "e-typo", 1, "FR-01")
    await produce(kafka_bootstrap, HR_EMPLOYEES.name, [binary(unknown), binary(known)])
    await processed(database_url, known)
    [dead] = await read_topic(kafka_bootstrap, HR_EMPLOYEES.dlq.name, lambda r: header(r, "ce_id") == unknown.id)
    assert "UnknownSubsidiary" in header(dead, "x-portevoix-dlq-cause") and "FR-01" in header(
        dead, "x-portevoix-dlq-cause")
    rows = await sql(database_url, "SELECT employee_id FROM distribution.employees WHERE tenant = $1", tenant)
    assert [r["employee_id"] for r in rows] == ["e-ok"]


async def test_out_of_order_replays_converge_and_history_keeps_every_version(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    # Hours apart, recent: the departure stays within this module's retention (0.1 day) during the test.
    now = datetime.now(UTC).replace(microsecond=0)
    jan, feb, mar = now - timedelta(hours=3), now - timedelta(hours=2), now - timedelta(hours=1)
    moved, hired, left = hire(tenant, "e-1", 2, "DE02", at=mar), hire(tenant, "e-1", 1, "FR01", at=jan), \
        hire(tenant, "e-2", 1, "FR01", at=jan)
    gone = leave(tenant, "e-2", 2, at=feb)
    # newest first, then a duplicate of the oldest under a new id (a replay)
    replay = hire(tenant, "e-1", 1, "FR01", at=jan)
    await feed_hr(kafka_bootstrap, database_url, moved, gone, hired, left, replay)
    rows = await sql(database_url, "SELECT employee_id, subsidiary, departed, version FROM distribution.employees "
                                   "WHERE tenant = $1 ORDER BY employee_id", tenant)
    assert [tuple(r) for r in rows] == [("e-1", "DE02", False, 2), ("e-2", "", True, 2)]

    async def count(at: datetime, subsidiary: str | None = None) -> tuple[int, int]:
        params = {"at": at.isoformat(), **({"subsidiary": subsidiary} if subsidiary else {})}
        response = await client.get("/v1/directory/headcount", params=params,
                                    headers=token(tenant, "analyst", subject="a"))
        assert response.status_code == 200, response.text
        return response.json()["headcount"], response.json()["enrolled"]

    half_hour = timedelta(minutes=30)
    assert await count(jan + half_hour, "FR01") == (2, 0)
    assert await count(feb + half_hour, "FR01") == (1, 0)
    assert await count(mar + half_hour, "FR01") == (0, 0)
    assert await count(mar + half_hour, "DE02") == (1, 0)
    assert (await enrol(client, tenant, "e-1")).status_code == 201
    assert await count(datetime.now(UTC) + timedelta(seconds=5), "DE02") == (1, 1)
    assert await count(mar + half_hour) == (1, 0)  # enrolled only since now
    scoped = await client.get("/v1/directory/headcount", params={"at": jan.isoformat(), "subsidiary": "DE02"},
                              headers=token(tenant, "analyst", subject="a", subsidiary="FR01"))
    assert scoped.status_code == 403


# --- enrolment and consent -----------------------------------------------------------------------

async def consent_changes(kafka_bootstrap: str, tenant: str, expect: int) -> list[dict[str, Any]]:
    """The tenant's ambassador.updated events that tell a consent lapsed or renewed, in order."""
    def consent_change(record: Any) -> bool:
        return of(tenant, "ambassador.updated")(record) and json.loads(record.value).get("change", "").startswith(
            "consent_")
    return [json.loads(r.value) for r in await read_topic(kafka_bootstrap, AMBASSADORS.name, consent_change,
                                                          expect=expect)]


async def test_consent_is_the_employees_own_and_must_be_renewed(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    await feed_hr(kafka_bootstrap, database_url, hire(tenant, "e-c", 1), hire(tenant, "e-other", 1))
    published = await client.put("/v1/admin/consent-texts/v1", headers=admin(tenant),
                                 json={"text": "I agree to share company news."})
    assert published.status_code == 201, published.text
    assert (await client.put("/v1/admin/consent-texts/v1", headers=admin(tenant), json={"text": "x"})
            ).status_code == 409
    assert (await client.put("/v1/admin/consent-texts/v9", headers=me(tenant, "e-c"), json={"text": "x"})
            ).status_code == 403

    # Nobody can be enrolled by someone else: the body cannot name a person, the token is the person.
    someone_else = await client.post("/v1/me/enrolment", headers=me(tenant, "e-c"),
                                     json={"consent_text_version": "v1", "employee_id": "e-other"})
    assert someone_else.status_code == 422
    outdated = await enrol(client, tenant, "e-c", version="v0")
    assert outdated.status_code == 409 and outdated.json()["detail"]["current_version"] == "v1"
    first = await enrol(client, tenant, "e-c")
    assert first.status_code == 201, first.text
    assert first.json()["consent_channel"] == "mobile"
    assert (await client.get("/v1/me/feed", headers=me(tenant, "e-other"))).status_code == 404

    ambassador_id = first.json()["ambassador_id"]
    networks = {"linkedin": 300, "x": 50}
    assert (await client.put("/v1/me/networks", headers=me(tenant, "e-c"), json={"networks": networks})
            ).status_code == 200

    # A new text: consents to v1 lapse at once (no grace). A lapse is not a withdrawal: the same
    # person keeps his pseudonymous id and networks, and is told apart only while it lasts.
    republished = await client.put("/v1/admin/consent-texts/v2", headers=admin(tenant),
                                   json={"text": "I agree, v2.", "reconsent_within_days": 0})
    assert republished.json()["ambassadors_to_reconsent"] == 1
    [lapse] = await consent_changes(kafka_bootstrap, tenant, 1)
    assert (lapse["ambassador_id"], lapse["change"]) == (ambassador_id, "consent_lapsed")
    for path in ("/v1/me/feed", "/v1/me/preferences"):  # as OpenAPI says: not enrolled while it lasts
        lapsed = await client.get(path, headers=me(tenant, "e-c"))
        assert lapsed.status_code == 404 and lapsed.json()["detail"]["reason"] == "not_enrolled", (path, lapsed.text)
    assert (await client.put("/v1/me/preferences", headers=me(tenant, "e-c"), json={})).status_code == 404
    status = (await client.get("/v1/me/consent", headers=me(tenant, "e-c"))).json()
    assert status["in_force"] is False and status["enrolment"]["ambassador_id"] == ambassador_id
    again = await enrol(client, tenant, "e-c", version="v2")
    assert again.status_code == 200, again.text  # a renewal, not an enrolment
    assert (again.json()["ambassador_id"], again.json()["networks"]) == (ambassador_id, networks)
    assert (await client.get("/v1/me/preferences", headers=me(tenant, "e-c"))).status_code == 200
    renewal = await consent_changes(kafka_bootstrap, tenant, 2)
    assert [r["change"] for r in renewal] == ["consent_lapsed", "consent_renewed"]
    assert renewal[1]["network_audience"] == networks and renewal[1]["ambassador_id"] == ambassador_id

    # Expiry: once the period is over (clock moved on here), the consent is no longer in force;
    # renewed, it is the same ambassador again.
    await sql(database_url, "UPDATE distribution.ambassadors SET consent_expires_at = now() "
                            "WHERE tenant = $1 AND withdrawn_at IS NULL", tenant)
    await consent_changes(kafka_bootstrap, tenant, 3)
    status = (await client.get("/v1/me/consent", headers=me(tenant, "e-c"))).json()
    assert status["in_force"] is False and status["current_text"]["version"] == "v2"
    assert [(r["action"], r["text_version"]) for r in status["record"]] == [
        ("given", "v1"), ("lapsed", "v1"), ("renewed", "v2"), ("lapsed", "v2")]
    renewed = await enrol(client, tenant, "e-c", version="v2")
    assert renewed.status_code == 200 and renewed.json()["ambassador_id"] == ambassador_id
    assert (await enrol(client, tenant, "e-c", version="v2")).status_code == 200  # a renewal while in force
    events = await read_topic(kafka_bootstrap, AMBASSADORS.name, lambda r: header(r, "ce_tenantid") == tenant,
                              expect=6, settle=1.0)
    assert [(header(r, "ce_type"), json.loads(r.value).get("change")) for r in events] == [
        ("ambassador.enrolled", None), ("ambassador.updated", "profile"), ("ambassador.updated", "consent_lapsed"),
        ("ambassador.updated", "consent_renewed"), ("ambassador.updated", "consent_lapsed"),
        ("ambassador.updated", "consent_renewed")]


async def test_groups_and_preferences_target_the_fan_out(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    await feed_hr(kafka_bootstrap, database_url, *(hire(tenant, e, 1) for e in ("e-cyber", "e-plain", "e-picky")))
    ids = {e: (await enrol(client, tenant, e)).json()["ambassador_id"] for e in ("e-cyber", "e-plain", "e-picky")}
    group = await client.put("/v1/admin/groups/cyber", headers=admin(tenant), json={"members": ["e-cyber", "e-picky"]})
    assert group.status_code == 200, group.text
    assert (await client.put("/v1/admin/groups/cyber", headers=admin(tenant), json={"members": ["ghost"]})
            ).status_code == 404
    bad_zone = await client.put("/v1/me/preferences", headers=me(tenant, "e-picky"),
                                json={"time_zone": "Mars/Olympus", "topics": ["hiring"]})
    assert bad_zone.status_code == 422
    prefs = await client.put("/v1/me/preferences", headers=me(tenant, "e-picky"), json={
        "topics": ["Hiring"], "quiet_start": "22:00", "quiet_end": "07:00", "time_zone": "Europe/Paris",
        "max_per_day": 3, "channels": ["email"]})
    assert prefs.status_code == 200 and prefs.json()["topics"] == ["hiring"]

    [profile] = await read_topic(kafka_bootstrap, AMBASSADORS.name,
                                 lambda r: of(tenant, "ambassador.updated")(r)
                                 and json.loads(r.value)["ambassador_id"] == ids["e-cyber"])
    assert json.loads(profile.value)["groups"] == ["cyber"]

    def content(tags: list[str]) -> Any:
        cid = str(uuid.uuid4())
        return cid, new_event("content.published", source="portevoix/content", subject=cid, tenant=tenant,
                              data=ContentPublished(content_id=cid, revision=1, title="t", url="https://e.com/a",
                                                    language="fr", tags=tags, audience=Audience(groups=["cyber"]),
                                                    published_at=datetime.now(UTC)))
    security, _ = content(["security"])
    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [binary(_)])
    [sent] = await read_topic(kafka_bootstrap, NOTIFICATIONS.name,
                              lambda r: of(tenant, "notification.sent")(r)
                              and json.loads(r.value)["content_id"] == security,
                              settle=1.0)
    assert json.loads(sent.value)["ambassador_id"] == ids["e-cyber"]  # e-picky wants hiring only


async def test_being_named_in_leaderboards_is_an_opt_in_carried_on_every_profile(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    await feed_hr(kafka_bootstrap, database_url, hire(tenant, "e-shy", 1), hire(tenant, "e-proud", 1),
                  hire(tenant, "e-stranger", 1))
    ids = {e: (await enrol(client, tenant, e)).json()["ambassador_id"] for e in ("e-shy", "e-proud")}
    enrolled = await read_topic(kafka_bootstrap, AMBASSADORS.name, of(tenant, "ambassador.enrolled"), expect=2)
    assert [json.loads(r.value)["named_in_leaderboards"] for r in enrolled] == [False, False]  # off by default
    assert (await client.get("/v1/me/preferences", headers=me(tenant, "e-proud"))).json()[
        "named_in_leaderboards"] is False

    # Refused: a non-boolean choice; a choice by someone not enrolled.
    assert (await client.put("/v1/me/preferences", headers=me(tenant, "e-proud"),
                             json={"named_in_leaderboards": "maybe"})).status_code == 422
    assert (await client.put("/v1/me/preferences", headers=me(tenant, "e-stranger"),
                             json={"named_in_leaderboards": True})).status_code == 404

    opted_in = await client.put("/v1/me/preferences", headers=me(tenant, "e-proud"),
                                json={"named_in_leaderboards": True, "topics": ["hiring"]})
    assert opted_in.status_code == 200 and opted_in.json()["named_in_leaderboards"] is True
    assert (await client.get("/v1/me/preferences", headers=me(tenant, "e-proud"))).json()[
        "named_in_leaderboards"] is True
    # Other preferences changing, not the choice: no profile change to tell.
    same = await client.put("/v1/me/preferences", headers=me(tenant, "e-proud"),
                            json={"named_in_leaderboards": True, "topics": ["security"]})
    assert same.status_code == 200
    # A profile change for another reason still carries the choice.
    group = await client.put("/v1/admin/groups/cyber", headers=admin(tenant), json={"members": ["e-proud"]})
    assert group.status_code == 200, group.text
    opted_out = await client.put("/v1/me/preferences", headers=me(tenant, "e-proud"), json={})
    assert opted_out.status_code == 200 and opted_out.json()["named_in_leaderboards"] is False

    updates = await read_topic(kafka_bootstrap, AMBASSADORS.name, of(tenant, "ambassador.updated"),
                               expect=3, settle=1.0)
    assert [(json.loads(r.value)["ambassador_id"], json.loads(r.value)["named_in_leaderboards"],
             json.loads(r.value)["groups"]) for r in updates] == [
        (ids["e-proud"], True, []), (ids["e-proud"], True, ["cyber"]), (ids["e-proud"], False, ["cyber"])]
    # The name travels only while the person chooses to be named; never the e-mail or the HR id.
    assert [json.loads(r.value).get("display_name") for r in enrolled + updates] == [
        None, None, "Grace Hopper", "Grace Hopper", None]
    assert all(b"@example.com" not in r.value and b"e-proud" not in r.value for r in enrolled + updates)
    # The holder digest lets tracking and reporting recognise the person's own calls.
    holders = {json.loads(r.value)["ambassador_id"]: json.loads(r.value)["holder"] for r in enrolled + updates}
    assert holders == {ids[e]: holder_digest(IDENTITY_KEY, tenant, e) for e in ("e-shy", "e-proud")}


# --- departures and privacy ------------------------------------------------------------------------

async def test_departure_cascade_and_erasure(client: httpx.AsyncClient, kafka_bootstrap: str,
                                             database_url: str) -> None:
    tenant = new_tenant()
    hired = hire(tenant, "e-leaver", 1)
    await feed_hr(kafka_bootstrap, database_url, hired, hire(tenant, "e-asks", 1))
    leaver = (await enrol(client, tenant, "e-leaver")).json()["ambassador_id"]
    assert (await enrol(client, tenant, "e-asks")).status_code == 201
    cid = str(uuid.uuid4())
    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [binary(new_event(
        "content.published", source="portevoix/content", subject=cid, tenant=tenant,
        data=ContentPublished(content_id=cid, revision=1, title="t", url="https://e.com/b", language="fr",
                              published_at=datetime.now(UTC))))])
    await read_topic(kafka_bootstrap, NOTIFICATIONS.name, of(tenant, "notification.sent"), expect=2)

    await feed_hr(kafka_bootstrap, database_url, leave(tenant, "e-leaver", 2, at=datetime.now(UTC) - timedelta(days=1)))
    [cancelled] = await read_topic(kafka_bootstrap, NOTIFICATIONS.name, of(tenant, "notification.cancelled"))
    assert (json.loads(cancelled.value)["ambassador_id"], json.loads(cancelled.value)["content_id"]) == (leaver, cid)
    assert (await client.get("/v1/me/feed", headers=me(tenant, "e-leaver"))).status_code == 404

    # Left a day ago, past this module's retention: the sweep erases the person's data; aggregates keep the pseudonym.
    async def erased() -> bool:
        rows = await sql(database_url, "SELECT employee_id, email, erased_at FROM distribution.employees "
                                       "WHERE tenant = $1 AND employee_id LIKE 'erased-%'", tenant)
        return bool(rows) and rows[0]["email"] is None
    await eventually(erased)
    kept = await sql(database_url, "SELECT employee_id FROM distribution.ambassadors WHERE tenant = $1 "
                                   "AND ambassador_id = $2", tenant, uuid.UUID(leaver))
    assert kept[0]["employee_id"].startswith("erased-")
    leftovers = await sql(database_url, "SELECT count(*) AS n FROM distribution.employee_history "
                                        "WHERE tenant = $1 AND employee_id = 'e-leaver'", tenant)
    assert leftovers[0]["n"] == 0
    # A replay of what HR said before does not bring the person back.
    await feed_hr(kafka_bootstrap, database_url, hired.model_copy(update={"id": str(uuid.uuid4())}))
    assert not await sql(database_url, "SELECT 1 FROM distribution.employees WHERE tenant = $1 "
                                       "AND employee_id = 'e-leaver'", tenant)

    # Erasure on request (art. 17): another tenant's admin cannot; the tenant's privacy officer can.
    elsewhere = await client.post("/v1/admin/erasures", headers=admin(new_tenant()), json={"employee_id": "e-asks"})
    assert elsewhere.status_code == 404
    done = await client.post("/v1/admin/erasures", headers=token(tenant, "privacy_officer", subject="dpo"),
                             json={"employee_id": "e-asks"})
    assert done.status_code == 200, done.text
    withdrawn = await read_topic(kafka_bootstrap, AMBASSADORS.name, of(tenant, "ambassador.withdrawn"), expect=2)
    assert sorted(json.loads(r.value)["reason"] for r in withdrawn) == ["departed", "erased"]
    assert not await sql(database_url, "SELECT 1 FROM distribution.employees WHERE tenant = $1 AND "
                                       "(employee_id = 'e-asks' OR email LIKE 'e-asks%')", tenant)
    for record in await read_topic(kafka_bootstrap, AMBASSADORS.name, lambda r: header(r, "ce_tenantid") == tenant,
                                   expect=4):
        assert "e-asks" not in record.value.decode() and "@" not in record.value.decode()
