"""Browser sessions of the backend-for-frontend: the cookie names a server-side session holding the
tokens; every call of the pages is authenticated by it, state-changing ones also by the session's
CSRF token (header ``X-CSRF-Token``) and their ``Origin``. The access token is refreshed shortly
before it expires, one refresh at a time per session (row lock), and read with the services' own
verifier (``shared.auth``), so the front and the services see the same principal.

Clients without a browser (scripts, tests) may still send ``Authorization: Bearer``: such a call
uses no cookie, so it needs no CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
import jwt
from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from services.web import domain, repository
from services.web.oidc import OidcClient, OidcError, OidcUnavailable, Tokens, random_token
from shared.auth import Principal, TokenVerifier, bearer, current_principal
from shared.logs import note_tenant

log = logging.getLogger(__name__)

SESSION_COOKIE = ("__Host-portevoix-session", "portevoix-session")  # (Secure, plain-http loopback)
SIGN_IN_COOKIE = ("__Host-portevoix-sign-in", "portevoix-sign-in")
CSRF_HEADER = "x-csrf-token"
SIGN_IN_MAX_AGE_SECONDS = 600


class SignedOut(HTTPException):
    """401 with a reason the sign-in page turns into a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(401, {"reason": reason, "message": message})


@dataclass(frozen=True)
class Caller:
    principal: Principal
    authorization: str  # what the services get: "Bearer …"
    session: dict[str, Any] | None  # None: a bearer client


def id_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _settings(request: Request) -> Any:
    return request.app.state.settings


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.service.pool


def _verifier(request: Request) -> TokenVerifier:
    verifier = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise HTTPException(503, "authentication is not configured (PORTEVOIX_JWT_HS256_SECRET or _JWKS_URL)")
    return verifier


def is_secure(request: Request) -> bool:
    return domain.secure_cookie(_settings(request).web_session_cookie_secure, request.headers.get("host", ""))


def cookie_name(pair: tuple[str, str], request: Request) -> str:
    return pair[0] if is_secure(request) else pair[1]


def read_cookie(pair: tuple[str, str], request: Request) -> str | None:
    return request.cookies.get(pair[0]) or request.cookies.get(pair[1])


def set_cookie(response: Response, pair: tuple[str, str], request: Request, value: str, max_age: int) -> None:
    response.set_cookie(cookie_name(pair, request), value, max_age=max_age, path="/", secure=is_secure(request),
                        httponly=True, samesite="lax")


def clear_cookie(response: Response, pair: tuple[str, str], request: Request) -> None:
    response.delete_cookie(cookie_name(pair, request), path="/", secure=is_secure(request), httponly=True,
                           samesite="lax")


def origin(request: Request) -> str:
    """This front's origin as browsers see it: PORTEVOIX_WEB_PUBLIC_URL, else the request's."""
    public = _settings(request).web_public_url
    if public:
        scheme, _, rest = public.partition("://")
        return f"{scheme}://{rest.split('/')[0]}"
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


async def open_session(request: Request, response: Response, kind: str, principal: Principal, tokens: Tokens,
                       access_expires_at: float) -> dict[str, Any]:
    """A new session for ``principal``, its cookie set on ``response``; what the page may know of it."""
    s = _settings(request)
    session_id, now = random_token(), datetime.now(UTC)
    row: dict[str, Any] = {
        "id_hash": id_hash(session_id), "kind": kind, "tenant": principal.tenant, "subject": principal.subject,
        "csrf_token": random_token(), "access_token": tokens.access_token,
        "access_expires_at": datetime.fromtimestamp(access_expires_at, UTC),
        "refresh_token": tokens.refresh_token, "id_token": tokens.id_token,
        "expires_at": now + timedelta(seconds=s.web_session_max_seconds)}
    if not tokens.refresh_token:  # nothing can extend it: it ends with its token
        row["expires_at"] = min(row["expires_at"], row["access_expires_at"])
    previous = read_cookie(SESSION_COOKIE, request)
    async with _pool(request).acquire() as conn:
        await repository.purge_expired(conn, SIGN_IN_MAX_AGE_SECONDS)
        if previous:  # signing in again replaces the session this browser had
            await repository.delete_session(conn, id_hash(previous))
        await repository.insert_session(conn, row)
    set_cookie(response, SESSION_COOKIE, request, session_id, s.web_session_max_seconds)
    return describe(row, principal)


def describe(row: dict[str, Any], principal: Principal) -> dict[str, Any]:
    return {"subject": principal.subject, "tenant": principal.tenant, "roles": sorted(principal.roles),
            "subsidiary": principal.subsidiary, "kind": row["kind"], "csrf_token": row["csrf_token"],
            "expires_at": row["expires_at"], "landing": domain.landing(principal.roles)}


async def caller(request: Request) -> Caller:
    """Who calls: a bearer client, or a browser by its session cookie (CSRF-checked for changes).
    Kept on the request: the proxy and the front's routes ask once."""
    known = getattr(request.state, "caller", None)
    if known is not None:
        return known
    header = request.headers.get("authorization")
    if header:
        scheme, _, credentials = header.partition(" ")
        principal = await current_principal(request, HTTPAuthorizationCredentials(scheme=scheme,
                                                                                  credentials=credentials))
        found = Caller(principal, header, None)
    else:
        found = await _session_caller(request)
    request.state.caller = found
    return found


