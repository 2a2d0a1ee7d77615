"""Token verification: HS256 locally, RS256 from an OIDC issuer's JWKS (served here on
loopback), and the tokens that must be refused."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import HTTPException

from shared.auth import ClaimMapping, TokenVerifier, issue_token
from shared.settings import ServiceSettings

SECRET = "unit-test-secret-0123456789abcdef0123"
ISSUER = "https://login.acme.example/"


@pytest.fixture(scope="module")
def jwks_issuer():
    """A stand-in OIDC issuer: its signing key, and its JWKS served over HTTP on loopback."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()


def rs256(key, **claims):
    now = int(time.time())
    base = {"sub": "u1", "tenant": "acme", "roles": ["editor"], "aud": "portevoix", "iss": ISSUER,
            "iat": now, "exp": now + 300}
    return jwt.encode(base | claims, key, algorithm="RS256", headers={"kid": "k1"})


async def test_hs256_token_gives_the_principal():
    verifier = TokenVerifier(ServiceSettings(jwt_hs256_secret=SECRET))
    principal = await verifier.verify(issue_token(SECRET, subject="claire", tenant="acme", roles=["editor"],
                                                  subsidiary="ACME-FR"))
    assert (principal.subject, principal.tenant, principal.subsidiary) == ("claire", "acme", "ACME-FR")
    assert principal.has("editor") and not principal.has("admin")


async def test_oidc_token_is_checked_against_the_issuers_jwks(jwks_issuer):
    key, url = jwks_issuer
    verifier = TokenVerifier(ServiceSettings(jwt_jwks_url=url, jwt_issuer=ISSUER))
    assert (await verifier.verify(rs256(key))).tenant == "acme"


@pytest.mark.parametrize(("claims", "reason"), [
    ({"iss": "https://evil.example/"}, "issuer"),
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"aud": "another-app"}, "audience"),
    ({"tenant": None}, "tenant"),
])
async def test_oidc_tokens_with_bad_claims_are_refused(jwks_issuer, claims, reason):
    key, url = jwks_issuer
    verifier = TokenVerifier(ServiceSettings(jwt_jwks_url=url, jwt_issuer=ISSUER))
    with pytest.raises(HTTPException) as refused:
        await verifier.verify(rs256(key, **claims))
    assert refused.value.status_code == 401
    assert reason in refused.value.detail.lower()


async def test_unsigned_forged_and_other_key_tokens_are_refused(jwks_issuer):
    key, url = jwks_issuer
    verifier = TokenVerifier(ServiceSettings(jwt_hs256_secret=SECRET, jwt_jwks_url=url, jwt_issuer=ISSUER))
    unsigned = jwt.encode({"sub": "u1", "tenant": "acme", "exp": int(time.time()) + 60}, key=None, algorithm="none")
    forged = issue_token("not-the-secret-0123456789abcdef012345", subject="u1", tenant="acme", roles=["admin"])
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for token in (unsigned, forged, rs256(other_key), "garbage"):
        with pytest.raises(HTTPException) as refused:
            await verifier.verify(token)
        assert refused.value.status_code == 401


def test_a_verifier_needs_a_key_source():
    with pytest.raises(ValueError, match="JWT"):
        TokenVerifier(ServiceSettings())


# --- claim mapping: the same for the services and the web front's sign-in --------------------

KEYCLOAK = {"sub": "f2b1…", "preferred_username": "E1042", "tenant": "acme",
            "realm_access": {"roles": ["offline_access", "default-roles-acme", "pv-editor"]},
            "resource_access": {"portevoix": {"roles": ["pv-approver"]}}}
OKTA = {"sub": "00u1abc", "employeeNumber": "E1042", "groups": ["Everyone", "Portevoix Analysts"],
        "https://acme.example/subsidiary": "ACME-FR"}
ENTRA = {"sub": "pairwise-opaque", "oid": "a1b2", "tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
         "employeeid": "E1042", "roles": ["Portevoix.Admin"], "groups": ["6d1f…"]}


def mapping(**settings) -> ClaimMapping:
    return ClaimMapping.from_settings(ServiceSettings(jwt_hs256_secret=SECRET, **settings))


def test_keycloak_realm_and_client_roles_map_to_portevoix_roles():
    principal = mapping(auth_subject_claim="preferred_username",
                        auth_roles_claims=["realm_access.roles", "resource_access.portevoix.roles"],
                        auth_role_mapping={"pv-editor": "editor", "pv-approver": ["approver"]}).principal(KEYCLOAK)
    assert (principal.subject, principal.tenant, principal.subsidiary) == ("E1042", "acme", None)
    assert principal.roles == {"editor", "approver"}  # offline_access and the default roles give nothing


def test_okta_groups_and_a_namespaced_subsidiary_claim_with_a_fixed_tenant():
    principal = mapping(auth_subject_claim="employeeNumber", auth_fixed_tenant="acme", auth_roles_claims=["groups"],
                        auth_role_mapping={"Portevoix Analysts": ["analyst"]},
                        auth_subsidiary_claim="https://acme.example/subsidiary").principal(OKTA)
    assert (principal.subject, principal.tenant, principal.subsidiary, principal.roles) == \
        ("E1042", "acme", "ACME-FR", {"analyst"})


def test_entra_app_roles_with_the_directory_id_as_tenant():
    principal = mapping(auth_subject_claim="employeeid", auth_tenant_claim="tid", auth_roles_claims=["roles"],
                        auth_role_mapping={"Portevoix.Admin": ["admin", "analyst"]}).principal(ENTRA)
    assert principal.tenant == ENTRA["tid"] and principal.roles == {"admin", "analyst"}


def test_without_a_mapping_names_are_roles_and_strings_are_split():
    principal = mapping(auth_roles_claims=["scp"]).principal({"sub": "u", "tenant": "t", "scp": "editor analyst"})
    assert principal.roles == {"editor", "analyst"}


@pytest.mark.parametrize("claims", [{"tenant": "acme"}, {"sub": "u1"}, {"sub": "", "tenant": "acme"},
                                    {"sub": "u1", "tenant": ["acme"]}])
def test_a_token_without_user_or_tenant_makes_no_principal(claims):
    from shared.auth import ClaimError

    with pytest.raises(ClaimError):
        mapping().principal(claims)


async def test_the_verifier_applies_the_mapping_to_idp_tokens_only(jwks_issuer):
    key, url = jwks_issuer
    verifier = TokenVerifier(ServiceSettings(jwt_hs256_secret=SECRET, jwt_jwks_url=url, jwt_issuer=ISSUER,
                                             auth_roles_claims=["groups"], auth_role_mapping={"pv-eds": ["editor"]}))
    idp = await verifier.verify(rs256(key, roles=None, groups=["pv-eds", "admin"]))
    assert idp.roles == {"editor"}  # "admin" is not mapped: an IdP group named so gives nothing
    own = await verifier.verify(issue_token(SECRET, subject="u1", tenant="acme", roles=["admin"], issuer=ISSUER))
    assert own.roles == {"admin"}  # Portevoix's own tokens keep their native claims
