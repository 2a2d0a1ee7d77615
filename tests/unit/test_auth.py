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

from shared.auth import TokenVerifier, issue_token
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
