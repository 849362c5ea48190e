"""Accounts. Local mode has one implicit user who owns one implicit org; team mode has
accounts with an email address (the only personal data kept) and a password."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import new_id, now
from plancast.server.domain.principal import Principal, Role
from plancast.server.errors import InvalidRequest
from plancast.server.store.schema import memberships, orgs, users

LOCAL_ORG_ID = "org_local"
LOCAL_USER_ID = "usr_local"


async def ensure_local_principal(conn: AsyncConnection) -> Principal:
    """Create the local user and org on first start; return them as a principal.

    Replicas starting at once on one PostgreSQL database may all find none: the first to
    insert wins, and the others, whose inserts wait for it and then conflict, use its rows.
    """
    found = await conn.scalar(select(orgs.c.id).where(orgs.c.id == LOCAL_ORG_ID))
    if found is None:
        at = now()
        try:
            async with conn.begin_nested():
                await conn.execute(
                    orgs.insert().values(id=LOCAL_ORG_ID, name="local", created_at=at)
                )
                await conn.execute(
                    users.insert().values(id=LOCAL_USER_ID, email=None, created_at=at)
                )
                await conn.execute(
                    memberships.insert().values(
                        org_id=LOCAL_ORG_ID, user_id=LOCAL_USER_ID, role=Role.OWNER, created_at=at
                    )
                )
        except IntegrityError:
            pass  # another server on the same PostgreSQL database made them first
    return Principal(user_id=LOCAL_USER_ID, org_id=LOCAL_ORG_ID, role=Role.OWNER)


# -- team mode: accounts with an email address and a password -----------------------------

MAX_EMAIL = 320
FREE_FAILURES = 5  # failed sign-ins in a row before each next one waits
MAX_BLOCK_S = 15 * 60.0


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    password_hash: str | None
    email_verified_at: float | None
    failed_signins: int
    signin_blocked_until: float | None


def normalize_email(value: str) -> str:
    """One spelling per address: trimmed, lower case; refused unless it looks like one."""
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or len(email) > MAX_EMAIL
        or any(c.isspace() or ord(c) < 32 for c in email)
        or "@" in domain
    ):
        raise InvalidRequest("that is not an email address")
    return email


async def find_user(conn: AsyncConnection, email: str) -> User | None:
    row = (await conn.execute(select(users).where(users.c.email == email))).first()
    return None if row is None else _user(row)


async def get_user(conn: AsyncConnection, user_id: str) -> User | None:
    row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    return None if row is None else _user(row)


def _user(row: Any) -> User:
    return User(
        row.id,
        row.email,
        row.password_hash,
        row.email_verified_at,
        row.failed_signins,
        row.signin_blocked_until,
    )


async def create_user(conn: AsyncConnection, email: str, password_hash: str) -> str:
    user_id = new_id("usr")
    await conn.execute(
        users.insert().values(
            id=user_id, email=email, password_hash=password_hash, created_at=now()
        )
    )
    return user_id


async def count_users(conn: AsyncConnection) -> int:
    """Accounts with an email (local mode's implicit user has none)."""
    return int(
        await conn.scalar(select(func.count()).select_from(users).where(users.c.email.is_not(None)))
        or 0
    )


async def mark_verified(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.email_verified_at.is_(None))
        .values(email_verified_at=now())
    )


async def set_password(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, failed_signins=0, signin_blocked_until=None)
    )


def blocked_for(user: User) -> float:
    """Seconds until the account may try to sign in again (0: now)."""
    if user.signin_blocked_until is None:
        return 0.0
    return max(0.0, user.signin_blocked_until - now())


async def record_signin(conn: AsyncConnection, user_id: str, ok: bool) -> None:
    """Count a failed sign-in (each past the fifth doubles the wait), or clear the count."""
    if ok:
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(failed_signins=0, signin_blocked_until=None)
        )
        return
    failures = await conn.scalar(
        select(users.c.failed_signins).where(users.c.id == user_id).with_for_update()
    )
    failures = int(failures or 0) + 1
    blocked = None
    if failures >= FREE_FAILURES:
        blocked = now() + min(MAX_BLOCK_S, 30.0 * 2 ** (failures - FREE_FAILURES))
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(failed_signins=failures, signin_blocked_until=blocked)
    )
