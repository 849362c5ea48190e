"""Branches: the named heads of a plan's versions.

Rules:

1. A branch name is 1-64 letters, digits, '-' or '_', and starts with a letter or a digit: the
   alphabet a stream's ``branch`` field allows (so every branch can run a stream), and never
   something a command line reads as an option.
2. ``main`` is made with its plan and lives as long as the plan: it cannot be deleted.
3. A branch that runs a stream is neither moved nor deleted (``Busy``, naming the stream): the
   stream commits its reply onto that branch's head when it ends.
4. Deleting a branch deletes its name and its head moves, never a version: versions live as
   long as their plan, and stay reachable by number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import versions
from plancast.server.domain.ids import new_id, now
from plancast.server.errors import Busy, Conflict, InvalidRequest, NotFound
from plancast.server.store.schema import branches, head_moves, streams
from plancast.server.store.schema import versions as versions_table

MAIN = "main"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True, slots=True)
class Branch:
    name: str
    head_id: str
    head_number: int
    created_at: float
    stream_id: str | None  # the stream running on it, if any


def check_name(name: str) -> str:
    """``name`` if it is a valid branch name (Rule 1).

    Raises:
        InvalidRequest: it is not.
    """
    if not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"bad branch name {name[:80]!r}: use 1-64 letters, digits, '-' or '_', "
            "starting with a letter or a digit"
        )
    return name


async def running_stream(
    conn: AsyncConnection, org_id: str, plan_id: str, branch: str | None = None
) -> str | None:
    """The id of a stream running on the branch (on any branch when ``None``), else None."""
    query = select(streams.c.id).where(
        streams.c.org_id == org_id, streams.c.plan_id == plan_id, streams.c.status == "running"
    )
    if branch is not None:
        query = query.where(streams.c.branch == branch)
    return await conn.scalar(query.limit(1))


async def refuse_if_busy(
    conn: AsyncConnection, org_id: str, plan_id: str, branch: str | None, doing: str
) -> None:
    """Raise ``Busy`` naming the stream when one runs on the branch (any branch: ``None``)."""
    stream_id = await running_stream(conn, org_id, plan_id, branch)
    if stream_id is not None:
        where = "this plan" if branch is None else f"branch {branch!r}"
        raise Busy(
            f"cannot {doing} while stream {stream_id} runs on {where}; wait for it to end, "
            f"or `plancast stop {stream_id}`",
            stream_id=stream_id,
        )


async def list_branches(conn: AsyncConnection, org_id: str, plan_id: str) -> list[Branch]:
    """The plan's branches, oldest first, each with its head's number and running stream."""
    rows = await conn.execute(
        select(branches.c.name, branches.c.head_id, versions_table.c.number, branches.c.created_at)
        .select_from(branches.join(versions_table, versions_table.c.id == branches.c.head_id))
        .where(branches.c.org_id == org_id, branches.c.plan_id == plan_id)
        .order_by(branches.c.created_at, branches.c.name)
    )
    running = await conn.execute(
        select(streams.c.branch, streams.c.id).where(
            streams.c.org_id == org_id,
            streams.c.plan_id == plan_id,
            streams.c.status == "running",
        )
    )
    by_branch = {name: stream_id for name, stream_id in running}
    return [
        Branch(name, head_id, number, created_at, by_branch.get(name))
        for name, head_id, number, created_at in rows
    ]


async def create_branch(
    conn: AsyncConnection,
    org_id: str,
    plan_id: str,
    name: str,
    *,
    source: str = MAIN,
    at: str | None = None,
) -> Branch:
    """A new branch at the head of ``source``, or at version ``at`` (a number or an id).

    Raises:
        InvalidRequest: a bad name.
        NotFound: no such source branch or version.
        Conflict: the plan already has a branch of that name.
    """
    check_name(name)
    if at is None:
        start = await versions.head(conn, org_id, plan_id, source)
    else:
        start = await versions.get_version(conn, org_id, plan_id, at)
    created = now()
    try:
        async with conn.begin_nested():
            await conn.execute(
                branches.insert().values(
                    id=new_id("br"),
                    org_id=org_id,
                    plan_id=plan_id,
                    name=name,
                    head_id=start.id,
                    created_at=created,
                )
            )
    except IntegrityError:
        raise Conflict(f"this plan already has a branch {name!r}") from None
    return Branch(name, start.id, start.number, created, None)


async def delete_branch(conn: AsyncConnection, org_id: str, plan_id: str, name: str) -> Branch:
    """Delete a branch's name and its head moves (Rule 4); returns what it was.

    Raises:
        InvalidRequest: it is ``main``.
        NotFound: no such branch.
        Busy: a stream runs on it.
    """
    check_name(name)
    if name == MAIN:
        raise InvalidRequest("`main` is the plan's first branch and cannot be deleted")
    found = [b for b in await list_branches(conn, org_id, plan_id) if b.name == name]
    if not found:
        raise NotFound(f"this plan has no branch {name!r}; `plancast branches` lists them")
    await refuse_if_busy(conn, org_id, plan_id, name, f"delete branch {name!r}")
    await conn.execute(
        head_moves.delete().where(
            head_moves.c.org_id == org_id,
            head_moves.c.plan_id == plan_id,
            head_moves.c.branch == name,
        )
    )
    await conn.execute(
        branches.delete().where(
            branches.c.org_id == org_id, branches.c.plan_id == plan_id, branches.c.name == name
        )
    )
    return found[0]
