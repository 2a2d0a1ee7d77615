"""Every endpoint of every service, enumerated from its own OpenAPI document, attacked as an
outsider would: no token, bad tokens (expired, unsigned, wrong issuer, audience or secret),
another tenant's token on this tenant's ids, subsidiary-scoped tokens outside their subtree, SQL
injection probes in every path and query parameter, open-redirect and header-injection attempts
on the redirector. The four services run in-process against the real broker and database."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest

from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.distribution.main import DistributionSettings
from services.distribution.main import create_app as distribution_app
from services.reporting.main import ReportingSettings
from services.reporting.main import create_app as reporting_app
from services.tracking.main import TrackingSettings
from services.tracking.main import create_app as tracking_app
from shared.auth import issue_token
from tests.support import JWT_SECRET, new_tenant, running, settings_for

pytestmark = pytest.mark.integration

ISSUER = "https://idp.portevoix.test"
ALL_ROLES = ["admin", "editor", "approver", "analyst", "employee", "privacy"]
PUBLIC = {"/healthz", "/readyz", "/r/{code}",  # no token by design
          # SCIM discovery, unauthenticated as RFC 7644 §4 allows: static descriptions, no tenant data.
          "/scim/v2/ServiceProviderConfig", "/scim/v2/ResourceTypes", "/scim/v2/ResourceTypes/{name}",
          "/scim/v2/Schemas", "/scim/v2/Schemas/{urn}",
          # An uploaded image, loaded by ambassadors' and networks' browsers: read-only, at a random id.
          "/v1/images/{tenant}/{image_id}"}
OWN_CREDENTIALS = ("/scim/", "/v1/webhooks/")  # SCIM tokens, webhook signatures: refused without them
# What a database error shown to the caller looks like (the probe itself may be echoed in a 422).
LEAK_MARKERS = ("syntax error", "asyncpg", "Traceback", "PostgresError", "psycopg", "relation \"", "UndefinedTable")
# Deliberate 501 answers (a refusal, not a failure): RFC 7644 §3.4.3 lets a provider decline a
# search across every resource type at the root.
NOT_IMPLEMENTED = {("/scim/v2/.search", 501)}
SQL_PROBES = ("' OR 1=1 --", "1; DROP TABLE content.contents; --", "\" OR \"\"=\"", "x' UNION SELECT NULL--",
              "%27%20OR%201%3D1")


def bearer(tenant: str, *, roles: list[str] = ALL_ROLES, subsidiary: str | None = None, issuer: str = ISSUER,
           secret: str = JWT_SECRET, ttl: int = 3600, audience: str = "portevoix") -> dict[str, str]:
    value = issue_token(secret, subject="sec-user", tenant=tenant, roles=roles, subsidiary=subsidiary,
                        issuer=issuer, audience=audience, ttl_seconds=ttl)
    return {"Authorization": f"Bearer {value}"}


def unsigned(tenant: str) -> dict[str, str]:
    claims = {"sub": "x", "tenant": tenant, "roles": ALL_ROLES, "aud": "portevoix", "iss": ISSUER,
              "exp": int(time.time()) + 3600}
    return {"Authorization": f"Bearer {jwt.encode(claims, None, algorithm='none')}"}


def bad_tokens(tenant: str) -> dict[str, dict[str, str]]:
    return {
        "expired": bearer(tenant, ttl=-600),  # past the 30 s leeway
        "unsigned (alg none)": unsigned(tenant),
        "wrong issuer": bearer(tenant, issuer="https://evil.example"),
        "no issuer": {"Authorization": "Bearer " + issue_token(JWT_SECRET, subject="x", tenant=tenant,
                                                               roles=ALL_ROLES)},
        "wrong secret": bearer(tenant, secret="another-secret-of-enough-length-0123456789"),
        "wrong audience": bearer(tenant, audience="someone-else"),
        "garbage": {"Authorization": "Bearer not.a.jwt"},
    }


@dataclass
class Operation:
    service: str
    method: str
    path: str
    path_params: list[str]
    query_params: list[str]
    secured: bool
    has_body: bool
    roles: list[str] | None = None  # x-portevoix-roles: the roles the document says it requires

    def __str__(self) -> str:
        return f"{self.service} {self.method} {self.path}"


@pytest.fixture(scope="module")
async def services(kafka_bootstrap: str, database_url: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    common = {"jwt_issuer": ISSUER}
    apps = {
        "content": content_app(settings_for(ContentSettings, kafka_bootstrap, database_url, **common)),
        "distribution": distribution_app(settings_for(DistributionSettings, kafka_bootstrap, database_url, **common)),
        "tracking": tracking_app(settings_for(TrackingSettings, kafka_bootstrap, database_url, **common)),
        "reporting": reporting_app(settings_for(ReportingSettings, kafka_bootstrap, database_url, **common)),
    }
    async with running(apps["content"]) as c, running(apps["distribution"]) as d, \
            running(apps["tracking"]) as t, running(apps["reporting"]) as r:
        yield {"content": c, "distribution": d, "tracking": t, "reporting": r}


@pytest.fixture(scope="module")
async def operations(services: dict[str, httpx.AsyncClient]) -> list[Operation]:
    found = []
    for name, client in services.items():
        document = (await client.get("/openapi.json")).json()
        for path, item in document["paths"].items():
            for method, op in item.items():
                params = op.get("parameters", [])
                found.append(Operation(name, method.upper(), path,
                                       [p["name"] for p in params if p["in"] == "path"],
                                       [p["name"] for p in params if p["in"] == "query"],
                                       bool(op.get("security")), "requestBody" in op, op.get("x-portevoix-roles")))
    assert len(found) > 60, "every service's routes are enumerated"
    return found


@dataclass
class VictimData:
    """Tenant B's data, created through the APIs; its ids fill A's requests."""
    tenant: str
    content_id: str
    title: str
    source: str
    secret_id: str
    scim_token_id: str
    scim_user_id: str
    scim_auth: dict[str, str]
    webhook_id: str

    def path_value(self, name: str) -> str:
        return {"content_id": self.content_id, "group_content_id": self.content_id, "source": self.source,
                "secret_id": self.secret_id, "token_id": self.scim_token_id, "user_id": self.scim_user_id,
                "group_id": str(uuid.uuid4()), "delivery_id": str(uuid.uuid4()), "tenant": self.tenant,
                "source_system": "intranet", "subsidiary": "ACME-FR", "code": "ACME-FR", "name": "Users",
                "channel": "slack", "version": "v1", "board": "ambassadors", "urn": "x"}.get(name, "x")

    def markers(self) -> list[str]:
        return [self.tenant, self.content_id, self.title, self.secret_id, self.scim_token_id, self.scim_user_id,
                self.webhook_id, "victim-user@example.com"]


@pytest.fixture(scope="module")
async def victim(services: dict[str, httpx.AsyncClient]) -> VictimData:
    tenant = new_tenant()
    b = bearer(tenant)
    title = f"Victim secret plan {uuid.uuid4().hex[:8]}"
    content = await services["content"].post("/v1/contents", headers=b, json={
        "title": title, "summary": "Only B may read it.", "url": "https://b.example/plan", "language": "en",
        "owner_subsidiary": "ACME-FR", "audience": {"subsidiaries": ["ACME-FR"]},
        "share_texts": [{"network": "linkedin", "language": "en", "text": "B only"}]})
    assert content.status_code == 201, content.text
    source = f"src-{uuid.uuid4().hex[:8]}"
    secret = await services["tracking"].post(f"/v1/webhook-sources/{source}/secrets", headers=b)
    assert secret.status_code == 201, secret.text
    scim = await services["distribution"].post("/v1/admin/scim-tokens", headers=b, json={"description": "B"})
    assert scim.status_code == 201, scim.text
    scim_auth = {"Authorization": f"Bearer {scim.json()['token']}", "Content-Type": "application/scim+json"}
    user = await services["distribution"].post("/scim/v2/Users", headers=scim_auth, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "victim-user@example.com",
        "externalId": "victim-1", "active": True, "emails": [{"value": "victim-user@example.com", "primary": True}]})
    assert user.status_code == 201, user.text
    hook = await services["reporting"].post("/v1/kpis/webhooks", headers=b, json={
        "url": "https://b.example/hook", "event_types": ["kpi.changed"]})
    assert hook.status_code == 201, hook.text
    return VictimData(tenant, content.json()["id"], title, source, secret.json()["secret_id"],
                      scim.json()["token_id"], user.json()["id"], scim_auth, hook.json()["id"])


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


async def call(client: httpx.AsyncClient, op: Operation, path: str, headers: dict[str, str],
               params: dict[str, str] | None = None, body: Any = None) -> httpx.Response:
    json_body = (body if body is not None else {}) if op.has_body or op.method in ("POST", "PUT", "PATCH") else None
    return await client.request(op.method, path, headers=headers, params=params, json=json_body)


def authenticated(operations: list[Operation]) -> list[Operation]:
    return [op for op in operations if op.path not in PUBLIC and not op.path.startswith(OWN_CREDENTIALS)]


async def test_every_route_but_the_public_ones_refuses_a_request_without_credentials(
        services: dict[str, httpx.AsyncClient], operations: list[Operation], victim: VictimData) -> None:
    refused, wrong = 0, []
    for op in operations:
        if op.path in PUBLIC:
            continue
        path = fill(op.path, {p: victim.path_value(p) for p in op.path_params})
        response = await call(services[op.service], op, path, {})
        refused += 1
        if response.status_code != 401:
            wrong.append(f"{op}: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)
    assert refused > 60


async def test_each_operation_documents_its_roles_and_refuses_a_token_without_them(
        services: dict[str, httpx.AsyncClient], operations: list[Operation], victim: VictimData) -> None:
    """The roles in each operation's OpenAPI description are the ones enforced: a valid token of
    the tenant holding every other role gets 403."""
    checked, wrong = 0, []
    for op in authenticated(operations):
        if op.roles is None:
            wrong.append(f"{op}: no x-portevoix-roles")
            continue
        others = [role for role in ALL_ROLES if role not in op.roles]
        if not op.roles or not others:
            continue  # any valid token is enough
        path = fill(op.path, {p: victim.path_value(p) for p in op.path_params})
        response = await call(services[op.service], op, path, bearer(victim.tenant, roles=others))
        checked += 1
        if response.status_code != 403:
            wrong.append(f"{op} with {others}: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)
    assert checked > 40


async def test_expired_unsigned_wrong_issuer_audience_or_secret_tokens_are_refused_everywhere(
        services: dict[str, httpx.AsyncClient], operations: list[Operation], victim: VictimData) -> None:
    wrong = []
    for op in authenticated(operations):
        path = fill(op.path, {p: victim.path_value(p) for p in op.path_params})
        for kind, headers in bad_tokens(victim.tenant).items():
            response = await call(services[op.service], op, path, headers)
            if response.status_code != 401:
                wrong.append(f"{op} with a {kind} token: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


VALID_BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/v1/contents/{content_id}"): {"title": "hijacked"},
    ("POST", "/v1/contents/{content_id}/reject"): {"reason": "hijacked"},
    ("POST", "/v1/contents/{content_id}/schedule"): {"publish_at": "2031-01-01T00:00:00Z"},
    ("POST", "/v1/contents/{content_id}/offers"): {"subsidiaries": ["ACME-DE"]},
    ("POST", "/v1/offers/{group_content_id}/decline"): {"reason": "hijacked"},
    ("PUT", "/v1/admin/groups/{name}"): {"members": ["victim-1"]},
}


async def test_a_token_of_tenant_a_never_reads_or_changes_tenant_b_data(
        services: dict[str, httpx.AsyncClient], operations: list[Operation], victim: VictimData) -> None:
    attacker = bearer(new_tenant())
    leaks = []
    for op in authenticated(operations):
        path = fill(op.path, {p: victim.path_value(p) for p in op.path_params})
        params = {q: victim.content_id for q in op.query_params if q in ("group_content_id", "scope_id")}
        response = await call(services[op.service], op, path, attacker, params,
                              VALID_BODIES.get((op.method, op.path)))
        assert response.status_code < 500, f"{op}: {response.status_code} {response.text[:200]}"
        if 200 <= response.status_code < 300:
            seen = [m for m in victim.markers() if m in response.text]
            if seen:
                leaks.append(f"{op}: {response.status_code} shows {seen}")
        elif op.path_params and response.status_code not in (403, 404, 409, 422):
            leaks.append(f"{op}: unexpected {response.status_code} {response.text[:120]}")
    # The same tenant's SCIM credential is the only key to its SCIM users: A's SCIM token sees none of B's.
    a_tenant = new_tenant()
    a_scim = await services["distribution"].post("/v1/admin/scim-tokens", headers=bearer(a_tenant), json={})
    a_auth = {"Authorization": f"Bearer {a_scim.json()['token']}"}
    for method in ("GET", "DELETE"):
        response = await services["distribution"].request(method, f"/scim/v2/Users/{victim.scim_user_id}",
                                                           headers=a_auth)
        if response.status_code < 300 or victim.scim_user_id in response.text and response.status_code != 404:
            leaks.append(f"SCIM {method} of B's user with A's SCIM token: {response.status_code}")
    listing = await services["distribution"].get("/scim/v2/Users", headers=a_auth)
    assert "victim-user@example.com" not in listing.text
    assert not leaks, "\n".join(leaks)
    # And B's data is as B left it.
    b = bearer(victim.tenant)
    item = (await services["content"].get(f"/v1/contents/{victim.content_id}", headers=b)).json()
    assert (item["title"], item["state"]) == (victim.title, "draft")
    secrets = (await services["tracking"].get(f"/v1/webhook-sources/{victim.source}/secrets", headers=b)).json()
    assert [s["secret_id"] for s in secrets if not s.get("revoked_at")] == [victim.secret_id]
    assert (await services["distribution"].get(f"/scim/v2/Users/{victim.scim_user_id}",
                                                headers=victim.scim_auth)).status_code == 200
    tokens = (await services["distribution"].get("/v1/admin/scim-tokens", headers=b)).json()
    assert victim.scim_token_id in str(tokens)


async def test_subsidiary_scoped_tokens_stay_in_their_subtree(services: dict[str, httpx.AsyncClient]) -> None:
    tenant = new_tenant()
    group = bearer(tenant)
    fr = bearer(tenant, subsidiary="ACME-FR")
    draft = {"title": "German only", "summary": "s", "url": "https://acme.example/de", "language": "de",
             "owner_subsidiary": "ACME-DE", "audience": {"subsidiaries": ["ACME-DE"]},
             "share_texts": [{"network": "linkedin", "language": "de", "text": "t"}]}
    german = await services["content"].post("/v1/contents", headers=group, json=draft)
    assert german.status_code == 201, german.text
    content_id = german.json()["id"]
    attempts = {
        "read another subsidiary's content": await services["content"].get(f"/v1/contents/{content_id}", headers=fr),
        "edit it": await services["content"].patch(f"/v1/contents/{content_id}", headers=fr, json={"title": "x"}),
        "create content for another subsidiary": await services["content"].post("/v1/contents", headers=fr,
                                                                                json=draft),
        "set another subsidiary's charter": await services["content"].put(
            "/v1/admin/charter/subsidiaries/ACME-DE", headers=fr, json={}),
        "read another subsidiary's KPIs": await services["reporting"].get(
            "/v1/kpis", headers=fr, params={"scope_type": "subsidiary", "scope_id": "ACME-DE"}),
        "read another subsidiary's headcount": await services["distribution"].get(
            "/v1/directory/headcount", headers=fr, params={"at": datetime.now(UTC).isoformat(),
                                                            "subsidiary": "ACME-DE"}),
        "read the group's KPIs": await services["reporting"].get("/v1/kpis", headers=fr,
                                                                 params={"scope_type": "tenant"}),
    }
    wrong = {what: f"{r.status_code} {r.text[:100]}" for what, r in attempts.items() if r.status_code < 400}
    assert not wrong, wrong
    listed = await services["content"].get("/v1/contents", headers=fr)
    assert listed.status_code == 200 and content_id not in listed.text
    assert (await services["content"].get(f"/v1/contents/{content_id}", headers=group)).status_code == 200


async def test_sql_injection_probes_in_paths_and_queries_never_fail_or_leak(
        services: dict[str, httpx.AsyncClient], operations: list[Operation], victim: VictimData) -> None:
    attacker = bearer(new_tenant())
    wrong = []
    for op in operations:
        if op.path == "/readyz":
            continue
        for probe in SQL_PROBES:
            path = fill(op.path, {p: probe for p in op.path_params})
            params = {q: probe for q in op.query_params}
            headers = victim.scim_auth if op.path.startswith("/scim/") else attacker
            response = await call(services[op.service], op, path, headers, params)
            leaked = [m for m in (*LEAK_MARKERS, *victim.markers()) if m in response.text]
            failed = response.status_code >= 500 and (op.path, response.status_code) not in NOT_IMPLEMENTED
            if failed or (leaked and not op.path.startswith("/scim/")):
                wrong.append(f"{op} probe {probe!r}: {response.status_code} {leaked} {response.text[:120]}")
    # SCIM filters are a query language of their own: probes there too, with B's own credential.
    for probe in ('userName eq "x" or 1 eq 1', "userName eq \"' OR 1=1 --\"", 'userName sw "%"', "'; DROP TABLE x"):
        response = await services["distribution"].get("/scim/v2/Users", headers=victim.scim_auth,
                                                      params={"filter": probe})
        if response.status_code >= 500 or any(m in response.text for m in LEAK_MARKERS):
            wrong.append(f"SCIM filter {probe!r}: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)
    # The tables are still there.
    assert (await services["content"].get(f"/v1/contents/{victim.content_id}",
                                          headers=bearer(victim.tenant))).status_code == 200


@pytest.mark.parametrize("path", [
    "/r///evil.example", "/r//evil.example", "/r/%2F%2Fevil.example", "/r/https://evil.example",
    "/r/https:%2F%2Fevil.example", "/r/javascript:alert(1)", "/r/%6A%61%76%61script:alert(1)",
    "/r/x%0d%0aSet-Cookie:%20x=1", "/r/%0d%0aLocation:%20https://evil.example", "/r/x%00y",
    "/r/..%2F..%2Fadmin", "/r/%E2%80%AE", "/r/" + "a" * 5000,
])
async def test_the_redirector_never_redirects_to_what_the_request_says(
        services: dict[str, httpx.AsyncClient], path: str) -> None:
    for method in ("GET", "HEAD"):
        response = await services["tracking"].request(method, path)
        assert response.status_code == 404, (method, path, response.status_code)
        assert "location" not in response.headers
        assert "set-cookie" not in response.headers
        assert all("\r" not in v and "\n" not in v for v in response.headers.values())
