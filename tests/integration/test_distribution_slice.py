"""Distribution against the real broker and database: the HR directory (both CloudEvents modes,
newest version wins), enrolment and its refusals, and the fan-out of content.published into
notification.sent events, once per ambassador and content."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import ConsumerRecord

from services.distribution.main import DistributionSettings, create_app
from shared.envelope import STRUCTURED, CloudEvent, new_event, record_key, to_structured
from shared.events import (
    Audience,
    ContentPublished,
    ContentRetired,
    EmployeeDeparted,
    EmployeeUpserted,
    Network,
    ShareText,
)
from shared.topics import AMBASSADORS, CONTENT_LIFECYCLE, HR_EMPLOYEES, NOTIFICATIONS
from tests.support import eventually, header, new_tenant, produce, read_topic, running, settings_for, token
from tests.support import kafka_record as binary

pytestmark = pytest.mark.integration

TRACKING = "https://go.example.com"
Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


@pytest.fixture(scope="module")
async def client(kafka_bootstrap: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(DistributionSettings, kafka_bootstrap, database_url, tracking_base_url=TRACKING)
    async with running(create_app(settings)) as client:
        yield client


# --- building and sending events as outside systems do ------------------------------------------

def structured(event: CloudEvent[Any]) -> Record:
    return record_key(event.tenantid, event.subject), to_structured(event), [("content-type", STRUCTURED.encode())]


def upserted(tenant: str, employee_id: str, version: int, subsidiary: str = "FR01", **fields: Any) -> CloudEvent[Any]:
    data = EmployeeUpserted(
        employee_id=employee_id, email=f"{employee_id}@example.com", given_name="Ada", family_name="Lovelace",
        subsidiary=subsidiary, department=fields.get("department", "Sales"), site="Lyon", country="FR",
        language="fr-FR", effective_at=datetime.now(UTC), version=version)
    return new_event("hr.employee.upserted", source="hr/workday", subject=employee_id, tenant=tenant, data=data)


def departed(tenant: str, employee_id: str, version: int) -> CloudEvent[Any]:
    data = EmployeeDeparted(employee_id=employee_id, effective_at=datetime.now(UTC), version=version)
    return new_event("hr.employee.departed", source="hr/workday", subject=employee_id, tenant=tenant, data=data)


def published(tenant: str, content_id: str, audience: Audience, share_texts: list[ShareText]) -> CloudEvent[Any]:
    data = ContentPublished(
        content_id=content_id, revision=1, title="We are hiring in Lyon", url="https://www.example.com/jobs?team=lyon",
        language="fr", campaign="spring-hiring", audience=audience, share_texts=share_texts,
        published_at=datetime.now(UTC))
    return new_event("content.published", source="portevoix/content", subject=content_id, tenant=tenant, data=data)


async def processed(database_url: str, *events: CloudEvent[Any]) -> None:
    """Wait until distribution has processed these events (their ids are in its inbox)."""
    ids = [e.id for e in events]

    async def done() -> bool:
        conn = await asyncpg.connect(database_url)
        try:
            count = await conn.fetchval(
                "SELECT count(*) FROM distribution.inbox WHERE consumer = 'distribution' AND event_id = ANY($1)", ids)
        finally:
            await conn.close()
        return count == len(ids)

    await eventually(done, timeout=60)


async def employee_row(database_url: str, tenant: str, employee_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(
            "SELECT subsidiary, departed, version FROM distribution.employees WHERE tenant = $1 AND employee_id = $2",
            tenant, employee_id)
    finally:
        await conn.close()


def of(tenant: str, event_type: str) -> Any:
    return lambda r: header(r, "ce_tenantid") == tenant and header(r, "ce_type") == event_type


def data(record: ConsumerRecord) -> dict[str, Any]:
    return json.loads(record.value)


async def enrol(client: httpx.AsyncClient, tenant: str, employee_id: str) -> httpx.Response:
    return await client.post("/v1/me/enrolment", headers=token(tenant, "employee", subject=employee_id),
                             json={"consent_text_version": "2026-01", "networks": {"linkedin": 500, "x": 80}})


# --- the HR directory --------------------------------------------------------------------------

async def test_hr_events_in_both_modes_converge_to_the_newest_version(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    events = [
        # newer first, older second: the older one must not overwrite
        (binary, upserted(tenant, "e-late", 2, subsidiary="NEW")),
        (structured, upserted(tenant, "e-late", 1, subsidiary="OLD")),
        # a departure before any record, then an older record: stays departed
        (binary, departed(tenant, "e-gone", 5)),
        (structured, upserted(tenant, "e-gone", 3)),
        # hired, left, rehired: the rehire is newest
        (structured, upserted(tenant, "e-back", 1, subsidiary="DE02")),
        (binary, departed(tenant, "e-back", 2)),
        (binary, upserted(tenant, "e-back", 3, subsidiary="DE02")),
    ]
    await produce(kafka_bootstrap, HR_EMPLOYEES.name, [encode(event) for encode, event in events])
    await processed(database_url, *(event for _, event in events))

    late = await employee_row(database_url, tenant, "e-late")
    assert (late["subsidiary"], late["departed"], late["version"]) == ("NEW", False, 2)
    gone = await employee_row(database_url, tenant, "e-gone")
    assert (gone["departed"], gone["version"]) == (True, 5)
    back = await employee_row(database_url, tenant, "e-back")
    assert (back["subsidiary"], back["departed"], back["version"]) == ("DE02", False, 3)

    refused = await enrol(client, tenant, "e-gone")
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"]["reason"] == "employee_departed"
    assert (await enrol(client, tenant, "e-back")).status_code == 201


# --- enrolment ---------------------------------------------------------------------------------

async def test_enrolment_is_for_known_current_employees_of_the_tokens_tenant(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant, other_tenant = new_tenant(), new_tenant()
    hired = upserted(tenant, "e-1", 1)
    await produce(kafka_bootstrap, HR_EMPLOYEES.name, [binary(hired)])
    await processed(database_url, hired)

    unknown = await enrol(client, tenant, "nobody")
    assert unknown.status_code == 404 and unknown.json()["detail"]["reason"] == "unknown_employee"
    elsewhere = await enrol(client, other_tenant, "e-1")  # same HR id, another enterprise
    assert elsewhere.status_code == 404 and elsewhere.json()["detail"]["reason"] == "unknown_employee"
    assert (await client.post("/v1/me/enrolment", json={"consent_text_version": "1"})).status_code == 401
    wrong_role = await client.post("/v1/me/enrolment", headers=token(tenant, "editor", subject="e-1"),
                                   json={"consent_text_version": "1"})
    assert wrong_role.status_code == 403
    bad_network = await client.post("/v1/me/enrolment", headers=token(tenant, "employee", subject="e-1"),
                                    json={"consent_text_version": "1", "networks": {"myspace": 3}})
    assert bad_network.status_code == 422

    first = await enrol(client, tenant, "e-1")
    assert first.status_code == 201, first.text
    again = await enrol(client, tenant, "e-1")
    assert again.status_code == 200
    ambassador_id = first.json()["ambassador_id"]
    assert again.json()["ambassador_id"] == ambassador_id
    assert first.json()["networks"] == {"linkedin": 500, "x": 80}

    [enrolled] = await read_topic(kafka_bootstrap, AMBASSADORS.name, of(tenant, "ambassador.enrolled"),
                                  settle=1.0)
    profile = data(enrolled)
    assert profile["ambassador_id"] == ambassador_id
    assert (profile["subsidiary"], profile["country"], profile["language"]) == ("FR01", "FR", "fr-FR")
    assert not {"email", "given_name", "family_name", "employee_id"} & profile.keys()
    # (quoted: a random ambassador id may well contain the characters e-1)
    assert '"e-1"' not in enrolled.value.decode() and "example.com" not in enrolled.value.decode()
    assert enrolled.key == f"{tenant}/{ambassador_id}".encode()


async def test_opt_out_and_departure_withdraw_the_ambassador(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    hires = [upserted(tenant, "e-quits", 1), upserted(tenant, "e-leaves", 1)]
    await produce(kafka_bootstrap, HR_EMPLOYEES.name, [binary(e) for e in hires])
    await processed(database_url, *hires)
    quits = (await enrol(client, tenant, "e-quits")).json()["ambassador_id"]
    leaves = (await enrol(client, tenant, "e-leaves")).json()["ambassador_id"]

    assert (await client.delete("/v1/me/enrolment", headers=token(tenant, "employee", subject="e-quits"))
            ).status_code == 204
    assert (await client.delete("/v1/me/enrolment", headers=token(tenant, "employee", subject="e-quits"))
            ).status_code == 404
    await produce(kafka_bootstrap, HR_EMPLOYEES.name, [binary(departed(tenant, "e-leaves", 2))])

    withdrawn = await read_topic(kafka_bootstrap, AMBASSADORS.name, of(tenant, "ambassador.withdrawn"),
                                 expect=2, settle=1.0)
    assert sorted((data(r)["ambassador_id"], data(r)["reason"]) for r in withdrawn) == sorted(
        [(quits, "opted_out"), (leaves, "departed")])
    feed = await client.get("/v1/me/feed", headers=token(tenant, "employee", subject="e-leaves"))
    assert feed.status_code == 404


# --- notifications -----------------------------------------------------------------------------

async def test_content_published_notifies_the_audience_once(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    hires = [upserted(tenant, "e-fr", 1, subsidiary="FR01"), upserted(tenant, "e-de", 1, subsidiary="DE02"),
             upserted(tenant, "e-fr-not-enrolled", 1, subsidiary="FR01")]
    await produce(kafka_bootstrap, HR_EMPLOYEES.name, [binary(e) for e in hires])
    await processed(database_url, *hires)
    fr = (await enrol(client, tenant, "e-fr")).json()["ambassador_id"]
    assert (await enrol(client, tenant, "e-de")).status_code == 201

    content_id = str(uuid.uuid4())
    texts = [ShareText(network=Network.x, language="fr", text="On recrute à Lyon ! #jobs"),
             ShareText(network=Network.linkedin, language="fr", text="Rejoignez-nous")]
    event = published(tenant, content_id, Audience(subsidiaries=["FR01"]), texts)
    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [binary(event)])

    [sent] = await read_topic(kafka_bootstrap, NOTIFICATIONS.name, of(tenant, "notification.sent"), settle=2.0)
    notification = data(sent)
    assert (notification["content_id"], notification["ambassador_id"]) == (content_id, fr)
    assert (notification["channel"], notification["subsidiary"], notification["department"],
            notification["campaign"]) == ("in_app", "FR01", "Sales", "spring-hiring")
    assert [link["network"] for link in notification["links"]] == ["linkedin", "x"]
    assert {link["destination_url"] for link in notification["links"]} == {"https://www.example.com/jobs?team=lyon"}
    codes = [link["code"] for link in notification["links"]]
    assert len(set(codes)) == 2 and all(len(code) == 16 for code in codes)

    # Redelivered as is (same id: the inbox), then republished under a new id (the constraint).
    republished = event.model_copy(update={"id": str(uuid.uuid4())})
    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [binary(event), structured(republished)])
    await processed(database_url, republished)
    again = await read_topic(kafka_bootstrap, NOTIFICATIONS.name, of(tenant, "notification.sent"), settle=2.0)
    assert len(again) == 1

    feed = await client.get("/v1/me/feed", headers=token(tenant, "employee", subject="e-fr"))
    assert feed.status_code == 200, feed.text
    [item] = feed.json()["items"]
    assert (item["content_id"], item["title"], item["url"]) == (
        content_id, "We are hiring in Lyon", "https://www.example.com/jobs?team=lyon")
    links = {link["network"]: link for link in item["links"]}
    assert links["linkedin"]["tracked_url"] == f"{TRACKING}/r/{codes[0]}"
    assert links["linkedin"]["share_url"] == (
        f"https://www.linkedin.com/sharing/share-offsite/?url=https%3A%2F%2Fgo.example.com%2Fr%2F{codes[0]}")
    assert links["x"]["share_url"] == (
        "https://twitter.com/intent/tweet?text=On%20recrute%20%C3%A0%20Lyon%20%21%20%23jobs"
        f"&url=https%3A%2F%2Fgo.example.com%2Fr%2F{codes[1]}")
    empty = await client.get("/v1/me/feed", headers=token(tenant, "employee", subject="e-de"))
    assert empty.json() == {"items": []}

    retired = new_event("content.retired", source="portevoix/content", subject=content_id, tenant=tenant,
                        data=ContentRetired(content_id=content_id, reason="withdrawn", retired_at=datetime.now(UTC)))
    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name, [binary(retired)])
    await processed(database_url, retired)
    after = await client.get("/v1/me/feed", headers=token(tenant, "employee", subject="e-fr"))
    assert after.json() == {"items": []}


async def test_without_share_texts_everyone_gets_a_linkedin_link(
        client: httpx.AsyncClient, kafka_bootstrap: str, database_url: str) -> None:
    tenant = new_tenant()
    hires = [upserted(tenant, f"e-{n}", 1, subsidiary=sub) for n, sub in enumerate(["FR01", "DE02", "US03"])]
    await produce(kafka_bootstrap, HR_EMPLOYEES.name, [binary(e) for e in hires])
    await processed(database_url, *hires)
    ambassadors = {(await enrol(client, tenant, f"e-{n}")).json()["ambassador_id"] for n in range(3)}

    await produce(kafka_bootstrap, CONTENT_LIFECYCLE.name,
                  [binary(published(tenant, str(uuid.uuid4()), Audience(), []))])
    sent = await read_topic(kafka_bootstrap, NOTIFICATIONS.name, of(tenant, "notification.sent"),
                            expect=3, settle=1.0)
    assert {data(r)["ambassador_id"] for r in sent} == ambassadors
    assert all([link["network"] for link in data(r)["links"]] == ["linkedin"] for r in sent)