async def _session_caller(request: Request) -> Caller:
    cookie = read_cookie(SESSION_COOKIE, request)
    if not cookie:
        raise SignedOut("signed_out", "not signed in")
    key = id_hash(cookie)
    async with _pool(request).acquire() as conn:
        row = await repository.session(conn, key)
    if row is None:
        raise SignedOut("expired", "your session has ended: sign in again")
    if request.method in domain.UNSAFE_METHODS:
        _check_csrf(request, row)
    if domain.needs_refresh(row["access_expires_at"].timestamp(), time.time(),
                            _settings(request).web_session_refresh_margin_seconds):
        row = await _refresh(request, key)
    try:
        principal = await _verifier(request).principal(row["access_token"])
    except jwt.PyJWKClientConnectionError:  # the provider's keys out of reach: nothing was refused
        raise HTTPException(503, "the identity provider's keys are unreachable", headers={"Retry-After": "5"}) from None
    except (jwt.PyJWTError, ValueError) as error:  # a token the services would refuse: the session is over
        log.info("web: session token refused (%s): session ended", type(error).__name__)
        async with _pool(request).acquire() as conn:
            await repository.delete_session(conn, key)
        raise SignedOut("expired", "your session is no longer valid: sign in again") from None
    note_tenant(principal.tenant)
    return Caller(principal, f"Bearer {row['access_token']}", row)


def _check_csrf(request: Request, row: dict[str, Any]) -> None:
    if not domain.same_origin(request.headers.get("origin"), origin(request)):
        raise HTTPException(403, {"reason": "csrf", "message": "cross-origin request refused"})
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), row["csrf_token"].encode()):
        raise HTTPException(403, {"reason": "csrf", "message": "missing or wrong CSRF token (X-CSRF-Token)"})


async def _refresh(request: Request, key: str) -> dict[str, Any]:
    """Refresh the access token, once per session even when several calls arrive together: the
    row is locked, and a call that waited finds it fresh. A session that cannot go on is deleted
    (committed) before the 401."""
    async with _pool(request).acquire() as conn:
        async with conn.transaction():
            row = await repository.session(conn, key, lock=True)
            fresh = await _renewed(request, conn, key, row) if row else None
            if row and fresh is None:
                await repository.delete_session(conn, key)
        if fresh is None:
            raise SignedOut("expired", "your session has ended: sign in again")
        return fresh


async def _renewed(request: Request, conn: asyncpg.Connection, key: str, row: dict[str, Any]) -> dict[str, Any] | None:
    """The session with a usable access token, refreshed if need be; None: it cannot go on."""
    s, oidc = _settings(request), getattr(request.app.state, "oidc", None)
    if not domain.needs_refresh(row["access_expires_at"].timestamp(), time.time(),
                                s.web_session_refresh_margin_seconds):
        return row  # another call refreshed it meanwhile
    if not (row["refresh_token"] and isinstance(oidc, OidcClient)):
        return row if row["access_expires_at"].timestamp() > time.time() else None  # used until it expires
    try:
        tokens = await oidc.refresh(row["refresh_token"])
        if tokens.id_token:
            await _same_person(oidc, tokens.id_token, row)
    except OidcUnavailable as error:  # not refused: the session goes on while its token does
        log.warning("web: refresh postponed: %s", error)
        if row["access_expires_at"].timestamp() > time.time():
            return row
        raise HTTPException(503, "the identity provider is unreachable", headers={"Retry-After": "5"}) from None
    except OidcError as error:
        log.info("web: refresh refused (%s): session ended", error)
        return None
    expires = datetime.fromtimestamp(access_expiry(tokens), UTC)
    await repository.refreshed_session(conn, key, tokens.access_token, expires, tokens.refresh_token, tokens.id_token)
    return {**row, "access_token": tokens.access_token, "access_expires_at": expires,
            "refresh_token": tokens.refresh_token or row["refresh_token"],
            "id_token": tokens.id_token or row["id_token"]}


async def _same_person(oidc: OidcClient, id_token: str, row: dict[str, Any]) -> None:
    """OIDC Core 12.2: a refreshed ID token is about the same person."""
    claims = await oidc.id_claims(id_token, None)
    if row["id_token"]:
        first = TokenVerifier.unverified(row["id_token"])
        if claims.get("sub") != first.get("sub"):
            raise OidcError("refreshed ID token is about someone else")


def access_expiry(tokens: Tokens) -> float:
    """When the access token ends: its ``exp`` if it is a JWT, else ``expires_in`` from now."""
    try:
        exp = TokenVerifier.unverified(tokens.access_token).get("exp")
    except Exception:  # an opaque token
        exp = None
    if isinstance(exp, (int, float)):
        return float(exp)
    return time.time() + (tokens.expires_in or 300)


async def principal(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """FastAPI dependency of the front's own routes (``shared.auth.require(..., source=principal)``)."""
    return (await caller(request)).principal


async def end_session(request: Request) -> dict[str, Any] | None:
    cookie = read_cookie(SESSION_COOKIE, request)
    if not cookie:
        return None
    async with _pool(request).acquire() as conn:
        return await repository.delete_session(conn, id_hash(cookie))
