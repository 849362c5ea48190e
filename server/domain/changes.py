"""Pending changes: the file operations a reply proposed, until applied or rejected.

The server stores operations, not results: the client applies them to the files
on the user's disk, which the server never reads. A change's status lives in the
plan version (pending → applied | rejected), so rewinding restores it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import versions
from plancast.server.domain.ids import new_id, now
from plancast.server.errors import InvalidRequest
from plancast.server.store.schema import changes
from plancast.shared import FileOp, op_from_dict, op_to_dict

STATUSES = ("pending", "applied", "rejected")


@dataclass(frozen=True, slots=True)
class Change:
    id: str
    path: str
    op: FileOp
    status: str
    stream_id: str | None
    position: int


async def insert_changes(
    conn: AsyncConnection,
    org_id: str,
    plan_id: str,
    stream_id: str | None,
    ops: Sequence[FileOp],
    *,
    ids: Sequence[str] | None = None,
) -> list[str]:
    """Write change rows; they join the plan only when a version lists them."""
    ids = list(ids) if ids is not None else [new_id("chg") for _ in ops]
    if ops:
        at = now()
        await conn.execute(
            changes.insert(),
            [
                {
                    "id": cid,
                    "org_id": org_id,
                    "plan_id": plan_id,
                    "stream_id": stream_id,
                    "position": n,
                    "path": op.path,
                    "op": json.dumps(op_to_dict(op)),
                    "created_at": at,
                }
                for n, (cid, op) in enumerate(zip(ids, ops, strict=True))
            ],
        )
    return ids


async def list_changes(
    conn: AsyncConnection, org_id: str, plan_id: str, branch: str, *, status: str | None = "pending"
) -> list[Change]:
    state = (await versions.head(conn, org_id, plan_id, branch)).state
    wanted = [(cid, s) for cid, s in state.changes if status is None or s == status]
    if not wanted:
        return []
    rows = await conn.execute(
        select(
            changes.c.id, changes.c.path, changes.c.op, changes.c.stream_id, changes.c.position
        ).where(changes.c.org_id == org_id, changes.c.id.in_([cid for cid, _ in wanted]))
    )
    by_id = {row[0]: row for row in rows}
    result = []
    for cid, s in wanted:
        row = by_id.get(cid)
        if row is not None:
            result.append(Change(cid, row[1], op_from_dict(json.loads(row[2])), s, row[3], row[4]))
    return result


async def set_status(
    conn: AsyncConnection,
    org_id: str,
    plan_id: str,
    branch: str,
    status: str,
    *,
    ids: Sequence[str] | None = None,
    paths: Sequence[str] | None = None,
) -> list[Change]:
    """Mark pending changes applied or rejected, chosen by id, by path, or all.

    Returns the changes that moved; makes a version only when some did.
    """
    if status not in ("applied", "rejected"):
        raise InvalidRequest("status must be applied or rejected")
    pending = await list_changes(conn, org_id, plan_id, branch)
    chosen = [
        c for c in pending if (ids is None or c.id in ids) and (paths is None or c.path in paths)
    ]
    if ids is not None:
        unknown = set(ids) - {c.id for c in pending}
        if unknown:
            raise InvalidRequest(f"not pending: {', '.join(sorted(unknown))}")
    if not chosen:
        return []
    moved = {c.id for c in chosen}
    files = sorted({c.path for c in chosen})
    what = f"{status} {', '.join(files[:3])}" + (" …" if len(files) > 3 else "")
    await versions.commit(
        conn,
        org_id,
        plan_id,
        branch,
        "apply" if status == "applied" else "reject",
        what,
        lambda state: state.with_change_status(moved, status),
    )
    return chosen
