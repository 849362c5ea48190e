"""Sign-in sessions (team mode): random bearer tokens, kept only as their SHA-256.

A token is shown once, when the session is made. The database holds its hash, so a
copy of the database (or a backup) signs no one in. A session ends when it has not been
used for ``idle_s``, ``max_s`` after it began, or when it is revoked (its row deleted).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import new_id, now
from plancast.server.errors import Unauthorized
from plancast.server.store.schema import sessions
from plancast.shared import ErrorCode

TOKEN_PREFIX = "pcs_"
TOUCH_EVERY_S = 60.0  # last_seen_at is written at most this often: not one write per request
KINDS = ("cli", "web")


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    org_id: str | None
    kind: str
    created_at: float
    last_seen_at: float
    expires_at: float


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session(row: object) -> Session:
    m = row._mapping  # type: ignore[attr-defined]
    return Session(
        m["id"], m["user_id"], m["org_id"], m["kind"],
        m["created_at"], m["last_seen_at"], m["expires_at"],
    )  # fmt: skip


async def create(
    conn: AsyncConnection, user_id: str, org_id: str | None, kind: str, max_s: float
) -> tuple[Session, str]:
    """A new session and its token (the only time the token exists in clear)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    at = now()
    session = Session(new_id("ses"), user_id, org_id, kind, at, at, at + max_s)
    await conn.execute(
        sessions.insert().values(
            id=session.id,
            user_id=user_id,
            org_id=org_id,
            token_hash=hash_token(token),
            kind=kind,
            created_at=at,
            last_seen_at=at,
            expires_at=session.expires_at,
        )
    )
    return session, token


async def resolve(conn: AsyncConnection, token: str, idle_s: float) -> Session | Unauthorized:
    """The live session a bearer token names, or the error to raise once ``conn`` commits.

    An expired session's row is deleted here; returning the error instead of raising it
    lets that delete (and the touch of a live one, at most once a minute) be committed.
    """
    row = (
        await conn.execute(select(sessions).where(sessions.c.token_hash == hash_token(token)))
    ).first()
    if row is None:
        return Unauthorized(
            "this sign-in is not valid (signed out, revoked, or never issued): sign in again",
            code=ErrorCode.SESSION_EXPIRED,
        )
    session = _session(row)
    at = now()
    if at >= session.expires_at or at - session.last_seen_at >= idle_s:
        await conn.execute(delete(sessions).where(sessions.c.id == session.id))
        return Unauthorized(
            "this sign-in has expired: sign in again", code=ErrorCode.SESSION_EXPIRED
        )
    if at - session.last_seen_at >= TOUCH_EVERY_S:
        await conn.execute(
            update(sessions).where(sessions.c.id == session.id).values(last_seen_at=at)
        )
    return session


async def keep_open(conn: AsyncConnection, session_ids: set[str]) -> set[str]:
    """Of the sessions that hold open connections, those that have ended (expired or gone).

    An open connection is use: the others count as seen now, so idle expiry never closes a
    connection someone is watching through, while the absolute one still does.
    """
    at = now()
    rows = await conn.execute(
        select(sessions.c.id, sessions.c.expires_at).where(sessions.c.id.in_(session_ids))
    )
    live = {r.id for r in rows if at < r.expires_at}
    ended = session_ids - live
    if ended:
        await conn.execute(delete(sessions).where(sessions.c.id.in_(ended)))
    if live:
        await conn.execute(update(sessions).where(sessions.c.id.in_(live)).values(last_seen_at=at))
    return ended


async def list_for_user(conn: AsyncConnection, user_id: str) -> list[Session]:
    rows = await conn.execute(
        select(sessions).where(sessions.c.user_id == user_id).order_by(sessions.c.created_at)
    )
    return [_session(r) for r in rows]


async def revoke(conn: AsyncConnection, user_id: str, session_id: str) -> bool:
    """End one of the user's sessions; False if they have no such session."""
    result = await conn.execute(
        delete(sessions).where(sessions.c.id == session_id, sessions.c.user_id == user_id)
    )
    return result.rowcount > 0


async def revoke_all(conn: AsyncConnection, user_id: str, keep: str | None = None) -> list[str]:
    """End every session of the user (but ``keep``); returns the ids ended."""
    query = select(sessions.c.id).where(sessions.c.user_id == user_id)
    if keep is not None:
        query = query.where(sessions.c.id != keep)
    ids = list((await conn.execute(query)).scalars())
    if ids:
        await conn.execute(delete(sessions).where(sessions.c.id.in_(ids)))
    return ids


async def switch_org(conn: AsyncConnection, session_id: str, org_id: str) -> None:
    await conn.execute(update(sessions).where(sessions.c.id == session_id).values(org_id=org_id))
