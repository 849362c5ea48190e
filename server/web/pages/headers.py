"""The pages' own security headers, set before ``SecurityHeaders`` adds the API's defaults.

The API's policy (``default-src 'none'``) would stop a page from loading its own style sheet
and script, so pages allow this server's files and nothing else: still no inline script, no
other origin, no framing. The referrer policy is ``same-origin`` rather than the API's
``no-referrer`` because under ``no-referrer`` a browser sends ``Origin: null`` with a form's
POST, and the CSRF check needs the real origin (``csrf.py``). Pages show org data, so they are
not cached; the static files are.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", PAGE_CONTENT_SECURITY_POLICY.encode("latin-1")),
    (b"referrer-policy", b"same-origin"),
]
_NO_STORE = (b"cache-control", b"no-store")


class PageHeaders:
    """ASGI middleware for the ``/web`` mount."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/web/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += _HEADERS if static else [*_HEADERS, _NO_STORE]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
