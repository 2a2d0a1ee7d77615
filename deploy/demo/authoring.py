"""The comms side: the brand charter, a group post that breaks it and is fixed before a second
person approves and publishes it, and a German post of one subsidiary, published by its own
approver in one step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deploy.demo.api import Api, DemoError, expect
from deploy.demo.console import Console

CHARTER = {
    "forbidden_terms": ["Globex"],  # the competitor is never named
    "required_spellings": ["ACME"],  # never "Acme" or "acme"
    "mandatory_disclosure": "#employee",  # every share text says who is posting
    "max_length": {"x": 280},
}
URL = "https://news.acme.example/2026/lyon-carbon-neutral-plant?ref=newsroom"


def share(network: str, language: str, text: str, variant: int = 0) -> dict[str, Any]:
    return {"network": network, "language": language, "text": text, "variant": variant}


DRAFT = {
    "title": "Acme opens its first carbon-neutral plant",
    "summary": "Our Lyon plant now runs on 100% renewable energy, well ahead of Globex.",
    "url": URL, "language": "en", "tags": ["sustainability", "industry"], "campaign": "green-2026",
    "share_texts": [
        share("linkedin", "en", "Proud of our teams: the Lyon plant is carbon-neutral, years before Globex! #employee"),
        share("x", "en", "Our Lyon plant now runs on 100% renewables."),
    ],
}
FIXED = {
    "title": "ACME opens its first carbon-neutral plant",
    "summary": "Our Lyon plant now runs on 100% renewable energy.",
    "share_texts": [
        share("linkedin", "en", "Proud of our teams: our Lyon plant is now carbon-neutral. Here is how they did it. "
                                "#employee"),
        share("linkedin", "en", "Renewables only, from today: the ACME Lyon plant is carbon-neutral. #employee", 1),
        share("x", "en", "Our Lyon plant now runs on 100% renewables #employee"),
        share("linkedin", "fr", "Fiers de nos équipes : notre usine de Lyon est désormais neutre en carbone. "
                                "#employee"),
        share("x", "fr", "Notre usine de Lyon tourne à 100 % aux énergies renouvelables #employee"),
        share("linkedin", "de", "Stolz auf unsere Teams: Unser Werk in Lyon ist jetzt klimaneutral. #employee"),
        share("x", "de", "Unser Werk in Lyon läuft zu 100 % mit erneuerbarer Energie #employee"),
        share("linkedin", "es", "Orgullosos de nuestros equipos: nuestra planta de Lyon ya es neutra en carbono. "
                                "#employee"),
    ],
}
GERMAN_POST = {
    "title": "ACME Deutschland eröffnet ein Ausbildungszentrum in Köln",
    "summary": "120 Ausbildungsplätze in Mechatronik und IT ab September.",
    "url": "https://news.acme.example/de/2026/ausbildungszentrum-koeln", "language": "de",
    "tags": ["careers"], "campaign": "ausbildung-2026", "owner_subsidiary": "ACME-DE",
    "audience": {"subsidiaries": ["ACME-DE"]},
    "share_texts": [
        share("linkedin", "de", "Unser neues Ausbildungszentrum in Köln: 120 Plätze ab September! #employee"),
        share("xing", "de", "ACME Deutschland bildet aus: 120 neue Ausbildungsplätze in Köln. #employee"),
    ],
}


@dataclass(frozen=True)
class Published:
    content_id: str
    title: str
    audience: str


def _violations(check: dict[str, Any]) -> list[str]:
    return [f"{v['field']} @{v['position']}: {v['rule']} — {v['message']}" for v in check["violations"]]


async def set_charter(api: Api, console: Console) -> None:
    expect(await api.content.put("/v1/admin/charter", json=CHARTER, headers=api.admin), 200, what="set the charter")
    console.info("brand charter: forbidden 'Globex', spelling 'ACME', disclosure '#employee', X ≤ 280 characters")


async def group_post(api: Api, console: Console) -> Published:
    """Written against the charter, refused, fixed, approved by someone else, published."""
    editor = api.as_("claire.martin", "editor")
    approver = api.as_("omar.haddad", "approver")
    item = expect(await api.content.post("/v1/contents", json=DRAFT, headers=editor), 201, what="create the draft")
    path = f"/v1/contents/{item['id']}"
    check = expect(await api.content.get(f"{path}/check", headers=editor), 200, what="check the draft")
    console.info(f"editor claire.martin writes a draft; the charter check finds {len(check['violations'])} "
                 f"violations:")
    for line in _violations(check):
        console.info(f"  ✘ {line}")
    expect(await api.content.post(f"{path}/submit", headers=editor), 200, what="submit")
    refused = await api.content.post(f"{path}/approve", headers=approver)
    if refused.status_code != 422:
        raise DemoError(f"approving a post that breaks the charter answered {refused.status_code}, not 422")
    console.info("approver omar.haddad cannot approve it: 422, the same violations")
    expect(await api.content.patch(path, json=FIXED, headers=editor), 200, what="fix the draft")
    check = expect(await api.content.get(f"{path}/check", headers=editor), 200, what="check the fix")
    if check["violations"]:
        raise DemoError(f"the fixed post still breaks the charter: {_violations(check)}")
    cautions = f", {len(check['warnings'])} near-duplicate warnings" if check["warnings"] else ""
    console.info(f"claire.martin fixes it (revision 2: 8 share texts, 4 languages): 0 violations{cautions}")
    self_approval = await api.content.post(f"{path}/approve", headers=api.as_("claire.martin", "editor", "approver"))
    console.info(f"four eyes: claire.martin approving her own text answers {self_approval.status_code}")
    expect(await api.content.post(f"{path}/approve", headers=approver), 200, what="approve")
    published = expect(await api.content.post(f"{path}/publish", headers=approver), 200, what="publish")
    console.info(f"omar.haddad approves and publishes: content {published['id']} ({published['state']})")
    return Published(published["id"], published["title"], "whole group")


async def subsidiary_post(api: Api, console: Console) -> Published:
    """A subsidiary's own post, in its language, for its own people only."""
    editor = api.as_("jonas.weber", "editor", subsidiary="ACME-DE")
    approver = api.as_("mia.schneider", "approver", subsidiary="ACME-DE")
    item = expect(await api.content.post("/v1/contents", json=GERMAN_POST, headers=editor), 201,
                  what="create the German post")
    published = expect(await api.content.post(f"/v1/contents/{item['id']}/publish", headers=approver), 200,
                       what="publish the German post")
    console.info(f"ACME-DE: jonas.weber writes in German for ACME-DE only; mia.schneider reviews, approves and "
                 f"publishes in one step: content {published['id']}")
    return Published(published["id"], published["title"], "ACME-DE")
