"""Hostile JSON against the five services served by uvicorn on loopback ports, as a client sees
them: a body nested past the guard's bound (100 kB of ``[[[[``), with or without a JSON content
type, is a 4xx with a reason on every service — SCIM's in a SCIM error body — and the keep-alive
connection stays usable; numbers beyond what their column holds, and a training-kit version that
never existed, are 4xx; an intranet version in epoch milliseconds is kept."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.distribution.main import DistributionSettings
from services.distribution.main import create_app as distribution_app
from services.reporting.main import ReportingSettings
from services.reporting.main import create_app as reporting_app
from services.tracking.main import TrackingSettings
from services.tracking.main import create_app as tracking_app
from services.web.main import WebSettings
from services.web.main import create_app as web_app
from tests.integration.test_content_ingestion import signed, submitted
from tests.support import new_tenant, serving, settings_for, token

pytestmark = pytest.mark.integration

DEEP = b"[" * 50_000 + b"]" * 50_000  # 100 kB
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture(scope="module")
def urls(kafka_bootstrap: str, database_url: str) -> Iterator[dict[str, str]]:
    s = lambda cls, **kw: settings_for(cls, kafka_bootstrap, database_url, **kw)  # noqa: E731
    with serving({"content": content_app(s(ContentSettings)), "distribution": distribution_app(s(DistributionSettings)),
                  "tracking": tracking_app(s(TrackingSettings)), "reporting": reporting_app(s(ReportingSettings))}
                 ) as services:
        web = web_app(s(WebSettings, content_base_url=services["content"],
                        distribution_base_url=services["distribution"], tracking_base_url=services["tracking"],
                        reporting_base_url=services["reporting"]))
        with serving({"web": web}) as front:
            yield {**services, **front}


@pytest.fixture(scope="module")
def tenant() -> str:
    return new_tenant()


@pytest.fixture(scope="module")
def scim_user(urls: dict[str, str], tenant: str) -> tuple[dict[str, str], str]:
    base = urls["distribution"]
    issued = httpx.post(f"{base}/v1/admin/scim-tokens", headers=token(tenant, "admin"), json={"description": "t"})
    auth = {"Authorization": f"Bearer {issued.json()['token']}"}
    user = httpx.post(f"{base}/scim/v2/Users", headers=auth, json={"schemas": [USER], "userName": "ada@example.com"})
    assert user.status_code == 201, user.text
    return auth, user.json()["id"]


def targets(tenant: str, scim: tuple[dict[str, str], str]) -> list[tuple[str, str, str, dict[str, str]]]:
    """(service, method, path, headers): a JSON body route of each kind on every service."""
    auth, user_id = scim
    staff = token(tenant, "admin", "editor", "analyst")
    employee = token(tenant, "employee", subject="e-1")
    return [
        ("content", "POST", "/v1/contents", staff),
        ("content", "POST", f"/v1/webhooks/intranet/{tenant}/pr-tool", {}),
        ("distribution", "POST", "/scim/v2/Users", auth),
        ("distribution", "PATCH", f"/scim/v2/Users/{user_id}", auth),
        ("distribution", "POST", "/scim/v2/Users/.search", auth),
        ("distribution", "PUT", "/v1/me/preferences", employee),
        ("tracking", "POST", "/v1/webhooks/linkedin", {}),
        ("tracking", "POST", "/v1/shares", employee),
        ("reporting", "PUT", "/v1/kpis/media-rates", staff),
        ("web", "POST", "/api/web/training/read", employee),
        ("web", "POST", "/api/content/v1/contents", staff),
    ]


def local_port(response: httpx.Response) -> Any:
    return response.extensions["network_stream"].get_extra_info("client_addr")


@pytest.mark.parametrize("content_type", ["application/json", None, "text/plain"])
def test_deep_nesting_is_a_4xx_with_a_reason_and_the_connection_stays(
        urls: dict[str, str], tenant: str, scim_user: tuple[dict[str, str], str], content_type: str | None) -> None:
    problems = []
    for service, method, path, headers in targets(tenant, scim_user):
        sent = {**headers, **({"content-type": content_type} if content_type else {})}
        with httpx.Client(base_url=urls[service], timeout=30) as client:
            answer = client.request(method, path, content=DEEP, headers=sent)
            after = client.get("/healthz")
            label = f"{method} {path} ({content_type}): {answer.status_code} {answer.text[:200]}"
            if not 400 <= answer.status_code < 500 or "nested" not in answer.text:
                problems.append(label)
            elif path.startswith("/scim/") and not (
                    answer.status_code == 400 and answer.headers["content-type"] == "application/scim+json"
                    and answer.json()["scimType"] == "invalidSyntax"):
                problems.append(f"not a SCIM error: {label}")
            if after.status_code != 200 or local_port(after) != local_port(answer):
                problems.append(f"connection not kept after {label}")
    assert not problems, "\n".join(problems)


def test_a_body_just_under_the_bound_is_answered_as_usual(urls: dict[str, str], tenant: str) -> None:
    nested: Any = "x"
    for _ in range(60):
        nested = [nested]
    answer = httpx.post(f"{urls['content']}/v1/contents", json={"title": nested}, headers=token(tenant, "editor"))
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][:2] == ["body", "title"], answer.text


@pytest.mark.parametrize("version", ["2147483648", str(2**63), str(10**30), "1e400", "-1", "NaN", "1.5", "true"])
def test_a_kit_version_out_of_range_is_a_422(urls: dict[str, str], version: str) -> None:
    reader = token(new_tenant(), "employee", subject="e-1")
    answer = httpx.post(f"{urls['web']}/api/web/training/read", content=f'{{"version": {version}}}',
                        headers={**reader, "content-type": "application/json"})
    assert answer.status_code == 422, answer.text


def test_only_a_kit_version_that_existed_is_recorded_as_read(urls: dict[str, str]) -> None:
    tenant = new_tenant()
    reader, editor = token(tenant, "employee", subject="e-1"), token(tenant, "editor", subject="ed-1")
    read = f"{urls['web']}/api/web/training/read"
    unknown = httpx.post(read, json={"version": 1}, headers=reader)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["ctx"]["reason"] == "unknown_version"
    assert httpx.get(f"{urls['web']}/api/web/training", headers=reader).json()["read_version"] is None
    assert httpx.post(read, json={"version": 0}, headers=reader).status_code == 200  # the default kit
    written = httpx.put(f"{urls['web']}/api/web/training", json={"texts": {"en": "Be kind."}}, headers=editor)
    assert written.status_code == 200 and written.json()["version"] == 1, written.text
    assert httpx.post(read, json={"version": 2}, headers=reader).status_code == 422
    assert httpx.post(read, json={"version": 1}, headers=reader).status_code == 200
    assert httpx.get(f"{urls['web']}/api/web/training", headers=reader).json()["read_version"] == 1


def test_media_rates_refuse_numbers_that_are_not_finite(urls: dict[str, str]) -> None:
    admin = {**token(new_tenant(), "admin"), "content-type": "application/json"}
    for cpm in ("1e400", "NaN", "Infinity", str(10**30)):
        body = f'{{"currency": "EUR", "rates": {{"linkedin": {{"cpm": {cpm}, "cpc": 1}}}}}}'
        answer = httpx.put(f"{urls['reporting']}/v1/kpis/media-rates", content=body, headers=admin)
        assert answer.status_code == 422, (cpm, answer.text)


def test_scim_strings_longer_than_an_index_holds_are_a_400(urls: dict[str, str], scim_user: tuple[dict, str]) -> None:
    auth, user_id = scim_user
    for body in ({"schemas": [USER], "userName": "a" * 5000 + "@example.com"},
                 {"schemas": [USER], "userName": "b@example.com", "externalId": "x" * 5000}):
        answer = httpx.post(f"{urls['distribution']}/scim/v2/Users", json=body, headers=auth)
        assert answer.status_code == 400 and answer.json()["scimType"] == "invalidValue", answer.text
    group = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g" * 5000}
    assert httpx.post(f"{urls['distribution']}/scim/v2/Groups", json=group, headers=auth).status_code == 400


def test_an_intranet_version_in_epoch_milliseconds_is_kept(urls: dict[str, str]) -> None:
    tenant = new_tenant()
    base = urls["content"]
    secret = httpx.post(f"{base}/v1/admin/sources/pr-tool/webhook-secret", headers=token(tenant, "admin")).json()
    url = f"{base}/v1/webhooks/intranet/{tenant}/pr-tool"
    for version, status in ((int(time.time() * 1000), 202), (2**63, 422)):
        body = json.dumps({**submitted("PR-9", version), "source_system": "pr-tool"}).encode()
        answer = httpx.post(url, content=body, headers=signed(secret["secret"], body))
        assert answer.status_code == status, answer.text


def test_scim_filters_nested_or_chained_to_the_length_limit_are_answered(
        urls: dict[str, str], scim_user: tuple[dict, str]) -> None:
    auth, user_id = scim_user
    users = f"{urls['distribution']}/scim/v2/Users"
    for nested in ("(" * 1990 + "userName pr" + ")" * 1990, "not (" * 640 + "userName pr" + ")" * 640,
                   "emails[" * 450 + "value pr" + "]" * 450):  # each under the 4000 characters of a filter
        answer = httpx.get(users, params={"filter": nested}, headers=auth)
        assert answer.status_code == 400 and answer.json()["scimType"] == "invalidFilter", answer.text[:300]
        assert "nested deeper" in answer.json()["detail"]
    for chained in ("id pr and " * 399 + "id pr", "id pr or " * 443 + "id pr"):
        answer = httpx.get(users, params={"filter": chained}, headers=auth)
        assert answer.status_code == 200 and answer.json()["totalResults"] >= 1, answer.text[:300]
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "add", "path": "emails[" * 500 + 'type eq "work"' + "]" * 500 + ".value", "value": "a@example.com"}]}
    answer = httpx.patch(f"{users}/{user_id}", json=patch, headers=auth)
    assert answer.status_code == 400 and answer.json()["scimType"] == "invalidPath", answer.text[:300]
