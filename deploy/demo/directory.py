"""The tenant's set-up and its people: the org tree, the consent text, the HR feed and the SCIM
provisioning, then the volunteers who enrol as ambassadors."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deploy.demo.api import Api, each, expect, poll
from deploy.demo.console import Console
from deploy.demo.population import GROUP, SUBSIDIARIES, Person, Population, scim_user

CONSENT_VERSION = "2026-01"
NAMED_RATE = 0.25  # ambassadors who opt in to being named in leaderboards and digests
CONSENT_TEXT = ("I volunteer to receive company news to share on my own social networks. Portevoix counts the "
                "clicks, shares and reactions on what I share, under a pseudonymous id. I can stop at any time.")


@dataclass(frozen=True)
class Ambassador:
    person: Person
    ambassador_id: str
    networks: dict[str, int]
    named: bool = False  # opted in to being named in leaderboards and digests


async def declare_org_tree(api: Api) -> None:
    code, name = GROUP
    expect(await api.distribution.put(f"/v1/admin/subsidiaries/{code}", json={"name": name}, headers=api.admin),
           200, what="declare the group")
    for subsidiary in SUBSIDIARIES:
        expect(await api.distribution.put(f"/v1/admin/subsidiaries/{subsidiary.code}",
                                          json={"name": subsidiary.name, "parent": code}, headers=api.admin),
               200, what=f"declare {subsidiary.code}")


async def publish_consent_text(api: Api) -> None:
    expect(await api.distribution.put(f"/v1/admin/consent-texts/{CONSENT_VERSION}", json={"text": CONSENT_TEXT},
                                      headers=api.admin), 201, what="publish the consent text")


async def provision_by_scim(api: Api, console: Console, people: list[Person]) -> None:
    """The identity provider's run: a SCIM token issued by an admin, then one POST per user."""
    issued = expect(await api.distribution.post("/v1/admin/scim-tokens", json={"description": "Okta (ACME-ES)"},
                                                headers=api.admin), 201, what="issue a SCIM token")
    idp = {"Authorization": f"Bearer {issued['token']}", "Content-Type": "application/scim+json"}
    counter = console.counter("SCIM users created", len(people))

    async def create(person: Person) -> None:
        response = await api.distribution.post("/scim/v2/Users", json=scim_user(person), headers=idp)
        expect(response, 201, what=f"SCIM create {person.employee_id}")

    await each(people, create, limit=8, counter=counter)
    counter.finish(f"SCIM: {len(people)} users created with token {issued['token_id']} "
                   f"(→ hr.employee.upserted through the outbox)")


async def headcount(api: Api, subsidiary: str | None = None) -> dict[str, Any]:
    params = {"at": datetime.now(UTC).isoformat()} | ({"subsidiary": subsidiary} if subsidiary else {})
    return expect(await api.distribution.get("/v1/directory/headcount", params=params, headers=api.admin), 200,
                  what="read the headcount")


async def wait_for_directory(api: Api, expected: int, timeout: float) -> None:
    seen = {"headcount": 0}

    async def complete() -> bool:
        seen["headcount"] = (await headcount(api))["headcount"]
        return seen["headcount"] >= expected

    await poll(complete, what="the directory to hold every employee (hr.employees.v1 consumed by distribution)",
               timeout=timeout, describe=lambda: f"{seen['headcount']} of {expected} known")


def volunteers(population: Population, rng: random.Random) -> list[Person]:
    """About a third of the group, more in keen subsidiaries than in others."""
    return [p for p in population.people if rng.random() < p.subsidiary.enrol_rate]


def declared_networks(person: Person, rng: random.Random) -> dict[str, int]:
    """Connections per network, as the ambassador declares them (LinkedIn nearly always; Xing
    mostly in Germany)."""
    networks = {"linkedin": int(rng.lognormvariate(6.0, 0.8))} if rng.random() < 0.93 else {}
    if rng.random() < 0.4:
        networks["x"] = int(rng.lognormvariate(5.0, 1.1))
    if person.subsidiary.country == "DE" and rng.random() < 0.5:
        networks["xing"] = int(rng.lognormvariate(5.2, 0.7))
    if rng.random() < 0.15:
        networks["facebook"] = int(rng.lognormvariate(5.5, 0.6))
    return networks or {"linkedin": 150}


async def enrol(api: Api, console: Console, people: list[Person], rng: random.Random) -> list[Ambassador]:
    counter = console.counter("enrolled", len(people))
    networks = {p.employee_id: declared_networks(p, rng) for p in people}
    named = {p.employee_id for p in people if rng.random() < NAMED_RATE}

    async def one(person: Person) -> Ambassador:
        me = api.as_(person.employee_id, "employee")
        body = {"consent_text_version": CONSENT_VERSION, "channel": "web", "networks": networks[person.employee_id]}
        enrolment = expect(await api.distribution.post("/v1/me/enrolment", json=body, headers=me),
                           201, what=f"enrolment of {person.employee_id}")
        if person.employee_id in named:
            # Being named is a preference, off unless the ambassador turns it on himself.
            expect(await api.distribution.put("/v1/me/preferences", json={"named_in_leaderboards": True},
                                              headers=me), 200, what=f"opt-in to being named of {person.employee_id}")
        return Ambassador(person, enrolment["ambassador_id"], networks[person.employee_id],
                          named=person.employee_id in named)

    ambassadors = await each(people, one, counter=counter)
    reach = sum(sum(a.networks.values()) for a in ambassadors)
    counter.finish(f"{len(ambassadors)} ambassadors enrolled with consent {CONSENT_VERSION}, "
                   f"{sum(a.named for a in ambassadors)} of them named in leaderboards; "
                   f"declared audience {reach:,} connections")
    return ambassadors
