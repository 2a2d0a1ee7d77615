"""Signing in and out of the web front: the OpenID Connect authorization code flow with PKCE
(``/auth/login`` → the provider → ``/auth/callback``), the demo's local login and the sign-in with a
token, all ending in the same cookie session; ``/auth/session`` tells the pages who is signed in,
``/auth/logout`` ends the session here and at the provider (RP-initiated logout)."""

from __future__ import annotations

import contextlib
import hmac
import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from services.web import domain, handlers, repository, sessions
from services.web.models import LoginRequest, SessionInfo, SignedOutAnswer, TokenSignIn
from services.web.oidc import OidcClient, OidcError, Tokens, random_token

log = logging.getLogger(__name__)

auth = APIRouter(tags=["sign-in"])
BROWSER_ONLY = False  # include_in_schema: navigations of the browser, not an API


def _settings(request: Request) -> Any:
    return request.app.state.settings


def _oidc(request: Request) -> OidcClient | None:
    return getattr(request.app.state, "oidc", None)


def _redirect_uri(request: Request) -> str:
    return _settings(request).web_oidc_redirect_uri or f"{sessions.origin(request)}/auth/callback"


def _to_login(request: Request, error: str, *, clear_sign_in: bool = True) -> RedirectResponse:
    answer = RedirectResponse(f"/login?{urlencode({'error': domain.sign_in_error(error)})}", 303)
    if clear_sign_in:
        sessions.clear_cookie(answer, sessions.SIGN_IN_COOKIE, request)
    return answer


def _check_origin(request: Request) -> None:
    """Login CSRF: a sign-in posted from another site is refused."""
    if not domain.same_origin(request.headers.get("origin"), sessions.origin(request)):
        raise HTTPException(403, {"reason": "csrf", "message": "cross-origin request refused"})


