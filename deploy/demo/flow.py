"""The demo's story, step by step, against four running services (whatever runs them: the
demo's processes, or a test's in-process apps). ``run`` returns what the report prints."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from deploy.demo import authoring, directory, engagement, results
from deploy.demo.api import Api
from deploy.demo.authoring import Published
from deploy.demo.console import Console
from deploy.demo.directory import Ambassador
from deploy.demo.engagement import Tally
from deploy.demo.population import SUBSIDIARIES, Population, draw, headcounts, send_hr_feed
from deploy.demo.results import Results


@dataclass
class Outcome:
    tenant: str
    population: Population
    ambassadors: list[Ambassador]
    contents: list[Published]
    tally: Tally
    results: Results


def new_tenant() -> str:
    """A tenant per run: the stack keeps earlier runs' data, the report is about this one."""
    return f"acme-{datetime.now(UTC):%Y%m%d-%H%M%S}"


async def run(api: Api, console: Console, employees: int, *, seed: int = 42, timeout: float = 120) -> Outcome:
    rng = random.Random(seed)
    population = draw(employees)
    tally = Tally()

    with console.step(f"Tenant {api.tenant}: org tree, consent text, brand charter, media rates, connector"):
        await directory.declare_org_tree(api)
        sizes = headcounts(employees)
        console.info("org tree: ACME Group → " + ", ".join(
            f"{s.code} ({s.language}, {sizes[s.code]})" for s in SUBSIDIARIES))
        await directory.publish_consent_text(api)
        console.info(f"consent text {directory.CONSENT_VERSION} published")
        await authoring.set_charter(api, console)
        await results.set_media_rates(api)
        source, secret = await engagement.register_connector(api)
        console.info(f"media rates in EUR; webhook source {source!r} with its signing secret")

    with console.step("Employees arrive: the HR system on hr.employees.v1, ACME-ES's identity provider by SCIM"):
        hr = population.from_hr_feed
        await send_hr_feed(api.kafka_bootstrap, api.tenant, hr)
        console.info(f"HR feed: {len(hr)} hr.employee.upserted records with a plain Kafka producer "
                     f"({(len(hr) + 1) // 2} binary mode, {len(hr) // 2} structured mode)")
        await directory.provision_by_scim(api, console, population.from_scim)
        await directory.wait_for_directory(api, len(population.people), timeout)
        console.info(f"directory headcount: {len(population.people)}")

    with console.step("About a third volunteer as ambassadors (consent, networks and audience sizes)"):
        ambassadors = await directory.enrol(api, console, directory.volunteers(population, rng), rng)
        tally.sent["enrolled_ambassadors"] = len(ambassadors)

    with console.step("Comms writes, the charter checks, a second person approves, it is published"):
        group = await authoring.group_post(api, console)
        german = await authoring.subsidiary_post(api, console)
        tally.sent["contents_published"] = 2

    with console.step("Distribution notifies the ambassadors in each audience (in-app feed, tracked links)"):
        audiences = {group.content_id: {a.person.employee_id for a in ambassadors},
                     german.content_id: {a.person.employee_id for a in ambassadors
                                         if a.person.subsidiary.code == "ACME-DE"}}
        for content in (group, german):
            notified = len(audiences[content.content_id])
            await results.wait_for_scope(api, "content", content.content_id, {"notifications_sent": notified},
                                         f"the notifications of {content.content_id} to be counted", timeout)
            console.info(f"{content.title[:48]!r} → {notified} ambassadors notified ({content.audience})")
        tally.sent["notifications_sent"] = sum(len(a) for a in audiences.values())
        expected = {a.person.employee_id: {c for c, audience in audiences.items() if a.person.employee_id in audience}
                    for a in ambassadors}
        feeds = await engagement.read_feeds(api, console, ambassadors, expected)
        for line in engagement.sample_texts(ambassadors, feeds, group.content_id):
            console.info(f"  {line}")

    with console.step("Ambassadors share; colleagues and link-preview bots click the tracked links"):
        posts = engagement.plan_posts(ambassadors, feeds, rng)
        await engagement.confirm_shares(api, console, posts, tally)
        await engagement.click(api, console, engagement.plan_visits(posts, rng), tally)

    with console.step("The networks' connector reports engagement through signed webhooks"):
        await engagement.send_webhooks(api, console, source, secret, engagement.engagement_events(posts, rng), tally)
        event_id = await engagement.deliver_a_click_twice(api, tally, timeout)
        console.info(f"click event {event_id} delivered a second time on tracking.engagements.v1: "
                     "reporting dropped the copy")

    with console.step("Reporting counts it all (waiting on the KPI API)"):
        found = await results.wait_for_counts(api, console, dict(tally.sent), timeout)
        await results.gather(api, found)
        exact = sum(c.exact for c in found.checks)
        console.info(f"{exact}/{len(found.checks)} KPIs equal to what was sent")
    return Outcome(api.tenant, population, ambassadors, [group, german], tally, found)
