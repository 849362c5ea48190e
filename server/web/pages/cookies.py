"""The pages' two cookies: the session, and the pre-session key of the sign-in forms.

Both are HttpOnly (no script reads them) and SameSite=Strict (no other site's page, link or
form makes the browser send them). They are Secure, so a browser sends them over HTTPS only,
except on a server bound to loopback without TLS and asked over plain HTTP: there nothing
crosses a network, and a browser need not keep a Secure cookie that came over plain HTTP.
A loopback server behind a TLS proxy on the same host still gets Secure cookies: uvicorn
takes the proxy's ``X-Forwarded-Proto: https`` from loopback, so the request reads as HTTPS.

The session cookie's path is ``/``: the live plan view follows its stream at
``/api/v1/streams/…/events``, where the cookie counts for GET only (``web/auth.py``).
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from plancast.server.domain.ids import now
from plancast.server.domain.signin import Issued
from plancast.server.web.auth import SESSION_COOKIE

PRESESSION_COOKIE = "plancast_presession"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def secure(request: Request) -> bool:
    settings = request.app.state.settings
    plain_loopback = settings.tls_certfile is None and settings.host in _LOOPBACK
    return not plain_loopback or request.url.scheme == "https"


def set_session(response: Response, request: Request, issued: Issued) -> None:
    """Sign the browser in: the session's token, until the session's own end at the latest."""
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=max(0, int(issued.session.expires_at - now())),
        path="/",
        secure=secure(request),
        httponly=True,
        samesite="strict",
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=secure(request), httponly=True, samesite="strict"
    )


def presession_key(request: Request) -> tuple[str, bool]:
    """The browser's pre-session key, or a new one: (key, whether it is new and must be set).

    It keys the CSRF token of the forms shown before a session exists (sign-in, verify,
    reset), so that another site cannot sign a browser in to an account of its choosing.
    """
    key = request.cookies.get(PRESESSION_COOKIE)
    if key:
        return key, False
    return secrets.token_urlsafe(32), True


def set_presession(response: Response, request: Request, key: str) -> None:
    """A browser-session cookie (no Max-Age): it only has to outlive filling in a form."""
    response.set_cookie(
        PRESESSION_COOKIE,
        key,
        path="/web",
        secure=secure(request),
        httponly=True,
        samesite="strict",
    )
