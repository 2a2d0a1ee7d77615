"""The web front's sign-in decisions, pure: return paths, landing pages, origins, cookie security,
refresh timing, PKCE."""

from __future__ import annotations

import pytest

from services.web import domain
from services.web.oidc import pkce_challenge, random_token


@pytest.mark.parametrize(("value", "expected"), [
    ("/studio", "/studio"), ("/dashboard?scope=ACME-FR#kpis", "/dashboard?scope=ACME-FR#kpis"), (None, None),
    ("", None), ("//evil.example/", None), ("/\\evil.example", None), ("https://evil.example/", None),
    ("evil", None), ("/login?next=/", None), ("/auth/login", None), ("/x\r\nSet-Cookie: a=b", None),
    ("/" + "a" * 2001, None),
])
def test_only_local_pages_are_returned_to(value, expected):
    assert domain.safe_return_path(value) == expected


@pytest.mark.parametrize(("roles", "page"), [
    (["employee"], "/"), (["editor"], "/studio"), (["approver", "employee"], "/studio"), (["analyst"], "/dashboard"),
    (["admin"], "/admin"), ([], "/"),
])
def test_each_role_lands_where_its_work_is(roles, page):
    assert domain.landing(roles) == page


def test_origins_and_sign_in_errors():
    assert domain.same_origin("https://pv.acme.example", "https://pv.acme.example/")
    assert domain.same_origin(None, "https://pv.acme.example")  # no Origin: the CSRF token decides
    assert not domain.same_origin("https://evil.example", "https://pv.acme.example")
    assert not domain.same_origin("null", "https://pv.acme.example")
    assert domain.sign_in_error("access_denied") == "access_denied"
    assert domain.sign_in_error("<script>") == domain.sign_in_error(None) == "failed"


@pytest.mark.parametrize(("wanted", "host", "secure"), [
    (True, "127.0.0.1:8005", True), (False, "127.0.0.1:8005", False), (False, "localhost", False),
    (False, "[::1]:8005", False), (False, "pv.acme.example", True), (False, "10.0.0.5:8005", True),
])
def test_the_session_cookie_is_secure_except_on_plain_http_loopback(wanted, host, secure):
    assert domain.secure_cookie(wanted, host) is secure


def test_refresh_comes_before_expiry():
    assert not domain.needs_refresh(1000.0, 900.0, 60)
    assert domain.needs_refresh(1000.0, 950.0, 60) and domain.needs_refresh(1000.0, 1001.0, 60)


def test_pkce_s256_and_random_values():
    # RFC 7636, appendix B
    verifier, challenge = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce_challenge(verifier) == challenge
    values = {random_token() for _ in range(100)}
    assert len(values) == 100 and all(len(v) == 43 for v in values)
