"""JWT bearer authentication carrying the tenant and the roles.

Tokens are HS256 with a shared secret for local use, or signed by the enterprise's OIDC
issuer and checked against its JWKS. Claims: ``sub`` (the user), ``tenant`` (the enterprise
group), ``roles`` (list), and optionally ``subsidiary`` (the org unit a subsidiary-scoped
role is confined to; absent = group level).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.logs import note_tenant
from shared.settings import ServiceSettings

bearer = HTTPBearer(auto_error=False, description="JWT with tenant and roles claims")


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant: str
    roles: frozenset[str] = field(default_factory=frozenset)
    subsidiary: str | None = None  # None: group level, sees every subsidiary of the tenant

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


class TokenVerifier:
    def __init__(self, settings: ServiceSettings) -> None:
        self.secret = settings.jwt_hs256_secret.get_secret_value() if settings.jwt_hs256_secret else None
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None
        if not self.secret and not self.jwks:
            raise ValueError("configure PORTEVOIX_JWT_HS256_SECRET or PORTEVOIX_JWT_JWKS_URL")

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "HS256" and self.secret:
                key: object = self.secret
                algorithms = ["HS256"]
            elif self.jwks is not None:
                # The JWKS fetch is blocking I/O (cached after the first call).
                key = (await asyncio.to_thread(self.jwks.get_signing_key_from_jwt, token)).key
                algorithms = ["RS256", "ES256", "PS256"]
            else:
                raise jwt.InvalidTokenError(f"algorithm {header.get('alg')!r} not accepted")
            claims = jwt.decode(
                token, key, algorithms=algorithms, audience=self.audience, issuer=self.issuer,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
                leeway=30,
            )
        except (jwt.PyJWTError, ValueError) as error:
            raise HTTPException(401, f"invalid token: {error}", headers={"WWW-Authenticate": "Bearer"}) from error
        tenant = claims.get("tenant")
        if not isinstance(tenant, str) or not tenant:
            raise HTTPException(401, "token has no tenant claim", headers={"WWW-Authenticate": "Bearer"})
        roles = claims.get("roles") or []
        return Principal(subject=str(claims["sub"]), tenant=tenant, roles=frozenset(map(str, roles)),
                         subsidiary=claims.get("subsidiary") or None)


def issue_token(secret: str, *, subject: str, tenant: str, roles: list[str], subsidiary: str | None = None,
                audience: str = "portevoix", issuer: str | None = None, ttl_seconds: int = 3600) -> str:
    """An HS256 token, for local use, the demo and tests."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "tenant": tenant, "roles": roles, "aud": audience,
                                 "iat": now, "exp": now + ttl_seconds}
    if subsidiary:
        claims["subsidiary"] = subsidiary
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")


def holder_digest(key: str, tenant: str, subject: str) -> str:
    """The pseudonymous *holder* of an ambassador id: HMAC-SHA256 of the tenant and the person's
    sign-in subject (his HR id), base64url. Distribution puts it on ``ambassadors.v1``; tracking
    and reporting compute it from the caller's token to find his own ambassador id. Without the
    key it cannot be reversed by enumerating HR ids, and no service but distribution stores HR ids."""
    mac = hmac.new(key.encode(), f"{tenant}\x00{subject}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise HTTPException(503, "authentication is not configured (PORTEVOIX_JWT_HS256_SECRET or _JWKS_URL)")
    principal = await verifier.verify(credentials.credentials)
    note_tenant(principal.tenant)
    return principal


def require(*roles: str) -> Callable[..., object]:
    """A FastAPI dependency: the caller must hold one of ``roles``."""
    # Security scopes: the OpenAPI document lists the roles in the operation's bearer requirement
    # (OpenAPI 3.1: role names for non-OAuth schemes), read from here, so it cannot drift.
    async def dependency(principal: Principal = Security(current_principal, scopes=list(roles))) -> Principal:
        if not principal.has(*roles):
            raise HTTPException(403, f"requires one of the roles: {', '.join(roles)}")
        return principal
    return dependency
