"""The end of data: exporting an account, deleting an account or an org, purging old plans.

Rules:

1. An export holds the user's own data: their address, their memberships, their sessions'
   metadata and the audit entries of what they did; and the whole content (projects, plans,
   versions, context, conversation, changes, streams, usage) of every org where they are the
   only member. An org with other members owns its plans: the export lists only the streams
   the user started there, as metadata. Nothing secret is exported: no password hash, no
   token or code hash.
2. Deleting an org deletes every row that carries its ``org_id``, whichever table (so a
   table added later is covered too): its content, the events of its streams, its audit
   entries, and its data key (so its content in old backups can no longer be read); sessions
   that pointed at it point nowhere. It is refused (``busy``) while one of its
   streams still runs: the caller stops them first.
3. Deleting an account deletes the user, their sessions, codes, memberships and the invites
   to their address; the orgs where they were the only member go with them (Rule 2). It is
   refused (``conflict``) while they are the last owner of an org with other members.
   Rows of other orgs that name the user by id (streams they started, invites they sent)
   keep the row and lose the id.
4. A plan is stale when neither its ``updated_at`` (else ``created_at``) nor its newest
   version is newer than the cutoff, and it runs no stream. The purge deletes it as
   ``plans.delete_plan`` does.

On SQLite ``secure_delete`` is on for every connection (``store/database.py``) and checked
again here, so deleted rows are overwritten in the file; ``scrub`` then empties the WAL.
PostgreSQL keeps deleted rows until ``VACUUM`` (docs/security.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.domain import audit, plans
from plancast.server.domain.ids import now
from plancast.server.domain.principal import Role
from plancast.server.errors import Busy, Conflict, NotFound
from plancast.server.store.schema import (
    auth_codes,
    branches,
    changes,
    context_items,
    head_moves,
    idempotency_keys,
    invites,
    memberships,
    messages,
    metadata,
    orgs,
    projects,
    sessions,
    stream_events,
    streams,
    usage,
    users,
    versions,
)
from plancast.server.store.schema import plans as plans_table

logger = logging.getLogger("plancast.server.store")

EXPORT_FORMAT = 1

# The tables of an org's content, as an export lists them; JSON text columns are decoded.
_CONTENT = (
    projects,
    plans_table,
    branches,
    versions,
    head_moves,
    context_items,
    messages,
    changes,
    streams,
    usage,
)
_JSON_COLUMNS = {("versions", "state"), ("changes", "op"), ("changes", "build")}
_STREAM_METADATA = (
    streams.c.id,
    streams.c.org_id,
    streams.c.plan_id,
    streams.c.branch,
    streams.c.mode,
    streams.c.model,
    streams.c.status,
    streams.c.started_at,
    streams.c.ended_at,
)


# -- export -------------------------------------------------------------------------------


async def export_user(conn: AsyncConnection, user_id: str) -> dict[str, Any]:
    """Everything Rule 1 gives the user, as one JSON-ready object.

    Raises:
        NotFound: no such user.
    """
    user = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    if user is None:
        raise NotFound("no such account")
    mine = await _memberships(conn, user_id)
    solo = {org_id for org_id, _, others in mine if others == 0}
    named = await conn.execute(
        select(orgs.c.id, orgs.c.name).where(orgs.c.id.in_([org_id for org_id, _, _ in mine]))
    )
    names = {str(org_id): str(name) for org_id, name in named}
    shared_streams = await conn.execute(
        select(*_STREAM_METADATA)
        .where(streams.c.user_id == user_id, streams.c.org_id.not_in(solo))
        .order_by(streams.c.started_at)
    )
    own_sessions = await conn.execute(
        select(
            sessions.c.id,
            sessions.c.kind,
            sessions.c.org_id,
            sessions.c.created_at,
            sessions.c.last_seen_at,
            sessions.c.expires_at,
        )
        .where(sessions.c.user_id == user_id)
        .order_by(sessions.c.created_at)
    )
    return {
        "format": EXPORT_FORMAT,
        "exported_at": now(),
        "user": {
            "id": user.id,
            "email": user.email,
            "created_at": user.created_at,
            "email_verified_at": user.email_verified_at,
        },
        "memberships": [
            {
                "org_id": org_id,
                "org_name": names.get(org_id),
                "role": str(role),
                "only_member": org_id in solo,
            }
            for org_id, role, _ in mine
        ],
        "sessions": [dict(row._mapping) for row in own_sessions],
        "orgs": {org_id: await _org_content(conn, org_id) for org_id in sorted(solo)},
        "streams_in_shared_orgs": [dict(row._mapping) for row in shared_streams],
        "audit": [audit.as_json(e) for e in await audit.list_for_user(conn, user_id)],
    }


async def _org_content(conn: AsyncConnection, org_id: str) -> dict[str, list[dict[str, Any]]]:
    content: dict[str, list[dict[str, Any]]] = {}
    for table in _CONTENT:
        order = table.c.created_at if "created_at" in table.c else table.c.started_at
        rows = await conn.execute(select(table).where(table.c.org_id == org_id).order_by(order))
        content[table.name] = [_decoded(table, row._mapping) for row in rows]
    return content


def _decoded(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name, value in out.items():
        if (table.name, name) in _JSON_COLUMNS and isinstance(value, str):
            out[name] = json.loads(value)
    return out


async def _memberships(conn: AsyncConnection, user_id: str) -> list[tuple[str, Role, int]]:
    """(org id, role, how many other members) for each org of the user."""
    rows = await conn.execute(
        select(memberships.c.org_id, memberships.c.role)
        .where(memberships.c.user_id == user_id)
        .order_by(memberships.c.org_id)
    )
    mine = [(str(org_id), Role(role)) for org_id, role in rows]
    counted = await conn.execute(
        select(memberships.c.org_id, func.count())
        .where(memberships.c.org_id.in_([org_id for org_id, _ in mine]))
        .group_by(memberships.c.org_id)
    )
    counts = {str(org_id): int(n) for org_id, n in counted}
    return [(org_id, role, counts.get(org_id, 1) - 1) for org_id, role in mine]


# -- deleting an org ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgDeleted:
    org_id: str
    projects: int
    plans: int
    members: int


async def delete_org(conn: AsyncConnection, org_id: str) -> OrgDeleted:
    """Delete the org and every row of it (Rule 2).

    Raises:
        NotFound: no such org.
        Busy: one of its streams still runs (on this server or another replica).
    """
    await _secure_delete(conn)
    found = await conn.scalar(select(orgs.c.id).where(orgs.c.id == org_id).with_for_update())
    if found is None:
        raise NotFound("no such org")
    running = await conn.scalar(
        select(streams.c.id).where(streams.c.org_id == org_id, streams.c.status == "running")
    )
    if running is not None:
        raise Busy("a stream of this org is still running; try again shortly", stream_id=running)
    counted = OrgDeleted(
        org_id,
        await _count(conn, projects, org_id),
        await _count(conn, plans_table, org_id),
        await _count(conn, memberships, org_id),
    )
    its_streams = select(streams.c.id).where(streams.c.org_id == org_id)
    await conn.execute(delete(stream_events).where(stream_events.c.stream_id.in_(its_streams)))
    await conn.execute(update(sessions).where(sessions.c.org_id == org_id).values(org_id=None))
    for table in reversed(metadata.sorted_tables):  # children before their parents
        if "org_id" in table.c and table is not sessions:
            await conn.execute(delete(table).where(table.c.org_id == org_id))
    await conn.execute(delete(orgs).where(orgs.c.id == org_id))
    return counted


async def _count(conn: AsyncConnection, table: Table, org_id: str) -> int:
    n = await conn.scalar(select(func.count()).select_from(table).where(table.c.org_id == org_id))
    return int(n or 0)


# -- deleting an account ------------------------------------------------------------------


@dataclass(slots=True)
class AccountPlan:
    """What deleting an account will do: the orgs deleted with it, and those it leaves."""

    deleted_orgs: list[str] = field(default_factory=list)
    left_orgs: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AccountDeleted:
    plan: AccountPlan
    orgs: list[OrgDeleted]
    sessions: list[str]


async def plan_account_deletion(conn: AsyncConnection, user_id: str) -> AccountPlan:
    """Which orgs go and which the user leaves (Rule 3); refused as deleting would.

    Raises:
        Conflict: the user is the last owner of an org with other members.
    """
    plan = AccountPlan()
    for org_id, role, others in await _memberships(conn, user_id):
        if others == 0:
            plan.deleted_orgs.append(org_id)
            continue
        if role == Role.OWNER:
            owners = await conn.scalar(
                select(func.count())
                .select_from(memberships)
                .where(memberships.c.org_id == org_id, memberships.c.role == Role.OWNER)
            )
            if int(owners or 0) == 1:
                name = await conn.scalar(select(orgs.c.name).where(orgs.c.id == org_id))
                raise Conflict(
                    f"you are the last owner of the org {name!r}, which has other members: "
                    "make one of them owner, or delete the org, first"
                )
        plan.left_orgs.append(org_id)
    return plan


async def delete_account(conn: AsyncConnection, user_id: str) -> AccountDeleted:
    """Delete the user and what is theirs (Rule 3).

    Raises:
        NotFound: no such user.
        Conflict: as ``plan_account_deletion``.
        Busy: a stream still runs in an org that would be deleted.
    """
    await _secure_delete(conn)
    email = await conn.scalar(select(users.c.email).where(users.c.id == user_id).with_for_update())
    if email is None and not await conn.scalar(select(exists().where(users.c.id == user_id))):
        raise NotFound("no such account")
    mine = await conn.execute(select(memberships.c.org_id).where(memberships.c.user_id == user_id))
    org_ids = sorted(str(org_id) for (org_id,) in mine)
    if org_ids:  # the same lock role changes take, so no owner leaves meanwhile
        await conn.execute(select(orgs.c.id).where(orgs.c.id.in_(org_ids)).with_for_update())
    plan = await plan_account_deletion(conn, user_id)
    deleted = [await delete_org(conn, org_id) for org_id in plan.deleted_orgs]
    ended = list(
        (await conn.execute(select(sessions.c.id).where(sessions.c.user_id == user_id))).scalars()
    )
    await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
    await conn.execute(delete(auth_codes).where(auth_codes.c.user_id == user_id))
    await conn.execute(delete(memberships).where(memberships.c.user_id == user_id))
    to_them = invites.c.accepted_by == user_id
    if email is not None:
        to_them = to_them | (invites.c.email == email)
    await conn.execute(delete(invites).where(to_them))
    await conn.execute(
        update(invites).where(invites.c.invited_by == user_id).values(invited_by=None)
    )
    await conn.execute(update(streams).where(streams.c.user_id == user_id).values(user_id=None))
    await conn.execute(delete(users).where(users.c.id == user_id))
    return AccountDeleted(plan, deleted, ended)


# -- retention ----------------------------------------------------------------------------


async def stale_plans(
    conn: AsyncConnection, cutoff: float, plan_id: str | None = None
) -> list[tuple[str, str]]:
    """(org id, plan id) of every plan stale at ``cutoff`` (Rule 4), oldest first; or of
    ``plan_id`` only, if it is."""
    last = func.coalesce(plans_table.c.updated_at, plans_table.c.created_at)
    recent_version = exists().where(
        versions.c.plan_id == plans_table.c.id, versions.c.created_at >= cutoff
    )
    running = exists().where(streams.c.plan_id == plans_table.c.id, streams.c.status == "running")
    query = select(plans_table.c.org_id, plans_table.c.id).where(
        last < cutoff, ~recent_version, ~running
    )
    if plan_id is not None:
        query = query.where(plans_table.c.id == plan_id)
    rows = await conn.execute(query.order_by(last))
    return [(str(org_id), str(plan_id)) for org_id, plan_id in rows]


async def purge_plan(conn: AsyncConnection, org_id: str, plan_id: str, cutoff: float) -> bool:
    """Delete the plan if it is still stale, as ``plans.delete_plan`` does, with its stored
    responses; False if it changed since it was found stale.

    Raises:
        NotFound, Busy: as ``plans.delete_plan`` (the plan went, or a stream began).
    """
    await _secure_delete(conn)
    await conn.execute(  # hold the plan, so no stream starts on it meanwhile (PostgreSQL)
        select(plans_table.c.id).where(plans_table.c.id == plan_id).with_for_update()
    )
    if not await stale_plans(conn, cutoff, plan_id):
        return False
    await plans.delete_plan(conn, org_id, plan_id)
    await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.org_id == org_id,
            idempotency_keys.c.path.startswith(f"/api/v1/plans/{plan_id}/", autoescape=True),
        )
    )
    return True


def purge_entries(purged: Mapping[str, int], days: float) -> list[audit.Entry]:
    """One audit entry per org that lost plans to a purge, with the count."""
    return [
        audit.Entry(
            audit.AuditAction.PLANS_PURGED,
            org_id=org_id,
            detail={"plans": n, "older_than_days": round(days, 3)},
        )
        for org_id, n in sorted(purged.items())
    ]


# -- SQLite's overwriting -----------------------------------------------------------------


async def _secure_delete(conn: AsyncConnection) -> None:
    """Make sure SQLite overwrites what this transaction deletes (it is on by default)."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("PRAGMA secure_delete = ON")


async def scrub(engine: AsyncEngine) -> None:
    """On SQLite, fold the WAL into the database and empty it, so that the old copies of
    deleted rows in it go too. Best effort: a busy database leaves the WAL for later."""
    if engine.dialect.name != "sqlite":
        return
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_checkpoint)
    except Exception:  # the deletion itself is committed; the WAL is emptied at a later one
        logger.warning("emptying the SQLite WAL after a deletion failed", exc_info=True)


def _checkpoint(sync_conn: Any) -> None:
    cursor = sync_conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        cursor.close()
