"""Security headers on every HTTP response, for whatever a browser does with it.

The API serves JSON, never a page, so the defaults forbid everything a page could do: no
sniffing a JSON body into HTML or script, no framing, no referrer, no subresources, its own
browsing-context group. API responses are not cached unless a route says otherwise (they
carry plans and code). Strict-Transport-Security is sent only by a server that speaks TLS
itself: sent over plain HTTP, a browser ignores it; behind a TLS proxy, the proxy owns it.

A header that a route set is never replaced, so a page that needs another
Content-Security-Policy sets its own (or its mount passes ``content_security_policy``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS_MAX_AGE_S = 2 * 365 * 24 * 3600  # two years, as hstspreload.org recommends


class SecurityHeaders:
    """ASGI middleware: add the headers below to each HTTP response that lacks them."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        content_security_policy: str = API_CONTENT_SECURITY_POLICY,
        hsts: bool = False,
    ) -> None:
        self.app = app
        headers = {
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "no-referrer",
            "content-security-policy": content_security_policy,
            "cross-origin-opener-policy": "same-origin",
        }
        if hsts:
            headers["strict-transport-security"] = f"max-age={HSTS_MAX_AGE_S}"
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.headers if k not in present]
                if api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
