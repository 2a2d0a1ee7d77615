"""The web front's decisions, pure: where a proxied call goes, which headers cross the proxy,
who may log in locally, which training text a reader gets, and whether a share may be recorded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote

SERVICES = ("content", "distribution", "tracking", "reporting")
LOCAL_ROLES = frozenset({"employee", "editor", "approver", "admin", "analyst", "privacy_officer"})
LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"

# What the browser may tell a service through the proxy: the credential, the body's type,
# content negotiation and the trace. Cookies stay with the web front; hop-by-hop headers are
# the proxy's own business (RFC 9110 §7.6.1).
REQUEST_HEADERS = frozenset({"authorization", "content-type", "accept", "accept-language", "traceparent",
                             "tracestate", "if-none-match", "if-modified-since"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "set-cookie"})


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


def may_record_share(read_version: int | None) -> bool:
    """A first share needs the training kit read (any version: a newer kit is shown, not imposed)."""
    return read_version is not None


def is_share_confirmation(service: str, method: str, path: str) -> bool:
    return service == "tracking" and method == "POST" and path.strip("/") == "v1/shares"
