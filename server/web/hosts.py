"""Refusing requests whose Host header is not one this server answers to.

On loopback it is a second line against DNS rebinding (the first is the access
token). Unlike Starlette's TrustedHostMiddleware, the refusal has the one JSON
error shape of ``web/errors.py``, and a WebSocket is closed instead of answered.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from plancast.server.web.errors import error_response
from plancast.shared import ErrorCode

CLOSE_FORBIDDEN_HOST = 4403


class HostCheck:
    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.lower() in self.allowed:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN_HOST, "reason": ""})
            return
        response = error_response(
            ErrorCode.FORBIDDEN, "this server does not answer to that Host name"
        )
        await response(scope, receive, send)
