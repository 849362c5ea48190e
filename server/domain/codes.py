"""Single-use codes sent by email: to verify an address, and to reset a password.

A code is 8 digits, easy to type from a phone, so it is guarded by more than its
entropy: it expires after ``TTL_S``, dies after ``MAX_ATTEMPTS`` wrong tries, is used
once, and a new code for the same purpose replaces the older ones. Only its SHA-256 is
stored. At most ``MAX_PER_HOUR`` codes are sent for one account and purpose in an hour,
so nobody can flood an inbox through plancast.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import Enum

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import new_id, now
from plancast.server.errors import InvalidRequest, RateLimited
from plancast.server.store.schema import auth_codes

TTL_S = 15 * 60.0
MAX_ATTEMPTS = 5
MAX_PER_HOUR = 5
PURPOSES = ("verify", "reset")


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def issue(conn: AsyncConnection, user_id: str, purpose: str) -> str:
    """A new code for ``purpose``; earlier unused ones stop working.

    Raises:
        RateLimited: ``MAX_PER_HOUR`` codes were already sent this hour.
    """
    at = now()
    recent = await conn.scalar(
        select(func.count())
        .select_from(auth_codes)
        .where(
            auth_codes.c.user_id == user_id,
            auth_codes.c.purpose == purpose,
            auth_codes.c.created_at > at - 3600,
        )
    )
    if (recent or 0) >= MAX_PER_HOUR:
        oldest = await conn.scalar(
            select(func.min(auth_codes.c.created_at)).where(
                auth_codes.c.user_id == user_id,
                auth_codes.c.purpose == purpose,
                auth_codes.c.created_at > at - 3600,
            )
        )
        raise RateLimited(
            "too many codes were sent to this address in the last hour",
            retry_after=(oldest or at) + 3600 - at,
        )
    # Expired codes go; recent ones stay as rows (for the hourly count) but are spent.
    await conn.execute(
        delete(auth_codes).where(
            auth_codes.c.user_id == user_id, auth_codes.c.created_at <= at - 3600
        )
    )
    await conn.execute(
        update(auth_codes)
        .where(
            auth_codes.c.user_id == user_id,
            auth_codes.c.purpose == purpose,
            auth_codes.c.used_at.is_(None),
        )
        .values(used_at=at)
    )
    code = f"{secrets.randbelow(10**8):08d}"
    await conn.execute(
        auth_codes.insert().values(
            id=new_id("code"),
            user_id=user_id,
            purpose=purpose,
            code_hash=_hash(code),
            attempts=0,
            expires_at=at + TTL_S,
            created_at=at,
        )
    )
    return code


class Redeemed(Enum):
    OK = "ok"
    WRONG = "wrong"  # no live code, or not this one
    SPENT = "spent"  # this wrong try was the last one the code allowed


async def redeem(conn: AsyncConnection, user_id: str | None, purpose: str, code: str) -> Redeemed:
    """Use the account's live code for ``purpose`` if ``code`` is it; else count a wrong try.

    Returns the outcome instead of raising, so that the caller commits the count of wrong
    tries before it refuses the request (``check``). ``user_id`` None (no such account)
    fails the same way as a wrong code.
    """
    if user_id is None:
        return Redeemed.WRONG
    row = (
        await conn.execute(
            select(auth_codes)
            .where(
                auth_codes.c.user_id == user_id,
                auth_codes.c.purpose == purpose,
                auth_codes.c.used_at.is_(None),
                auth_codes.c.expires_at > now(),
            )
            .order_by(auth_codes.c.created_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if row is None:
        return Redeemed.WRONG
    if hmac.compare_digest(row.code_hash, _hash(code.strip())):
        await conn.execute(
            update(auth_codes).where(auth_codes.c.id == row.id).values(used_at=now())
        )
        return Redeemed.OK
    attempts = row.attempts + 1
    spent = attempts >= MAX_ATTEMPTS
    await conn.execute(
        update(auth_codes)
        .where(auth_codes.c.id == row.id)
        .values(attempts=attempts, used_at=now() if spent else None)
    )
    return Redeemed.SPENT if spent else Redeemed.WRONG


def check(outcome: Redeemed) -> None:
    """Raise for a code that did not work.

    Raises:
        InvalidRequest: no live code, or a wrong one (the message does not say which).
        RateLimited: that was the code's last allowed wrong try; it is spent.
    """
    if outcome is Redeemed.SPENT:
        raise RateLimited(
            "too many wrong tries: this code no longer works; ask for a new one", retry_after=1
        )
    if outcome is Redeemed.WRONG:
        raise InvalidRequest("the code is wrong, used or expired: ask for a new one")
