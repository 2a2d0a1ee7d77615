"""The targets distribution delivers to, on loopback, under the suite's control: an intranet
webhook endpoint that can be made to answer 500, and an SMTP server that can be stopped. Each
counts what it accepted per message id (``webhook-id``, ``Message-ID``): a notification
delivered twice shows as more acceptances than distinct ids."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from email import message_from_bytes
from typing import Any

from aiosmtpd.controller import Controller

from deploy.reliability.harness import free_port


class WebhookReceiver:
    """A minimal HTTP/1.1 server (keep-alive, Content-Length bodies): enough for distribution's
    client, and no web framework between the suite and what it counts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.failing = False
        self.accepted: Counter[str] = Counter()  # webhook-id → times answered 2xx
        self.refused = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/portevoix"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def duplicates(self) -> int:
        return sum(self.accepted.values()) - len(self.accepted)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = _headers(head)
                await reader.readexactly(int(headers.get("content-length", "0")))
                if self.failing:
                    self.refused += 1
                    writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")
                else:
                    self.accepted[headers.get("webhook-id", "")] += 1
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines) if name}


class SmtpReceiver:
    """aiosmtpd on loopback (it runs its own thread); ``down()`` closes the port, ``up()`` opens
    it again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted: Counter[str] = Counter()  # Message-ID → times accepted
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def up(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def duplicates(self) -> int:
        with self._lock:
            return sum(self.accepted.values()) - len(self.accepted)

    def distinct(self) -> int:
        with self._lock:
            return len(self.accepted)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        message_id = message_from_bytes(envelope.original_content or envelope.content).get("Message-ID", "")
        with self._lock:
            self.accepted[message_id] += 1
        return "250 OK"
