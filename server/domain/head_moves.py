"""Head moves: rewinding a branch to any version of its plan, and undoing a rewind.

Rules:

1. A rewind points a branch's head at an existing version of the plan. It makes no version
   and deletes none; it is a compare-and-set on the head (as ``versions.commit`` is) and is
   recorded as a ``head_moves`` row of kind ``rewind`` (from, to).
2. An undo reverses the branch's latest rewind that is not undone yet: the head goes back to
   that rewind's ``from``, recorded as kind ``undo``. Read in order, a branch's rows are a
   stack (a rewind pushes, an undo pops), so repeated undos walk back through earlier rewinds.
3. An undo is refused when the head moved since the rewind it would reverse (new versions on
   top): moving it would take them off the branch. Nothing is lost either way: every version
   stays reachable by number, and a rewind can reach it.
4. A branch that runs a stream is not moved (``Busy``, naming it): the stream commits its
   reply onto the head it started from.
5. A branch's moves are strictly ordered by ``created_at``: each is stamped at least 1 µs after
   the branch's previous one, so two moves within one clock tick still stack in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import branches, versions
from plancast.server.domain.ids import new_id, now
from plancast.server.errors import Conflict, InvalidRequest
from plancast.server.store.schema import changes, head_moves

TICK_S = 1e-6
"""The least time between two moves of one branch (Rule 5)."""


@dataclass(frozen=True, slots=True)
class HeadMove:
    id: str
    branch: str
    kind: str  # rewind | undo
    before: versions.Version  # where the head was
    after: versions.Version  # where it is now
    created_at: float


@dataclass(frozen=True, slots=True)
class DiskWork:
    """What a move asks of the project's files: (change id, path) pairs, in plan order."""

    revert: list[tuple[str, str]]  # applied before the move, not after it
    reapply: list[tuple[str, str]]  # applied after the move, not before it


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    kind: str
    from_id: str
    to_id: str
    created_at: float


async def rewind(
    conn: AsyncConnection, org_id: str, plan_id: str, branch: str, ref: str
) -> HeadMove:
    """Point the branch's head at version ``ref`` (a number or an id) of the plan.

    Raises:
        NotFound: no such branch or version.
        Busy: a stream runs on the branch.
        InvalidRequest: the head is already there.
        Conflict: the head moved meanwhile; try again.
    """
    branches.check_name(branch)
    current = await versions.head(conn, org_id, plan_id, branch)
    target = await versions.get_version(conn, org_id, plan_id, ref)
    await branches.refuse_if_busy(conn, org_id, plan_id, branch, f"rewind branch {branch!r}")
    if target.id == current.id:
        raise InvalidRequest(f"branch {branch!r} is already at version {current.number}")
    return await _move(conn, org_id, plan_id, branch, "rewind", current, target)


async def undo(conn: AsyncConnection, org_id: str, plan_id: str, branch: str) -> HeadMove:
    """Reverse the branch's latest rewind that is not undone yet (Rules 2 and 3).

    Raises:
        NotFound: no such branch.
        Busy: a stream runs on the branch.
        InvalidRequest: no rewind is left to undo.
        Conflict: the head moved since that rewind, or while undoing.
    """
    branches.check_name(branch)
    current = await versions.head(conn, org_id, plan_id, branch)
    await branches.refuse_if_busy(conn, org_id, plan_id, branch, f"move branch {branch!r}")
    stack = await _undoable(conn, org_id, plan_id, branch)
    if not stack:
        raise InvalidRequest(f"branch {branch!r} has no rewind to undo")
    last = stack[-1]
    back = await versions.get_version(conn, org_id, plan_id, last.from_id)
    if last.to_id != current.id:
        went = await versions.get_version(conn, org_id, plan_id, last.to_id)
        raise Conflict(
            f"branch {branch!r} has moved since its last rewind (from version {back.number} "
            f"to {went.number}; it is now at {current.number}), so that rewind cannot be "
            f"undone. Nothing is lost: `plancast rewind {back.number}` still reaches any "
            "version, and `plancast log --all` lists them all"
        )
    return await _move(conn, org_id, plan_id, branch, "undo", current, back)


async def _undoable(conn: AsyncConnection, org_id: str, plan_id: str, branch: str) -> list[_Row]:
    """The branch's rewinds not undone yet, oldest first (the stack of Rule 2)."""
    rows = await conn.execute(
        select(
            head_moves.c.id,
            head_moves.c.kind,
            head_moves.c.from_id,
            head_moves.c.to_id,
            head_moves.c.created_at,
        )
        .where(
            head_moves.c.org_id == org_id,
            head_moves.c.plan_id == plan_id,
            head_moves.c.branch == branch,
        )
        .order_by(head_moves.c.created_at)
    )
    stack: list[_Row] = []
    for row in rows:
        move = _Row(*row)
        if move.kind == "rewind":
            stack.append(move)
        elif stack:
            stack.pop()
    return stack


async def _move(
    conn: AsyncConnection,
    org_id: str,
    plan_id: str,
    branch: str,
    kind: str,
    before: versions.Version,
    after: versions.Version,
) -> HeadMove:
    if not await versions.move_head(conn, org_id, plan_id, branch, before.id, after.id):
        raise Conflict(f"branch {branch!r} moved meanwhile; look at `plancast log` and try again")
    latest = await conn.scalar(
        select(head_moves.c.created_at)
        .where(
            head_moves.c.org_id == org_id,
            head_moves.c.plan_id == plan_id,
            head_moves.c.branch == branch,
        )
        .order_by(head_moves.c.created_at.desc())
        .limit(1)
    )
    at = now() if latest is None else max(now(), latest + TICK_S)
    move = HeadMove(new_id("mv"), branch, kind, before, after, at)
    await conn.execute(
        head_moves.insert().values(
            id=move.id,
            org_id=org_id,
            plan_id=plan_id,
            branch=branch,
            kind=kind,
            from_id=before.id,
            to_id=after.id,
            created_at=at,
        )
    )
    return move


def applied_only_in(first: versions.PlanState, second: versions.PlanState) -> list[str]:
    """The changes applied in ``first`` but not in ``second``, in ``first``'s order.

    After a move from ``first`` to ``second`` these are the files to revert on disk; after one
    the other way, the files to re-apply. The server only names them: the client, which holds
    the files, decides (DESIGN invariant 5).
    """
    applied = {cid for cid, status in second.changes if status == "applied"}
    return [cid for cid, status in first.changes if status == "applied" and cid not in applied]


async def disk_work(conn: AsyncConnection, org_id: str, plan_id: str, move: HeadMove) -> DiskWork:
    """The changes whose files the move leaves out of date on the user's disk."""
    revert = applied_only_in(move.before.state, move.after.state)
    reapply = applied_only_in(move.after.state, move.before.state)
    wanted = revert + reapply
    paths: dict[str, str] = {}
    if wanted:
        rows = await conn.execute(
            select(changes.c.id, changes.c.path).where(
                changes.c.org_id == org_id,
                changes.c.plan_id == plan_id,
                changes.c.id.in_(wanted),
            )
        )
        paths = {cid: path for cid, path in rows}
    return DiskWork(
        [(cid, paths[cid]) for cid in revert if cid in paths],
        [(cid, paths[cid]) for cid in reapply if cid in paths],
    )
