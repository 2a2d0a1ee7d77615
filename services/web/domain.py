"""The web front's decisions, pure: where a proxied call goes, which headers cross the proxy,
who may log in locally, which training text a reader gets, and whether a share may be recorded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote

SERVICES = ("content", "distribution", "tracking", "reporting")
LOCAL_ROLES = frozenset({"employee", "editor", "approver", "admin", "analyst", "privacy_officer"})
LANGUAGES = ("en", "fr", "de", "es")
DEFAULT_LANGUAGE = "en"

# What the browser may tell a service through the proxy: the credential, the body's type,
# content negotiation and the trace. Cookies stay with the web front; hop-by-hop headers are
# the proxy's own business (RFC 9110 §7.6.1).
REQUEST_HEADERS = frozenset({"authorization", "content-type", "accept", "accept-language", "traceparent",
                             "tracestate", "if-none-match", "if-modified-since"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "set-cookie"})


# The pages: their path, the roles that may open them (each page calls only APIs these roles may
# use), and the roles whose work is there. A person lands on the first page, in this order, where
# one of his roles works: his work before his own hub.
PAGES: dict[str, tuple[str, frozenset[str], frozenset[str]]] = {
    "studio": ("/studio", frozenset({"editor", "approver", "admin"}), frozenset({"editor", "approver"})),
    "watch": ("/watch", frozenset({"editor", "admin"}), frozenset()),
    "admin": ("/admin", frozenset({"admin"}), frozenset({"admin"})),
    "dashboard": ("/dashboard", frozenset({"analyst", "editor", "admin"}), frozenset({"analyst"})),
    "hub": ("/", frozenset({"employee"}), frozenset({"employee"})),
}
NAVIGATION = ("hub", "studio", "watch", "dashboard", "admin")


class UnknownService(LookupError):
    pass


def upstream_url(bases: Mapping[str, str], service: str, path: str, query: str) -> str:
    """The service URL a browser call to ``/api/{service}/{path}?{query}`` stands for. The path
    is re-quoted segment by segment, so it can neither leave the service's host nor go up."""
    if service not in SERVICES or service not in bases:
        raise UnknownService(service)
    segments = [s for s in path.split("/") if s not in ("", ".", "..")]
    url = bases[service].rstrip("/") + "/" + "/".join(quote(s, safe=":@!$&'()*+,;=-._~") for s in segments)
    return f"{url}?{query}" if query else url


def forwarded_request_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers if name.lower() in REQUEST_HEADERS}


def forwarded_response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() not in HOP_BY_HOP]


def invalid_local_roles(roles: Iterable[str]) -> list[str]:
    """Roles a demo login may not claim (empty: all fine)."""
    return sorted(set(roles) - LOCAL_ROLES)


def pages_for(roles: Iterable[str]) -> list[str]:
    """The pages a person with these roles may open, in navigation order."""
    held = frozenset(roles)
    return [page for page in NAVIGATION if held & PAGES[page][1]]


def landing(roles: Iterable[str]) -> str:
    """Where a person lands after signing in: where his work is (no known role: the hub, which
    says which role is missing)."""
    held = frozenset(roles)
    return next((path for path, _, works in PAGES.values() if held & works), "/")


def language_of(accepted: str | None) -> str:
    """``fr-FR`` → ``fr``; a language the front does not speak → English."""
    primary = (accepted or "").split(",")[0].split("-")[0].strip().lower()
    return primary if primary in LANGUAGES else DEFAULT_LANGUAGE


def training_text(texts: Mapping[str, str], language: str) -> tuple[str, str]:
    """(language, text) of the kit for a reader: his language, else English, else any."""
    for candidate in (language, DEFAULT_LANGUAGE, *sorted(texts)):
        if texts.get(candidate):
            return candidate, texts[candidate]
    return language, ""


def kit_version_exists(version: int, current: int) -> bool:
    """Versions 1..current were written in the studio; 0 is the settings file's default kit, shown
    before any was written (a reader may confirm it late)."""
    return 0 <= version <= current


def may_record_share(read_version: int | None, current_version: int) -> bool:
    """A share needs the training kit read in its current version: a new version is asked again of
    those who read an older one (0: the settings file's default kit, before any was written)."""
    return read_version is not None and read_version >= current_version


def is_share_confirmation(service: str, method: str, path: str) -> bool:
    return service == "tracking" and method == "POST" and path.strip("/") == "v1/shares"


# --- sign-in and sessions ----------------------------------------------------------------------

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
# What the sign-in page may be told about a failure (anything else from the provider is "failed").
SIGN_IN_ERRORS = frozenset({"access_denied", "login_required", "consent_required", "interaction_required",
                            "temporarily_unavailable", "server_error", "invalid_request", "unauthorized_client",
                            "invalid_scope", "state_mismatch", "nonce_mismatch", "expired", "token_refused",
                            "provider_unavailable", "not_configured"})


def safe_return_path(value: str | None) -> str | None:
    """A page of this front to come back to after signing in, or None: only a local path
    (``/studio?x=1``), never another origin (``//evil``, ``/\\evil``, ``https:…``)."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ord(c) < 0x20 or c == "\\" for c in value) or value.startswith(("/login", "/auth/")):
        return None
    return value


def sign_in_error(code: str | None) -> str:
    return code if code in SIGN_IN_ERRORS else "failed"


def same_origin(origin: str | None, expected: str) -> bool:
    """A state-changing call's ``Origin`` is this front's (absent: non-browser client, the CSRF token decides)."""
    return origin is None or origin.rstrip("/").lower() == expected.rstrip("/").lower()


def secure_cookie(wanted: bool, host: str) -> bool:
    """Session cookies are ``Secure``; only a plain-http front on loopback may turn it off."""
    return wanted or host.rsplit(":", 1)[0].lower() not in LOOPBACK_HOSTS and host.lower() not in LOOPBACK_HOSTS


def needs_refresh(access_expires_at: float, now: float, margin_seconds: float) -> bool:
    return access_expires_at - now <= margin_seconds
