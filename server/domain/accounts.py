"""Accounts. Local mode has one implicit user who owns one implicit org."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import now
from plancast.server.domain.principal import Principal, Role
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
