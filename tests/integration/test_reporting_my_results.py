"""An ambassador's own results from reporting, against the real Kafka and PostgreSQL, with an
OIDC-only configuration (RS256 tokens checked against a JWKS, no HS256 secret anywhere): the
caller's ambassador found by the holder digest ambassadors.v1 carries, leaderboards and the
digest naming only those who chose to be named, by the name they published."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.reporting.main import create_app
from services.web.main import WebSettings
from services.web.main import create_app as web_app
from shared import topics
from shared.auth import holder_digest, issue_token
from shared.events import AmbassadorEnrolled, AmbassadorUpdated, AmbassadorWithdrawn, EngagementKind
from tests.browser.conftest import _serving
from tests.integration.test_reporting_edges import engaged, event, published, send, settings
from tests.integration.test_web_front import _closed_port
from tests.support import IDENTITY_KEY, JWT_SECRET, eventually, new_tenant, running, settings_for
from tests.unit.test_auth import ISSUER, jwks_issuer, rs256  # noqa: F401 (jwks_issuer: a fixture)

pytestmark = pytest.mark.integration


def profile(tenant: str, type_: str, ambassador_id: str, subject: str, name: str | None, when: datetime,
            subsidiary: str = "fr") -> Any:
    model = AmbassadorEnrolled if type_ == "ambassador.enrolled" else AmbassadorUpdated
    return event(tenant, type_, ambassador_id, model(
        ambassador_id=ambassador_id, subsidiary=subsidiary, department="mkt", country="FR", language="fr",
        named_in_leaderboards=name is not None, display_name=name,
        holder=holder_digest(IDENTITY_KEY, tenant, subject), effective_at=when))


def bearer(key: Any, tenant: str, subject: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {rs256(key, sub=subject, tenant=tenant, roles=list(roles))}"}


async def contents_published(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    answer = await client.get("/v1/kpis", headers=headers)
    return answer.status_code == 200 and answer.json()["kpis"].get("contents_published") == 1


async def results(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/v1/me/results", headers=headers)


async def test_my_results_with_oidc_tokens_only_and_leaderboards_by_published_name(
        kafka_bootstrap: str, database_url: str, jwks_issuer: tuple[Any, str]) -> None:  # noqa: F811
    key, jwks_url = jwks_issuer
    tenant = new_tenant()
    now = datetime.now(UTC)
    oidc_only = settings(kafka_bootstrap, database_url, jwt_hs256_secret=None, jwt_jwks_url=jwks_url,
                         jwt_issuer=ISSUER)
    ada, bob, eve = (bearer(key, tenant, s, "employee") for s in ("e-ada", "e-bob", "e-eve"))
    analyst = bearer(key, tenant, "e-staff", "analyst")
    async with running(create_app(oidc_only)) as client:
        await send(kafka_bootstrap, topics.AMBASSADORS, [
            profile(tenant, "ambassador.enrolled", "amb-ada", "e-ada", "Ada L.", now - timedelta(days=3)),
            profile(tenant, "ambassador.enrolled", "amb-bob", "e-bob", None, now - timedelta(days=3)),
            profile(tenant, "ambassador.enrolled", "amb-cy", "e-cy", "Cy", now - timedelta(days=3))])
        await send(kafka_bootstrap, topics.CONTENT_LIFECYCLE, [published(tenant, "post", now - timedelta(hours=2))])
        await eventually(lambda: contents_published(client, analyst))
        await send(kafka_bootstrap, topics.ENGAGEMENTS, [
            engaged(tenant, "post", EngagementKind.share, now, count=2, ambassador_id="amb-ada"),
            engaged(tenant, "post", EngagementKind.click, now, count=5, ambassador_id="amb-ada"),
            engaged(tenant, "post", EngagementKind.share, now, count=3, ambassador_id="amb-bob"),
            engaged(tenant, "post", EngagementKind.share, now, count=1, ambassador_id="amb-cy")])

        async def counted() -> dict[str, Any] | None:
            answer = await results(client, ada)
            body = answer.json() if answer.status_code == 200 else {}
            return body if body.get("kpis", {}).get("clicks_total") == 5 and len(body["leaderboard"]) == 2 else None
        mine = await eventually(counted)
        assert (mine["ambassador_id"], mine["display_name"], mine["kpis"]["shares"]) == ("amb-ada", "Ada L.", 2)
        assert (mine["rank"], mine["rank_value"]) == (2, 2)  # Bob shared 3: first, but not named
        assert [(e["rank"], e["id"], e["name"], e["me"]) for e in mine["leaderboard"]] == [
            (1, None, "Ada L.", True), (2, None, "Cy", False)]
        theirs = (await results(client, bob)).json()
        assert (theirs["ambassador_id"], theirs["kpis"]["shares"], theirs["rank"]) == ("amb-bob", 3, 1)
        assert not any(e["me"] for e in theirs["leaderboard"])  # Bob sees his own results, never Ada's as his
        for body in (mine, theirs):
            assert "amb-bob" not in json.dumps(body["leaderboard"]) and "e-bob" not in json.dumps(body)
        missing = await results(client, eve)
        assert missing.status_code == 404 and missing.json()["detail"]["reason"] == "not_enrolled"
        hs256 = issue_token(JWT_SECRET, subject="e-ada", tenant=tenant, roles=["employee"])
        assert (await results(client, {"Authorization": f"Bearer {hs256}"})).status_code == 401
        other_tenant = await results(client, bearer(key, new_tenant(), "e-ada", "employee"))
        assert other_tenant.status_code == 404  # the same subject elsewhere is another person

        # Staff views: the leaderboard and the digest name Ada and Cy, never Bob, by id or otherwise.
        board = (await client.get("/v1/kpis/leaderboards/ambassadors", headers=analyst)).json()
        assert [(e["id"], e["label"]) for e in board["entries"]] == [(None, "Ada L."), (None, "Cy")]
        month = f"{now:%Y-%m}"
        page = (await client.get("/v1/kpis/digest", params={"month": month, "format": "html"}, headers=analyst)).text
        people = page.split("Best ambassadors")[1]
        assert "#1 Ada L. — 2 shares" in people and "#2 Cy — 1 shares" in people
        assert "amb-" not in people and "bob" not in people.lower()

        # A name withdrawn is forgotten at once; a withdrawn ambassador has no results any more.
        await send(kafka_bootstrap, topics.AMBASSADORS, [
            profile(tenant, "ambassador.updated", "amb-cy", "e-cy", None, now - timedelta(days=1)),
            event(tenant, "ambassador.withdrawn", "amb-ada", AmbassadorWithdrawn(
                ambassador_id="amb-ada", reason="opt-out", effective_at=now - timedelta(hours=1)))])

        async def forgotten() -> dict[str, Any] | None:
            body = (await client.get("/v1/kpis/leaderboards/ambassadors", headers=analyst)).json()
            return body if body["entries"] == [] else None
        await eventually(forgotten)
        assert (await results(client, ada)).status_code == 404
        assert (await results(client, bearer(key, tenant, "e-cy", "employee"))).json()["display_name"] is None


async def test_the_hub_route_forwards_the_callers_own_oidc_token_to_reporting(
        kafka_bootstrap: str, database_url: str, jwks_issuer: tuple[Any, str]) -> None:  # noqa: F811
    key, jwks_url = jwks_issuer
    tenant = new_tenant()
    oidc = {"jwt_hs256_secret": None, "jwt_jwks_url": jwks_url, "jwt_issuer": ISSUER}
    async with contextlib.AsyncExitStack() as stack:
        reporting = await stack.enter_async_context(_serving(
            create_app(settings(kafka_bootstrap, database_url, **oidc)), _closed_port()))
        web = await stack.enter_async_context(running(web_app(settings_for(
            WebSettings, kafka_bootstrap, database_url, reporting_base_url=reporting, **oidc))))
        await send(kafka_bootstrap, topics.AMBASSADORS, [
            profile(tenant, "ambassador.enrolled", "amb-hub", "e-hub", "Hub", datetime.now(UTC))])

        async def mine() -> dict[str, Any] | None:
            answer = await web.get("/api/web/me/results", headers=bearer(key, tenant, "e-hub", "employee"))
            return answer.json() if answer.status_code == 200 else None
        body = await eventually(mine)
        assert (body["ambassador_id"], body["display_name"], body["rank"]) == ("amb-hub", "Hub", None)
        stranger = await web.get("/api/web/me/results", headers=bearer(key, tenant, "e-other", "employee"))
        assert stranger.status_code == 404 and stranger.json()["detail"]["reason"] == "not_enrolled"
