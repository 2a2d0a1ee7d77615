"""JWT bearer authentication carrying the tenant and the roles.

Tokens are HS256 with a shared secret for local use, or signed by the enterprise's OIDC
issuer and checked against its JWKS. Portevoix's own (HS256) tokens carry ``sub`` (the user),
``tenant`` (the enterprise group), ``roles`` (list), and optionally ``subsidiary`` (the org unit
a subsidiary-scoped role is confined to; absent = group level). An IdP's tokens are read through
the configured :class:`ClaimMapping` (``PORTEVOIX_AUTH_*``): which claims hold the user, the tenant,
the roles or groups and the subsidiary, and which IdP names are which Portevoix roles. The web
front's sign-in reads the tokens it receives with this same verifier.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

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


class ClaimError(ValueError):
    """A verified token whose claims do not make a principal (no tenant, no user)."""


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at ``path``: a claim named so (Okta's and Auth0's namespaced claims are URLs with
    dots), else the dot-separated path through nested objects (``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _names(value: Any) -> list[str]:
    """A claim's values as names: a list, or one string (space- or comma-separated, as some IdPs send)."""
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value) if v]
    if isinstance(value, Sequence):
        return [str(v) for v in value if isinstance(v, (str, int))]
    return []


@dataclass(frozen=True)
class ClaimMapping:
    """Which claims make a principal. The defaults are Portevoix's own claims."""

    subject: str = "sub"
    tenant: str | None = "tenant"
    fixed_tenant: str | None = None
    roles: tuple[str, ...] = ("roles",)
    role_names: Mapping[str, Sequence[str]] = field(default_factory=dict)
    subsidiary: str | None = "subsidiary"

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ClaimMapping:
        return cls(subject=settings.auth_subject_claim, tenant=settings.auth_tenant_claim,
                   fixed_tenant=settings.auth_fixed_tenant, roles=tuple(settings.auth_roles_claims),
                   role_names=dict(settings.auth_role_mapping), subsidiary=settings.auth_subsidiary_claim)

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claim_at(claims, self.subject)
        if not isinstance(subject, (str, int)) or str(subject) == "":
            raise ClaimError(f"token has no {self.subject} claim (the user)")
        tenant = self.fixed_tenant or (claim_at(claims, self.tenant) if self.tenant else None)
        if not isinstance(tenant, str) or not tenant:
            raise ClaimError(f"token has no {self.tenant or 'tenant'} claim (the tenant)")
        subsidiary = claim_at(claims, self.subsidiary) if self.subsidiary else None
        if isinstance(subsidiary, list):
            subsidiary = subsidiary[0] if len(subsidiary) == 1 else None
        if not isinstance(subsidiary, (str, int)) or subsidiary == "":
            subsidiary = None
        return Principal(subject=str(subject), tenant=tenant, roles=self.roles_of(claims),
                         subsidiary=None if subsidiary is None else str(subsidiary))

    def roles_of(self, claims: Mapping[str, Any]) -> frozenset[str]:
        names = {name for path in self.roles for name in _names(claim_at(claims, path))}
        if not self.role_names:
            return frozenset(names)
        return frozenset(role for name in names for role in self.role_names.get(name, ()))


NATIVE_CLAIMS = ClaimMapping()


class TokenVerifier:
    def __init__(self, settings: ServiceSettings) -> None:
        self.secret = settings.jwt_hs256_secret.get_secret_value() if settings.jwt_hs256_secret else None
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None
        self.mapping = ClaimMapping.from_settings(settings)
        if not self.secret and not self.jwks:
            raise ValueError("configure PORTEVOIX_JWT_HS256_SECRET or PORTEVOIX_JWT_JWKS_URL")

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; 401 with the reason otherwise."""
        try:
            return await self.principal(token)
        except (jwt.PyJWTError, ValueError) as error:
            raise HTTPException(401, f"invalid token: {error}", headers={"WWW-Authenticate": "Bearer"}) from error

    async def principal(self, token: str) -> Principal:
        """Like :meth:`verify`, raising ``jwt.PyJWTError`` or :class:`ClaimError` (a ValueError)."""
        header = jwt.get_unverified_header(token)
        if header.get("alg") == "HS256" and self.secret:
            key: Any = self.secret
            algorithms = ["HS256"]
            mapping = NATIVE_CLAIMS  # our own tokens
        elif self.jwks is not None:
            # The JWKS fetch is blocking I/O (cached after the first call).
            key = (await asyncio.to_thread(self.jwks.get_signing_key_from_jwt, token)).key
            algorithms = ["RS256", "ES256", "PS256"]
            mapping = self.mapping
        else:
            raise jwt.InvalidTokenError(f"algorithm {header.get('alg')!r} not accepted")
        claims = jwt.decode(
            token, key, algorithms=algorithms, audience=self.audience, issuer=self.issuer,
            options={"require": ["exp"], "verify_aud": self.audience is not None},
            leeway=30,
        )
        return mapping.principal(claims)

    @staticmethod
    def unverified(token: str) -> dict[str, Any]:
        """The claims of a token verified earlier (or whose signature does not matter here)."""
        return dict(jwt.decode(token, options={"verify_signature": False}))


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


def require(*roles: str, source: Callable[..., object] = current_principal) -> Callable[..., object]:
    """A FastAPI dependency: the caller (as ``source`` finds him: the bearer token by default) must
    hold one of ``roles``."""
    # Security scopes: the OpenAPI document lists the roles in the operation's bearer requirement
    # (OpenAPI 3.1: role names for non-OAuth schemes), read from here, so it cannot drift.
    async def dependency(principal: Principal = Security(source, scopes=list(roles))) -> Principal:
        if roles and not principal.has(*roles):  # no roles: any signed-in caller
            raise HTTPException(403, f"requires one of the roles: {', '.join(roles)}")
        return principal
    return dependency
