"""Authenticating requests and WebSockets into a ``Principal``.

Local mode: the server makes a random access token on first start and keeps it
in its data folder (mode 0600); the client reads it from there. A token is
required even on loopback, so that another local user, or a web page the user
visits (DNS rebinding, cross-site requests), cannot drive the server.

Team mode: the bearer token is a sign-in session's (``domain/sessions.py``); the local
token does not exist there. The web pages' sessions travel in a cookie instead
(``SESSION_COOKIE``), which counts only where a caller passes ``allow_cookie``: the pages,
which check a CSRF token on every POST, and the read-only SSE route, since a browser's
EventSource cannot send an Authorization header. The JSON API never takes it, so a request
that a browser sends on its own, cookie attached, can change nothing there.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import HTTPConnection

from plancast.server.domain import orgs, sessions
from plancast.server.domain.principal import Principal
from plancast.server.errors import Forbidden, InvalidRequest, Unauthorized

TOKEN_FILE = "local-token"
SESSION_COOKIE = "plancast_session"


def load_or_create_token(data_dir: Path) -> str:
    """Read the local access token, creating it (0600) on first start."""
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def session_token(conn: HTTPConnection, *, allow_cookie: bool = False) -> str | None:
    """The session token a request carries: the bearer header, else (if allowed) the cookie."""
    token = bearer_token(conn)
    if token is None and allow_cookie:
        token = conn.cookies.get(SESSION_COOKIE) or None
    return token


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed in (team mode), before any org is involved: for the account's own routes."""

    user_id: str
    session_id: str
    org_id: str | None


async def identify(conn: HTTPConnection, *, allow_cookie: bool = False) -> Identity:
    """The signed-in user a team-mode request speaks for (``allow_cookie``: see the top).

    Raises:
        Unauthorized: no token; or (session_expired) a token of no live session.
        InvalidRequest: the server runs in local mode, which has no accounts.
    """
    state = conn.app.state
    if state.settings.mode != "team":
        raise InvalidRequest("this server runs in local mode: it has no accounts")
    token = session_token(conn, allow_cookie=allow_cookie)
    if token is None:
        raise Unauthorized("sign in first (Authorization: Bearer …)")
    async with state.db.begin() as c:
        session = await sessions.resolve(c, token, state.settings.session_idle_days * 86400)
    if isinstance(session, Unauthorized):
        raise session
    return Identity(session.user_id, session.id, session.org_id)


async def authenticate(conn: HTTPConnection, *, allow_cookie: bool = False) -> Principal:
    """The principal a request speaks for: the user, their current org, their role now.

    The role is read on every request, so a changed role or a removal counts at once.
    ``allow_cookie`` lets a team-mode web session's cookie count (see the top).

    Raises:
        Unauthorized: no token, or a wrong one (compared in constant time).
        Forbidden: team mode, and the user is not (or no longer) a member of the org.
    """
    state = conn.app.state
    if state.settings.mode == "team":
        who = await identify(conn, allow_cookie=allow_cookie)
        role = None
        if who.org_id is not None:
            async with state.db.connect() as c:
                role = await orgs.role_of(c, who.org_id, who.user_id)
        if who.org_id is None or role is None:
            raise Forbidden(
                "you are not a member of this org (any more): switch org, or ask for an invite"
            )
        await state.keys.enter(state.db, who.org_id)  # the org's data key for this request
        return Principal(who.user_id, who.org_id, role, who.session_id)
    token = bearer_token(conn)
    if token is None:
        raise Unauthorized("this server needs an access token (Authorization: Bearer …)")
    if not hmac.compare_digest(token.encode(), state.local_token.encode()):
        raise Unauthorized("the access token is not valid for this server")
    principal: Principal = state.local_principal
    await state.keys.enter(state.db, principal.org_id)
    return principal
