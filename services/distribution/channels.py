"""The outside channels an alert goes through: e-mail over SMTP, a Slack-compatible Web API, a
Microsoft Teams-compatible incoming webhook and a generic webhook signed with the Standard
Webhooks scheme. Each renders what it sends and reports a failure as :class:`SendFailed`
(retryable or not); the delivery worker decides what happens next."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx


class SendFailed(Exception):
    def __init__(self, cause: str, retryable: bool = True) -> None:
        super().__init__(cause)
        self.retryable = retryable


@dataclass(frozen=True)
class Link:
    network: str
    tracked_url: str
    share_url: str
    text: str


@dataclass(frozen=True)
class Item:
    """One content as an ambassador is told about it."""

    notification_id: str
    content_id: str
    title: str
    url: str
    links: list[Link]


@dataclass(frozen=True)
class Endpoint:
    url: str
    secret: str | None = None


@dataclass(frozen=True)
class Recipient:
    ambassador_id: str
    email: str | None


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    start_tls: bool = False
    use_tls: bool = False
    timeout: float = 10.0


def plain_text(items: list[Item]) -> str:
    parts = []
    for item in items:
        lines = [item.title, item.url, ""]
        for link in item.links:
            lines.append(f"Share on {link.network}: {link.share_url}")
            lines.append(f"  Link to share: {link.tracked_url}")
            if link.text:
                lines.append(f"  Suggested text: {link.text}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


@dataclass
class Email:
    smtp: SmtpSettings

    def endpoint_key(self, tenant: str) -> str:
        return f"smtp://{self.smtp.host}:{self.smtp.port}"

    async def alert(self, endpoint: Endpoint | None, recipient: Recipient, items: list[Item],
                    message_id: str) -> dict[str, Any] | None:
        if not recipient.email:
            raise SendFailed("the ambassador has no e-mail address in the directory", retryable=False)
        message = EmailMessage()
        message["From"] = self.smtp.sender
        message["To"] = recipient.email
        message["Subject"] = (f"To share: {items[0].title}" if len(items) == 1
                              else f"Your daily digest: {len(items)} posts to share")
        message["Message-ID"] = f"<{message_id}@portevoix>"
        message.set_content(plain_text(items))
        try:
            await aiosmtplib.send(
                message, hostname=self.smtp.host, port=self.smtp.port, username=self.smtp.username,
                password=self.smtp.password, start_tls=self.smtp.start_tls, use_tls=self.smtp.use_tls,
                timeout=self.smtp.timeout)
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise SendFailed(f"SMTP refused the recipient: {error}", retryable=False) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise SendFailed(f"SMTP: {type(error).__name__}: {error}") from error
        return None


@dataclass
class Http:
    """What the HTTP channels share: one httpx client, statuses read the same way."""

    client: httpx.AsyncClient

    def endpoint_key(self, tenant: str) -> str:
        return f"{tenant}/{type(self).__name__.lower()}"

    async def post(self, url: str, *, json_body: Any = None, content: bytes | None = None,
                   form: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = await self.client.post(url, json=json_body, content=content, data=form, headers=headers)
        except httpx.HTTPError as error:
            raise SendFailed(f"{type(error).__name__}: {error or 'no answer'} ({url})") from error
        if response.status_code >= 400:
            retryable = response.status_code >= 500 or response.status_code in (408, 409, 425, 429)
            raise SendFailed(f"HTTP {response.status_code} from {url}: {response.text[:300]}", retryable=retryable)
        return response


def _endpoint(endpoint: Endpoint | None, channel: str) -> Endpoint:
    if endpoint is None:
        raise SendFailed(f"the tenant has no {channel} endpoint configured", retryable=False)
    return endpoint


@dataclass
class Slack(Http):
    """Slack Web API (or a compatible server): the user is found by his directory e-mail, the
    message goes to him as the bot; its channel and ts let us edit or delete it later."""

    async def _call(self, endpoint: Endpoint, method: str, body: dict[str, Any], form: bool = False) -> dict[str, Any]:
        # Slack takes JSON bodies on write methods only; read methods take form fields.
        response = await self.post(f"{endpoint.url.rstrip('/')}/{method}", json_body=None if form else body,
                                   form=body if form else None,
                                   headers={"Authorization": f"Bearer {endpoint.secret or ''}"})
        answer = response.json()
        if not answer.get("ok"):
            error = answer.get("error", "unknown_error")
            retryable = error in ("ratelimited", "internal_error", "fatal_error", "service_unavailable")
            raise SendFailed(f"Slack {method}: {error}", retryable=retryable)
        return answer

    async def alert(self, endpoint: Endpoint | None, recipient: Recipient, items: list[Item],
                    message_id: str) -> dict[str, Any] | None:
        endpoint = _endpoint(endpoint, "slack")
        if not recipient.email:
            raise SendFailed("the ambassador has no e-mail address to find him on Slack", retryable=False)
        user = await self._call(endpoint, "users.lookupByEmail", {"email": recipient.email}, form=True)
        answer = await self._call(endpoint, "chat.postMessage",
                                  {"channel": user["user"]["id"], "text": plain_text(items), "unfurl_links": False})
        return {"channel": answer["channel"], "ts": answer["ts"]}

    async def update(self, endpoint: Endpoint | None, ref: dict[str, Any], item: Item, message_id: str) -> None:
        await self._call(_endpoint(endpoint, "slack"), "chat.update",
                         {"channel": ref["channel"], "ts": ref["ts"], "text": plain_text([item])})

    async def retract(self, endpoint: Endpoint | None, ref: dict[str, Any], item: Item, message_id: str) -> None:
        await self._call(_endpoint(endpoint, "slack"), "chat.delete", {"channel": ref["channel"], "ts": ref["ts"]})


@dataclass
class Teams(Http):
    """A Teams incoming webhook (or Workflows webhook): an Adaptive Card mentioning the
    ambassador by e-mail. Such webhooks cannot edit or delete what they posted."""

    async def alert(self, endpoint: Endpoint | None, recipient: Recipient, items: list[Item],
                    message_id: str) -> dict[str, Any] | None:
        endpoint = _endpoint(endpoint, "teams")
        email = recipient.email or ""
        body: list[dict[str, Any]] = [{"type": "TextBlock", "text": f"<at>{email}</at>, new posts to share"}]
        for item in items:
            body.append({"type": "TextBlock", "text": item.title, "weight": "Bolder", "wrap": True})
            body += [{"type": "TextBlock", "text": link.text, "wrap": True} for link in item.links[:1] if link.text]
        actions = [{"type": "Action.OpenUrl", "title": f"Share on {link.network}", "url": link.share_url}
                   for item in items for link in item.links]
        card = {"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "version": "1.4", "body": body, "actions": actions,
                "msteams": {"entities": [{"type": "mention", "text": f"<at>{email}</at>",
                                          "mentioned": {"id": email, "name": email}}]}}
        await self.post(endpoint.url, json_body={"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]})
        return None


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: HMAC-SHA256 of ``id.timestamp.body`` with the base64 key of ``whsec_…``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class Webhook(Http):
    """A generic intranet webhook, signed with the Standard Webhooks scheme; it is told when a
    notification is sent, updated and retracted (the payloads are in README, "Notifications").
    ``webhook-id`` is the delivery's id: the same on every retry, so the receiver can
    deduplicate."""

    clock: Any = field(default=time.time)

    async def _send(self, endpoint: Endpoint | None, event_type: str, data: dict[str, Any], message_id: str) -> None:
        endpoint = _endpoint(endpoint, "webhook")
        timestamp = int(self.clock())
        body = json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", "webhook-id": message_id,
                   "webhook-timestamp": str(timestamp)}
        if endpoint.secret:
            headers["webhook-signature"] = sign(endpoint.secret, message_id, timestamp, body)
        await self.post(endpoint.url, content=body, headers=headers)

    async def alert(self, endpoint: Endpoint | None, recipient: Recipient, items: list[Item],
                    message_id: str) -> dict[str, Any] | None:
        [item] = items
        await self._send(endpoint, "notification.sent", _webhook_data(item, recipient), message_id)
        return {"webhook_id": message_id}

    async def update(self, endpoint: Endpoint | None, ref: dict[str, Any], item: Item, message_id: str) -> None:
        await self._send(endpoint, "notification.updated", _webhook_data(item, None), message_id)

    async def retract(self, endpoint: Endpoint | None, ref: dict[str, Any], item: Item, message_id: str) -> None:
        await self._send(endpoint, "notification.retracted",
                         {"notification_id": item.notification_id, "content_id": item.content_id}, message_id)


def _webhook_data(item: Item, recipient: Recipient | None) -> dict[str, Any]:
    """What the intranet shows, and to whom by the pseudonymous ambassador id only (the
    intranet learns its signed-in user's id from ``GET /v1/me/consent``): never the e-mail or
    any HR data, which the intranet's operator, logs and proxies have no need of."""
    data: dict[str, Any] = {
        "notification_id": item.notification_id, "content_id": item.content_id, "title": item.title,
        "url": item.url, "links": [link.__dict__ for link in item.links]}
    if recipient is not None:
        data["ambassador_id"] = recipient.ambassador_id
    return data
