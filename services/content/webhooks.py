"""Standard Webhooks signatures (https://www.standardwebhooks.com), pure: no I/O.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is
HMAC-SHA256 with the secret (``whsec_`` + base64 key), base64-encoded, sent as ``v1,<sig>``
(several space-separated during a key rotation). Timestamps outside the tolerance are refused,
so a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


class InvalidSignature(Exception):
    pass


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidSignature("the source's secret is not valid base64") from error


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def verify(secret: str, webhook_id: str | None, timestamp: str | None, signatures: str | None, body: bytes, *,
           now: float, tolerance_seconds: float) -> None:
    """Raise :class:`InvalidSignature` with the reason, or return when the request is authentic."""
    if not webhook_id or not timestamp or not signatures:
        raise InvalidSignature("webhook-id, webhook-timestamp and webhook-signature headers are required")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not a Unix time in seconds") from None
    if abs(now - sent_at) > tolerance_seconds:
        raise InvalidSignature("webhook-timestamp is outside the tolerance")
    expected = sign(secret, webhook_id, sent_at, body).encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures.split()):
        raise InvalidSignature("no valid v1 signature")
