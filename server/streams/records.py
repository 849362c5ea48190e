"""Stream rows in the database: one per stream, with its status and lease.

The partial unique index on (plan, branch) for running streams makes
``insert_running`` the atomic "one active stream per branch" check, whichever
replica asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import now
from plancast.server.errors import Busy, NotFound
from plancast.server.store.schema import plans, stream_events, streams, users

LEASE_S = 30.0


@dataclass(frozen=True, slots=True)
class StreamRecord:
    id: str
    plan_id: str
    branch: str
    mode: str
    model: str
    request_id: str
    status: str
    error_code: str | None
    error_message: str | None
    last_seq: int
    started_at: float
    ended_at: float | None
    commit_message: str | None = None  # the committer role's message for its changes


_COLUMNS = (
    streams.c.id,
    streams.c.plan_id,
    streams.c.branch,
    streams.c.mode,
    streams.c.model,
    streams.c.request_id,
    streams.c.status,
    streams.c.error_code,
    streams.c.error_message,
    streams.c.last_seq,
    streams.c.started_at,
    streams.c.ended_at,
    streams.c.commit_message,
)


async def insert_running(
    conn: AsyncConnection,
    *,
    stream_id: str,
    org_id: str,
    plan_id: str,
    branch: str,
    mode: str,
    model: str,
    request_id: str,
    owner: str,
    user_id: str | None = None,
    lease_s: float = LEASE_S,
) -> None:
    """Record a new running stream, leased by ``owner`` for ``lease_s``.

    Raises:
        Busy: the branch already has a running stream (named in the error).
    """
    at = now()
    try:
        async with conn.begin_nested():
            await conn.execute(
                streams.insert().values(
                    id=stream_id,
                    org_id=org_id,
                    plan_id=plan_id,
                    branch=branch,
                    mode=mode,
                    model=model,
                    request_id=request_id,
                    status="running",
                    last_seq=0,
                    started_at=at,
                    lease_owner=owner,
                    lease_expires_at=at + lease_s,
                    user_id=user_id,
                )
            )
    except IntegrityError:
        running = await conn.scalar(
            select(streams.c.id).where(
                streams.c.plan_id == plan_id,
                streams.c.branch == branch,
                streams.c.status == "running",
            )
        )
        if running is None:  # the request id was reused: not a busy branch
            raise
        raise Busy(
            f"branch {branch!r} of this plan is busy with stream {running}; "
            "wait for it to end, or stop it from the terminal that watches it (Ctrl-C)",
            stream_id=running,
        ) from None


async def lock_user(conn: AsyncConnection, user_id: str) -> None:
    """Hold the user's row until the transaction ends, so that one user's starts queue.

    A start reads before it writes (is this request id known? is there room for one more
    stream under the per-user limit?). On PostgreSQL, two starts at once would both read
    "no" and "yes"; with the lock the second reads what the first committed (READ
    COMMITTED). SQLite renders no FOR UPDATE: ``BEGIN IMMEDIATE`` serializes writers there.
    """
    await conn.execute(
        select(users.c.id).where(users.c.id == user_id).with_for_update(key_share=True)
    )


async def count_running_for_user(conn: AsyncConnection, user_id: str) -> int:
    found = await conn.scalar(
        select(func.count())
        .select_from(streams)
        .where(streams.c.user_id == user_id, streams.c.status == "running")
    )
    return int(found or 0)


async def list_for_project(
    conn: AsyncConnection, org_id: str, project_id: str, *, limit: int = 20
) -> list[tuple[StreamRecord, str]]:
    """A project's running streams, then its most recent others: (stream, plan name) pairs."""
    query = (
        select(*_COLUMNS, plans.c.name)
        .select_from(streams.join(plans, plans.c.id == streams.c.plan_id))
        .where(streams.c.org_id == org_id, plans.c.project_id == project_id)
        .order_by((streams.c.status == "running").desc(), streams.c.started_at.desc())
        .limit(limit)
    )
    return [(StreamRecord(*row[:-1]), row[-1]) for row in await conn.execute(query)]


async def by_request_id(conn: AsyncConnection, org_id: str, request_id: str) -> StreamRecord | None:
    row = (
        await conn.execute(
            select(*_COLUMNS).where(streams.c.org_id == org_id, streams.c.request_id == request_id)
        )
    ).first()
    return StreamRecord(*row) if row else None


async def get(conn: AsyncConnection, org_id: str, stream_id: str) -> StreamRecord:
    row = (
        await conn.execute(
            select(*_COLUMNS).where(streams.c.org_id == org_id, streams.c.id == stream_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no stream {stream_id!r}")
    return StreamRecord(*row)


async def list_for_plan(conn: AsyncConnection, org_id: str, plan_id: str) -> list[StreamRecord]:
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(streams.c.org_id == org_id, streams.c.plan_id == plan_id)
        .order_by(streams.c.started_at)
    )
    return [StreamRecord(*row) for row in rows]


async def finish(
    conn: AsyncConnection,
    stream_id: str,
    *,
    status: str,
    last_seq: int,
    error_code: str | None,
    error_message: str | None,
    commit_message: str | None = None,
) -> None:
    await conn.execute(
        streams.update()
        .where(streams.c.id == stream_id)
        .values(
            commit_message=commit_message,
            status=status,
            last_seq=last_seq,
            error_code=error_code,
            error_message=error_message,
            ended_at=now(),
            lease_owner=None,
            lease_expires_at=None,
        )
    )


async def renew_leases(
    conn: AsyncConnection, stream_ids: list[str], owner: str, lease_s: float = LEASE_S
) -> None:
    """Extend the lease of the streams this process runs (see ``orphaned``)."""
    if stream_ids:
        await conn.execute(
            streams.update()
            .where(streams.c.id.in_(stream_ids), streams.c.lease_owner == owner)
            .values(lease_expires_at=now() + lease_s)
        )


async def claim_orphan(
    conn: AsyncConnection, stream_id: str, owner: str, *, only_expired: bool, lease_s: float
) -> bool:
    """Take an orphan for recovery, so that one replica alone closes it.

    On PostgreSQL the row stays locked until ``conn`` commits: a replica claiming the same
    stream at the same moment waits, then finds it claimed (its lease is fresh) or closed.
    """
    at = now()
    query = streams.update().where(streams.c.id == stream_id, streams.c.status == "running")
    if only_expired:
        query = query.where(streams.c.lease_expires_at < at)
    result = await conn.execute(query.values(lease_owner=owner, lease_expires_at=at + lease_s))
    return bool(result.rowcount)


async def orphaned(conn: AsyncConnection, *, only_expired: bool) -> list[tuple[str, str]]:
    """Running streams that no live process runs any more: (stream id, org id) pairs.

    With a single server on SQLite every running stream found at start-up is an
    orphan; with replicas, only those whose lease expired (``only_expired``).
    """
    query = select(streams.c.id, streams.c.org_id).where(streams.c.status == "running")
    if only_expired:
        query = query.where(streams.c.lease_expires_at < now())
    rows = await conn.execute(query)
    return [(sid, org) for sid, org in rows]


async def purge_events(conn: AsyncConnection, ended_before: float) -> int:
    """Delete the stored events of streams that ended before ``ended_before``.

    Their outcome and reply stay (the stream row, the conversation); a client
    that asks for their events gets a snapshot instead.
    """
    old = select(streams.c.id).where(
        streams.c.status != "running", streams.c.ended_at < ended_before
    )
    result = await conn.execute(stream_events.delete().where(stream_events.c.stream_id.in_(old)))
    return int(result.rowcount or 0)
