"""The demo's group: its org tree, its people, and the two ways they reach the directory.

Most employees come from the HR system as ``hr.employee.upserted`` events produced with a plain
Kafka client (half in binary, half in structured CloudEvents mode, as different connectors
send them); the subsidiary that runs its own identity provider is provisioned through SCIM 2.0.
Everything is drawn from a seeded random generator: the same size gives the same group.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from shared import topics
from shared.envelope import new_event, record_key, to_binary, to_structured
from shared.events import EmployeeUpserted

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass(frozen=True)
class Subsidiary:
    code: str
    name: str
    country: str
    language: str
    share: float  # of the group's headcount
    sites: tuple[str, ...]
    given: tuple[str, ...]
    family: tuple[str, ...]
    enrol_rate: float  # how keen its people are to become ambassadors
    via_scim: bool = False  # provisioned by its own identity provider instead of the HR feed


GROUP = ("ACME", "ACME Group")
SUBSIDIARIES = (
    Subsidiary("ACME-FR", "ACME France", "FR", "fr-FR", 0.34, ("Lyon", "Paris", "Lille"),
               ("Léa", "Hugo", "Chloé", "Louis", "Inès", "Jules", "Camille", "Arthur"),
               ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Lefèvre"), 0.40),
    Subsidiary("ACME-DE", "ACME Deutschland", "DE", "de-DE", 0.26, ("Köln", "München", "Hamburg"),
               ("Lukas", "Mia", "Jonas", "Emma", "Felix", "Hannah", "Leon", "Sophie"),
               ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"), 0.30),
    Subsidiary("ACME-UK", "ACME United Kingdom", "GB", "en-GB", 0.20, ("Manchester", "London"),
               ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Grace"),
               ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Davies"), 0.33),
    Subsidiary("ACME-ES", "ACME España", "ES", "es-ES", 0.12, ("Madrid", "Valencia"),
               ("Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Pablo", "Valeria", "Álvaro"),
               ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez"), 0.28,
               via_scim=True),
    Subsidiary("ACME-US", "ACME Inc.", "US", "en-US", 0.08, ("Austin", "Boston"),
               ("Liam", "Olivia", "Noah", "Emma", "James", "Charlotte", "Ethan", "Harper"),
               ("Johnson", "Miller", "Davis", "Garcia", "Moore", "Clark", "Lewis", "Walker"), 0.25),
)
DEPARTMENTS = ("Sales", "Marketing", "R&D", "Operations", "HR", "Finance")


@dataclass(frozen=True)
class Person:
    employee_id: str
    given_name: str
    family_name: str
    email: str
    subsidiary: Subsidiary
    department: str
    site: str

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass
class Population:
    people: list[Person]
    by_id: dict[str, Person] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {p.employee_id: p for p in self.people}

    @property
    def from_hr_feed(self) -> list[Person]:
        return [p for p in self.people if not p.subsidiary.via_scim]

    @property
    def from_scim(self) -> list[Person]:
        return [p for p in self.people if p.subsidiary.via_scim]

    def in_subsidiary(self, code: str) -> list[Person]:
        return [p for p in self.people if p.subsidiary.code == code]


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if c.isascii() and c.isalnum()).lower()


def headcounts(size: int) -> dict[str, int]:
    """People per subsidiary, summing to ``size`` exactly (the largest takes the rounding)."""
    counts = {s.code: max(1, round(size * s.share)) for s in SUBSIDIARIES}
    counts[SUBSIDIARIES[0].code] += size - sum(counts.values())
    return counts


def draw(size: int, seed: int = 7) -> Population:
    rng = random.Random(seed)
    people: list[Person] = []
    for subsidiary in SUBSIDIARIES:
        for n in range(headcounts(size)[subsidiary.code]):
            given, family = rng.choice(subsidiary.given), rng.choice(subsidiary.family)
            employee_id = f"{subsidiary.country}{10000 + n}"
            domain = f"{subsidiary.code.lower()}.example"
            people.append(Person(employee_id, given, family, f"{_ascii(given)}.{_ascii(family)}.{n}@{domain}",
                                 subsidiary, rng.choice(DEPARTMENTS), rng.choice(subsidiary.sites)))
    return Population(people)


# --- the HR feed (plain Kafka client) -----------------------------------------------------------

def hr_records(tenant: str, people: list[Person]) -> Iterator[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """(key, value, headers) per person: even ones in binary mode, odd ones in structured mode."""
    now = datetime.now(UTC)
    for n, person in enumerate(people):
        data = EmployeeUpserted(
            employee_id=person.employee_id, email=person.email, given_name=person.given_name,
            family_name=person.family_name, subsidiary=person.subsidiary.code, department=person.department,
            site=person.site, country=person.subsidiary.country, language=person.subsidiary.language,
            effective_at=now, version=1)
        event = new_event("hr.employee.upserted", source="hr/workday", subject=person.employee_id, tenant=tenant,
                          data=data)
        key = record_key(tenant, person.employee_id)
        if n % 2:
            yield key, to_structured(event), [("content-type", b"application/cloudevents+json")]
        else:
            record = to_binary(event)
            yield key, record.value, [(name, value.encode()) for name, value in record.headers.items()]


async def send_hr_feed(bootstrap: str, tenant: str, people: list[Person]) -> None:
    """What an HR connector does: idempotent producer, acks=all, sends pipelined then flushed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        for key, value, headers in hr_records(tenant, people):
            await producer.send(topics.HR_EMPLOYEES.name, value=value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


# --- the identity provider (SCIM 2.0) -----------------------------------------------------------

def scim_user(person: Person) -> dict[str, object]:
    """A user as Okta or Entra ID would push it: enterprise extension for the org unit."""
    return {
        "schemas": [SCIM_USER, SCIM_ENTERPRISE],
        "userName": person.email, "externalId": person.employee_id, "active": True,
        "name": {"givenName": person.given_name, "familyName": person.family_name},
        "displayName": person.name,
        "emails": [{"value": person.email, "type": "work", "primary": True}],
        "addresses": [{"type": "work", "locality": person.site, "country": person.subsidiary.country,
                       "primary": True}],
        "preferredLanguage": person.subsidiary.language,
        SCIM_ENTERPRISE: {"employeeNumber": person.employee_id, "organization": person.subsidiary.code,
                          "department": person.department},
    }
