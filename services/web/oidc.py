"""The front's OpenID Connect client (a confidential client, authorization code flow with PKCE):
discovery, the authorization request, the code and refresh grants, the ID token's checks and the
RP-initiated logout URL.

Plain httpx and PyJWT (both already ours) rather than a client library: the protocol steps are a
few form posts, and what matters for security — the ID token's signature, issuer, audience,
authorized party, expiry and nonce, PKCE S256, the discovery document's issuer — is each one
explicit line here, checked by the tests against a real provider. PyJWT does the cryptography."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt

ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384", "PS512"]
DISCOVERY_TTL_SECONDS = 3600.0


class OidcError(Exception):
    """The provider refused, or answered something we must not trust. The message is for logs and
    the sign-in page (never a token)."""


class OidcUnavailable(OidcError):
    """The provider could not be asked (network, 5xx): nothing was refused."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None


@dataclass(frozen=True)
class Tokens:
    access_token: str
    id_token: str | None
    refresh_token: str | None
    expires_in: int | None


def random_token() -> str:
    """32 random bytes, base64url: session ids, state, nonce, PKCE verifiers, CSRF tokens."""
    return secrets.token_urlsafe(32)


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(SHA-256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class OidcClient:
    def __init__(self, http: httpx.AsyncClient, *, issuer: str, client_id: str, client_secret: str,
                 scopes: list[str], auth_method: str = "client_secret_basic") -> None:
        self.http = http
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self.auth_method = auth_method
        self._provider: tuple[float, Provider] | None = None
        self._jwks: dict[str, jwt.PyJWKClient] = {}

    async def provider(self) -> Provider:
        """The discovery document (``/.well-known/openid-configuration``), kept an hour."""
        if self._provider and time.monotonic() - self._provider[0] < DISCOVERY_TTL_SECONDS:
            return self._provider[1]
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            answer = await self.http.get(url, headers={"accept": "application/json"})
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise OidcUnavailable(f"discovery failed at {url}: {type(error).__name__}") from None
        if str(document.get("issuer", "")).rstrip("/") != self.issuer:  # OIDC Discovery 1.0, 4.3
            raise OidcError(f"discovery: issuer {document.get('issuer')!r} is not {self.issuer!r}")
        try:
            provider = Provider(issuer=document["issuer"], authorization_endpoint=document["authorization_endpoint"],
                                token_endpoint=document["token_endpoint"], jwks_uri=document["jwks_uri"],
                                end_session_endpoint=document.get("end_session_endpoint"))
        except KeyError as missing:
            raise OidcError(f"discovery: no {missing} in the provider's document") from None
        self._provider = (time.monotonic(), provider)
        return provider

    async def authorization_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        provider = await self.provider()
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                 "scope": " ".join(self.scopes), "state": state, "nonce": nonce,
                 "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"}
        separator = "&" if "?" in provider.authorization_endpoint else "?"
        return f"{provider.authorization_endpoint}{separator}{urlencode(query, quote_via=quote)}"

    async def exchange(self, code: str, redirect_uri: str, verifier: str) -> Tokens:
        return await self._grant({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                                  "code_verifier": verifier})

    async def refresh(self, refresh_token: str) -> Tokens:
        return await self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def _grant(self, form: dict[str, str]) -> Tokens:
        provider = await self.provider()
        auth: httpx.Auth | httpx._client.UseClientDefault = httpx.USE_CLIENT_DEFAULT
        if self.auth_method == "client_secret_post":
            form = {**form, "client_id": self.client_id, "client_secret": self.client_secret}
        else:  # RFC 6749 2.3.1: id and secret form-encoded, then HTTP Basic
            auth = httpx.BasicAuth(quote(self.client_id, safe=""), quote(self.client_secret, safe=""))
        try:
            answer = await self.http.post(provider.token_endpoint, data=form, auth=auth,
                                          headers={"accept": "application/json"})
            body = answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise OidcUnavailable(f"token endpoint unreachable: {type(error).__name__}") from None
        if answer.status_code >= 500:
            raise OidcUnavailable(f"token endpoint answered {answer.status_code}")
        if answer.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            code = body.get("error", f"HTTP {answer.status_code}") if isinstance(body, dict) else answer.status_code
            raise OidcError(f"{form['grant_type']} refused by the provider: {code}")
        expires_in = body.get("expires_in")
        return Tokens(access_token=str(body["access_token"]), id_token=body.get("id_token"),
                      refresh_token=body.get("refresh_token"),
                      expires_in=int(expires_in) if isinstance(expires_in, (int, float, str)) and
                      str(expires_in).isdigit() else None)

    async def id_claims(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        """The ID token's claims once its signature (the provider's JWKS), issuer, audience,
        authorized party, expiry and — after the code grant — nonce are right (OIDC Core 3.1.3.7)."""
        provider = await self.provider()
        keys = self._jwks.setdefault(provider.jwks_uri, jwt.PyJWKClient(provider.jwks_uri, cache_keys=True))
        try:
            key = (await asyncio.to_thread(keys.get_signing_key_from_jwt, id_token)).key
            claims = jwt.decode(id_token, key, algorithms=ID_TOKEN_ALGORITHMS, audience=self.client_id,
                                issuer=provider.issuer, leeway=30, options={"require": ["exp", "iat", "sub"]})
        except jwt.PyJWTError as error:
            raise OidcError(f"ID token refused: {error}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise OidcError("ID token refused: issued to another authorized party")
        if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("ID token refused: nonce mismatch (replayed or injected)")
        return claims

    async def end_session_url(self, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout (OIDC RP-Initiated Logout 1.0); None when the provider has none."""
        try:
            provider = await self.provider()
        except OidcError:
            return None
        if not provider.end_session_endpoint:
            return None
        query = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        if id_token:
            query["id_token_hint"] = id_token
        separator = "&" if "?" in provider.end_session_endpoint else "?"
        return f"{provider.end_session_endpoint}{separator}{urlencode(query, quote_via=quote)}"
