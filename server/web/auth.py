"""Authenticating requests and WebSockets into a ``Principal``.

Local mode: the server makes a random access token on first start and keeps it
in its data folder (mode 0600); the client reads it from there. A token is
required even on loopback, so that another local user, or a web page the user
visits (DNS rebinding, cross-site requests), cannot drive the server.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from starlette.requests import HTTPConnection

from plancast.server.domain.principal import Principal
from plancast.server.errors import Unauthorized

TOKEN_FILE = "local-token"


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


def authenticate(conn: HTTPConnection) -> Principal:
    """The principal a request speaks for.

    Raises:
        Unauthorized: no token, or a wrong one (compared in constant time).
    """
    state = conn.app.state
    token = bearer_token(conn)
    if token is None:
        raise Unauthorized("this server needs an access token (Authorization: Bearer …)")
    if not hmac.compare_digest(token.encode(), state.local_token.encode()):
        raise Unauthorized("the access token is not valid for this server")
    principal: Principal = state.local_principal
    return principal
