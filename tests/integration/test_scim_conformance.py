"""SCIM 2.0 against an outside checker: scim2-tester (python-scim) runs every check it has
(discovery, CRUD of Users and Groups, PATCH add/replace/remove, attribute projection, unknown
URLs) against distribution served by uvicorn on a loopback port, with the real broker and
database behind it. Nothing may fail unless it is listed in EXCLUDED with its reason, and each
exclusion is a deviation the README lists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from scim2_client import BaseSyncSCIMClient
from scim2_client.client import RawResponse
from scim2_tester import Status, check_server

from services.distribution.main import DistributionSettings, create_app
from tests.support import new_tenant, serving, settings_for, token

pytestmark = pytest.mark.integration

# check title -> why it is allowed to fail (each one listed in README, "SCIM: deviations").
EXCLUDED: dict[str, str] = {}
FAILED = (Status.ERROR, Status.CRITICAL)


class HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client's engine over the project's httpx (its own engine wants the httpx2 fork)."""

    def __init__(self, client: httpx.Client, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base, url = self.client.base_url, self.client.build_request("GET", endpoint).url
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port) and \
            url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: RawResponse) -> Any:
        assert isinstance(response, httpx.Response)
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, **kwargs)


@pytest.fixture(scope="module")
def scim_base(kafka_bootstrap: str, database_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    settings = settings_for(DistributionSettings, kafka_bootstrap, database_url)
    with serving({"distribution": create_app(settings)}) as urls:
        base = urls["distribution"]
        tenant = new_tenant()
        issued = httpx.post(f"{base}/v1/admin/scim-tokens", headers=token(tenant, "admin", subject="admin-1"),
                            json={"description": "scim2-tester"})
        assert issued.status_code == 201, issued.text
        yield f"{base}/scim/v2/", {"Authorization": f"Bearer {issued.json()['token']}"}


def test_scim2_tester_finds_no_failure(scim_base: tuple[str, dict[str, str]]) -> None:
    url, headers = scim_base
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        results = check_server(HttpxSCIMClient(http))
    failed = [r for r in results if r.status in FAILED]
    unexpected = [r for r in failed if r.title not in EXCLUDED]
    ran = [r for r in results if r.status != Status.SKIPPED]
    assert len(ran) > 50, [repr(r) for r in results]
    assert not unexpected, f"{len(unexpected)} of {len(ran)} checks failed:\n" + "\n".join(
        f"{r.title} [{r.resource_type}]: {r.reason} {str(r.data)[:600]}" for r in unexpected)


# --- the defects scim2-tester found, each pinned down ---------------------------------------------

SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def assert_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM)
    body = response.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status) and body["detail"], body
    assert body.get("scimType") == scim_type, body
    return dict(body)


@pytest.fixture
def scim(scim_base: tuple[str, dict[str, str]]) -> Iterator[httpx.Client]:
    url, headers = scim_base
    with httpx.Client(base_url=url, headers={**headers, "content-type": SCIM}, timeout=30) as client:
        yield client


def new_user(scim: httpx.Client, name: str, **extra: Any) -> dict[str, Any]:
    body = {"schemas": [USER, ENTERPRISE], "userName": f"{name}@example.com", "emails": [
        {"value": f"{name}@example.com", "type": "work", "primary": True}], ENTERPRISE: {"employeeNumber": name}}
    created = scim.post("Users", json={**body, **extra})
    assert created.status_code == 201, created.text
    return dict(created.json())


def attribute(schema: dict[str, Any], dotted: str) -> dict[str, Any]:
    name, _, sub = dotted.partition(".")
    found = next(a for a in schema["attributes"] if a["name"] == name)
    return next(s for s in found["subAttributes"] if s["name"] == sub) if sub else found