@auth.get("/auth/login", include_in_schema=BROWSER_ONLY)
async def oidc_login(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    """Start the authorization code flow: a sign-in bound to this browser, then the provider."""
    oidc = _oidc(request)
    if oidc is None:
        return _to_login(request, "not_configured", clear_sign_in=False)
    sign_in, state, nonce, verifier = random_token(), random_token(), random_token(), random_token()
    try:
        url = await oidc.authorization_url(_redirect_uri(request), state, nonce, verifier)
    except OidcError as error:
        log.warning("web: sign-in not started: %s", error)
        return _to_login(request, "provider_unavailable", clear_sign_in=False)
    async with request.app.state.service.pool.acquire() as conn:
        await repository.insert_sign_in(conn, sessions.id_hash(sign_in), state, nonce, verifier,
                                        domain.safe_return_path(next))
    answer = RedirectResponse(url, 302)
    sessions.set_cookie(answer, sessions.SIGN_IN_COOKIE, request, sign_in, sessions.SIGN_IN_MAX_AGE_SECONDS)
    return answer


@auth.get("/auth/callback", include_in_schema=BROWSER_ONLY)
async def oidc_callback(request: Request, code: Annotated[str | None, Query(max_length=4000)] = None,
                        state: Annotated[str | None, Query(max_length=1000)] = None,
                        error: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """The provider sends the browser back: the sign-in of this browser, its state, the code
    exchanged with the PKCE verifier, the ID token's nonce, then the session."""
    oidc, cookie = _oidc(request), sessions.read_cookie(sessions.SIGN_IN_COOKIE, request)
    pending = None
    if cookie:
        async with request.app.state.service.pool.acquire() as conn:
            pending = await repository.take_sign_in(conn, sessions.id_hash(cookie), sessions.SIGN_IN_MAX_AGE_SECONDS)
    if oidc is None:
        return _to_login(request, "not_configured")
    if error:
        return _to_login(request, error)
    if pending is None or not state or not hmac.compare_digest(state.encode(), pending["state"].encode()):
        return _to_login(request, "state_mismatch")
    if not code:
        return _to_login(request, "invalid_request")
    try:
        tokens = await oidc.exchange(code, _redirect_uri(request), pending["code_verifier"])
        if not tokens.id_token:
            raise OidcError("no ID token: is `openid` among the scopes?")
        await oidc.id_claims(tokens.id_token, pending["nonce"])
        principal = await request.app.state.token_verifier.principal(tokens.access_token)
    except OidcError as refused:
        log.warning("web: sign-in refused: %s", refused)
        return _to_login(request, "nonce_mismatch" if "nonce" in str(refused) else "token_refused")
    except Exception as refused:  # e.g. ClaimError: the services would refuse this access token
        log.warning("web: sign-in refused, access token not accepted: %s", refused)
        return _to_login(request, "token_refused")
    answer = RedirectResponse(pending["return_to"] or domain.landing(principal.roles), 303)
    await sessions.open_session(request, answer, "oidc", principal, tokens, sessions.access_expiry(tokens))
    sessions.clear_cookie(answer, sessions.SIGN_IN_COOKIE, request)
    return answer


@auth.get("/auth/session", response_model=SessionInfo, include_in_schema=BROWSER_ONLY)
async def current_session(request: Request) -> dict[str, Any]:
    """Who is signed in, and the CSRF token the pages send with every change."""
    caller = await sessions.caller(request)
    row = caller.session or {"kind": "bearer", "csrf_token": None, "expires_at": None}
    return sessions.describe(row, caller.principal)


@auth.post("/auth/logout", include_in_schema=BROWSER_ONLY)
async def logout(request: Request) -> JSONResponse:
    """End the session here, then at the provider: the page goes to ``redirect``."""
    with contextlib.suppress(sessions.SignedOut):  # signed out already: nothing left to end here
        await sessions.caller(request)  # CSRF-checked: no one else may sign you out
    ended = await sessions.end_session(request)
    signed_out = f"{sessions.origin(request)}/login?reason=logged_out"
    redirect = "/login?reason=logged_out"
    oidc = _oidc(request)
    if ended and ended["kind"] == "oidc" and oidc is not None:
        redirect = await oidc.end_session_url(
            ended["id_token"], _settings(request).web_oidc_post_logout_redirect_uri or signed_out) or redirect
    answer = JSONResponse({"redirect": redirect})
    sessions.clear_cookie(answer, sessions.SESSION_COOKIE, request)
    return answer


@auth.post("/login", response_model=SessionInfo, summary="Demo login: a session for any user and roles "
           "(only with PORTEVOIX_WEB_LOCAL_LOGIN=true; production signs in with the enterprise's OIDC provider "
           "at /auth/login)", responses={403: {"description": "Posted from another origin"},
                                         404: {"description": "Local login is off"},
                                         422: {"description": "Unknown role"}})
async def local_login(body: LoginRequest, request: Request, response: Response) -> dict[str, Any]:
    s = _settings(request)
    if not s.web_local_login or s.jwt_hs256_secret is None:
        raise HTTPException(404, "local login is off: sign in with your identity provider")
    _check_origin(request)
    unknown = domain.invalid_local_roles(body.roles)
    if unknown:
        raise HTTPException(422, f"unknown roles: {', '.join(unknown)}")
    token = handlers.local_token(s.jwt_hs256_secret.get_secret_value(), s.jwt_audience, body.tenant, body.subject,
                                 sorted(set(body.roles)), body.subsidiary, s.web_login_ttl_seconds, s.jwt_issuer)
    return await _open(request, response, "local", token)


@auth.post("/auth/token", response_model=SessionInfo, responses={401: {"model": SignedOutAnswer}},
           include_in_schema=BROWSER_ONLY)
async def token_sign_in(body: TokenSignIn, request: Request, response: Response) -> dict[str, Any]:
    """Sign in with a token from the identity provider (administrators, API tests): checked as the
    services check it, then kept server-side like any other session."""
    _check_origin(request)
    return await _open(request, response, "token", body.token.strip())


async def _open(request: Request, response: Response, kind: str, token: str) -> dict[str, Any]:
    try:
        principal = await request.app.state.token_verifier.principal(token)
    except Exception as error:  # expired, wrongly signed, not a JWT, no tenant…
        raise sessions.SignedOut("token_refused", str(error) or type(error).__name__) from None
    tokens = Tokens(token, None, None, None)
    return await sessions.open_session(request, response, kind, principal, tokens, sessions.access_expiry(tokens))
