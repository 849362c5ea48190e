"""Request ids: one per HTTP request or WebSocket connection, for the log lines it causes.

A client (or a proxy in front of the server) may send ``X-Request-ID``; it is kept if it is
a sane token: 1 to 64 characters of ``A-Z a-z 0-9 . _ -`` that the redaction filter would
leave alone (an id shaped like a key would otherwise be written into every log line of its
request). Anything else is replaced by a fresh id. The id is echoed in the response's
``X-Request-ID`` header (for a WebSocket, in the handshake's answer), and set in
``logs.REQUEST_ID`` while the request is handled, so every line logged meanwhile carries it.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plancast.server.logs import REQUEST_ID, redact

HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_from(value: str | None) -> str:
    """``value`` when it is a sane request id, else a new one."""
    if value is not None and _SANE.fullmatch(value) and redact(value) == value:
        return value
    return uuid.uuid4().hex


class RequestIds:
    """ASGI middleware: take or make the request id, expose it to logging, echo it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope).get(HEADER))

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message.setdefault("headers", [])  # an accept may carry none
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
