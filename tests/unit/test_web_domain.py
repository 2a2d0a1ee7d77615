"""The web front's pure decisions: where a proxied call goes, what crosses the proxy, the demo
login's roles, the training kit's language, and the share gate."""

from __future__ import annotations

import pytest

from services.web import domain

BASES = {name: f"http://{name}:80" for name in domain.SERVICES}


def test_a_proxied_call_goes_to_its_service_with_its_query():
    assert domain.upstream_url(BASES, "reporting", "v1/kpis", "scope_type=tenant&format=csv") == \
        "http://reporting:80/v1/kpis?scope_type=tenant&format=csv"
    assert domain.upstream_url(BASES, "content", "v1/contents/", "") == "http://content:80/v1/contents"


def test_a_proxied_path_cannot_go_up_or_elsewhere():
    assert domain.upstream_url(BASES, "tracking", "../../admin/./x", "") == "http://tracking:80/admin/x"
    assert domain.upstream_url(BASES, "tracking", "%2F%2Fevil.example/x", "") == \
        "http://tracking:80/%252F%252Fevil.example/x"
    with pytest.raises(domain.UnknownService):
        domain.upstream_url(BASES, "web", "v1/x", "")


def test_only_the_credential_body_type_negotiation_and_trace_cross_the_proxy():
    sent = domain.forwarded_request_headers([("Authorization", "Bearer x"), ("Cookie", "a=b"), ("Host", "front"),
                                             ("Content-Type", "application/json"), ("traceparent", "00-1-2-01")])
    assert sent == {"authorization": "Bearer x", "content-type": "application/json", "traceparent": "00-1-2-01"}
    back = domain.forwarded_response_headers([("Content-Type", "text/csv"), ("Transfer-Encoding", "chunked"),
                                              ("Set-Cookie", "s=1"), ("Retry-After", "5")])
    assert back == [("Content-Type", "text/csv"), ("Retry-After", "5")]


def test_a_demo_login_claims_known_roles_only():
    assert domain.invalid_local_roles(["employee", "editor"]) == []
    assert domain.invalid_local_roles(["employee", "root", "superuser"]) == ["root", "superuser"]


def test_the_training_kit_is_shown_in_the_readers_language_else_english():
    texts = {"en": "Share well", "fr": "Bien partager"}
    assert domain.training_text(texts, domain.language_of("fr-FR,fr;q=0.9")) == ("fr", "Bien partager")
    assert domain.training_text(texts, domain.language_of("de-DE")) == ("en", "Share well")
    assert domain.training_text({"fr": "Bien partager"}, "en") == ("fr", "Bien partager")


def test_a_first_share_needs_the_training_kit_read():
    assert not domain.may_record_share(None, 0)
    assert domain.may_record_share(0, 0) and domain.may_record_share(3, 3)
    assert not domain.may_record_share(2, 3)  # a new kit version is asked again
    assert domain.is_share_confirmation("tracking", "POST", "v1/shares/")
    assert not domain.is_share_confirmation("tracking", "GET", "v1/shares")
    assert not domain.is_share_confirmation("content", "POST", "v1/shares")


def test_each_role_lands_where_its_work_is():
    assert domain.landing(["employee"]) == "/"
    assert domain.landing(["editor", "employee"]) == "/studio"
    assert domain.landing(["approver"]) == "/studio"
    assert domain.landing(["analyst", "employee"]) == "/dashboard"
    assert domain.landing(["admin"]) == "/admin"
    assert domain.landing(["privacy_officer"]) == "/"  # no page of his: the hub says which role is missing


def test_navigation_shows_the_pages_the_roles_open():
    assert domain.pages_for(["employee"]) == ["hub"]
    assert domain.pages_for(["editor"]) == ["studio", "watch", "dashboard"]
    assert domain.pages_for(["approver"]) == ["studio"]
    assert domain.pages_for(["analyst"]) == ["dashboard"]
    assert domain.pages_for(["admin", "employee"]) == ["hub", "studio", "watch", "dashboard", "admin"]
    assert domain.pages_for([]) == []