def test_the_schemas_say_what_is_enforced(scim: httpx.Client) -> None:
    schemas = {s["id"]: s for s in scim.get("Schemas").json()["Resources"]}
    user, group, enterprise = schemas[USER], schemas[GROUP], schemas[ENTERPRISE]
    assert attribute(user, "emails")["required"] is True and attribute(user, "emails.value")["required"] is True
    assert attribute(group, "members.$ref")["referenceTypes"] == ["User", "Group"]
    assert attribute(user, "groups.$ref")["referenceTypes"] == ["User", "Group"]
    assert attribute(enterprise, "manager.$ref")["referenceTypes"] == ["User"]  # RFC 7643 section 8.7.1
    assert "FR" in attribute(user, "addresses.country")["canonicalValues"]
    no_email = {"schemas": [USER], "userName": "no-mailbox", "name": {"givenName": "No", "familyName": "Mailbox"}}
    assert "e-mail" in assert_scim_error(scim.post("Users", json=no_email), 400, "invalidValue")["detail"]
    bad_country = {**no_email, "userName": "someone@example.com", "addresses": [{"country": "France"}]}
    assert "country" in assert_scim_error(scim.post("Users", json=bad_country), 400, "invalidValue")["detail"]


def test_unknown_paths_and_methods_answer_scim_errors(scim: httpx.Client) -> None:
    assert_scim_error(scim.get("NoSuchResource"), 404)
    assert_scim_error(scim.get("Users/not-a-uuid/more"), 404)
    assert_scim_error(scim.delete("Users"), 405)


def test_search_by_post_filters_and_projects(scim: httpx.Client) -> None:
    ada = new_user(scim, f"ada-{new_tenant()}")
    new_user(scim, f"bob-{new_tenant()}")
    found = scim.post("Users/.search", json={"schemas": [SEARCH], "filter": f'userName eq "{ada["userName"]}"',
                                             "attributes": ["userName"], "startIndex": 1, "count": 10})
    assert found.status_code == 200 and found.headers["content-type"].startswith(SCIM), found.text
    assert found.json()["totalResults"] == 1
    assert found.json()["Resources"] == [{"schemas": [USER, ENTERPRISE], "id": ada["id"], "userName": ada["userName"]}]
    group = scim.post("Groups", json={"schemas": [GROUP], "displayName": f"g-{new_tenant()}",
                                      "members": [{"$ref": ada["meta"]["location"], "type": "User"}]})
    assert group.status_code == 201, group.text
    assert [m["value"] for m in group.json()["members"]] == [ada["id"]]  # a member given by $ref only
    groups = scim.post("Groups/.search", json={"schemas": [SEARCH], "filter": f'id eq "{group.json()["id"]}"'})
    assert groups.status_code == 200 and groups.json()["totalResults"] == 1, groups.text
    # From the root: Users then Groups as one list; a filter on userName matches no Group.
    either = f'id eq "{ada["id"]}" or id eq "{group.json()["id"]}"'
    both = scim.post(".search", json={"schemas": [SEARCH], "filter": either, "count": 1})
    assert both.status_code == 200 and both.json()["totalResults"] == 2, both.text
    assert [r["id"] for r in both.json()["Resources"]] == [ada["id"]]
    second = scim.post(".search", json={"schemas": [SEARCH], "filter": either, "startIndex": 2})
    assert [r["id"] for r in second.json()["Resources"]] == [group.json()["id"]]
    by_name = scim.post(".search", json={"schemas": [SEARCH], "filter": f'userName eq "{ada["userName"]}"'})
    assert by_name.status_code == 200 and by_name.json()["totalResults"] == 1, by_name.text
    assert_scim_error(scim.post("Users/.search", json={"filter": "userName pr"}), 400, "invalidSyntax")
    assert_scim_error(scim.post("Users/.search", json={"schemas": [SEARCH], "count": 2**63}), 400, "invalidValue")
    nested = {"schemas": [GROUP], "displayName": f"n-{new_tenant()}",
              "members": [{"value": group.json()["id"], "type": "Group"}]}
    assert "nested" in assert_scim_error(scim.post("Groups", json=nested), 400, "invalidValue")["detail"]


def test_patch_may_name_the_whole_enterprise_extension(scim: httpx.Client) -> None:
    user = new_user(scim, f"eve-{new_tenant()}")
    replaced = scim.patch(f"Users/{user['id']}", json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": ENTERPRISE, "value": {"department": "Research", "costCenter": "R1"}}]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()[ENTERPRISE] == {"employeeNumber": user[ENTERPRISE]["employeeNumber"],
                                           "department": "Research", "costCenter": "R1"}
    removed = scim.patch(f"Users/{user['id']}", json={"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": ENTERPRISE}]})
    assert removed.status_code == 200, removed.text
    assert ENTERPRISE not in removed.json() and removed.json()["schemas"] == [USER]
