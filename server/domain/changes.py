"""Pending changes: the file operations a reply proposed, until applied or rejected.

The server stores operations, and what it could build from them: the client applies
them to the files on the user's disk, which the server never reads. A change's status
lives in the plan version, so rewinding restores it.

Rules:

1. Statuses: ``pending`` → ``applied`` | ``rejected``, and ``failed``: the server could not
   build the change's file (``streams.builds``), so it was never pending.
2. A change may carry its build: ``result`` (the built file, on the last change of its
   file's build), ``base_sha256`` (of the text it was built on) and ``build`` (a JSON
   object: ``status``, ``strategy``, ``attempts``, ``reason`` ...). Changes stored without
   one (older rows, or a reply recovered after a crash) are built by the client.
3. ``set_status`` applies only pending changes. It rejects pending ones, and failed ones
   only when they are named, by id or by path: a failed change is kept as a record of what
   did not land (``plancast diff`` names it) until someone asks for it to go, and "reject
   everything" means what is pending. A path names the changes that touch it (a move, both
   of its paths), and a failed build's changes go together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import versions
from plancast.server.domain.ids import new_id, now
from plancast.server.errors import InvalidRequest
from plancast.server.store.schema import changes
from plancast.shared import FileOp, op_from_dict, op_to_dict

STATUSES = ("pending", "applied", "rejected", "failed")


@dataclass(frozen=True, slots=True)
class ChangeBuild:
    """What the server built for one change (rule 2)."""

    result: str | None = field(default=None, repr=False)
    base_sha256: str | None = None
    build: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Change:
    id: str
    path: str
    op: FileOp
    status: str
    stream_id: str | None
    position: int
    result: str | None = field(default=None, repr=False)
    base_sha256: str | None = None
    build: dict[str, Any] | None = None


async def insert_changes(
    conn: AsyncConnection,
    org_id: str,
    plan_id: str,
    stream_id: str | None,
    ops: Sequence[FileOp],
    *,
    ids: Sequence[str] | None = None,
    builds: Sequence[ChangeBuild | None] | None = None,
) -> list[str]:
    """Write change rows; they join the plan only when a version lists them.

    ``builds``, when given, has one entry per op (None: nothing built for it).
    """
    ids = list(ids) if ids is not None else [new_id("chg") for _ in ops]
    built = list(builds) if builds is not None else [None] * len(ops)
    if len(built) != len(ops):
        raise ValueError("insert_changes needs one build (or None) per op")
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
                    "result": build.result if build else None,
                    "base_sha256": build.base_sha256 if build else None,
                    "build": json.dumps(build.build) if build and build.build else None,
                    "created_at": at,
                }
                for n, (cid, op, build) in enumerate(zip(ids, ops, built, strict=True))
            ],
        )
    return ids


async def list_changes(
    conn: AsyncConnection,
    org_id: str,
    plan_id: str,
    branch: str,
    *,
    status: str | tuple[str, ...] | None = "pending",
) -> list[Change]:
    """The branch's changes in plan order: those with ``status`` (one, several, or all)."""
    state = (await versions.head(conn, org_id, plan_id, branch)).state
    statuses = (status,) if isinstance(status, str) else status
    wanted = [(cid, s) for cid, s in state.changes if statuses is None or s in statuses]
    if not wanted:
        return []
    rows = await conn.execute(
        select(
            changes.c.id,
            changes.c.path,
            changes.c.op,
            changes.c.stream_id,
            changes.c.position,
            changes.c.result,
            changes.c.base_sha256,
            changes.c.build,
        ).where(changes.c.org_id == org_id, changes.c.id.in_([cid for cid, _ in wanted]))
    )
    by_id = {row[0]: row for row in rows}
    result = []
    for cid, s in wanted:
        row = by_id.get(cid)
        if row is not None:
            _, path, op, stream_id, position, built, base, build = row
            result.append(
                Change(
                    cid,
                    path,
                    op_from_dict(json.loads(op)),
                    s,
                    stream_id,
                    position,
                    built,
                    base,
                    json.loads(build) if build else None,
                )
            )
    return result


def _build_group(change: Change) -> str:
    """The id of the last change of ``change``'s build: the one that stands for the build."""
    return str((change.build or {}).get("result_in") or change.id)


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
    """Mark changes applied or rejected, chosen by id, by path, or all (rule 3).

    Returns the changes that moved; makes a version only when some did.
    """
    if status not in ("applied", "rejected"):
        raise InvalidRequest("status must be applied or rejected")
    listed = await list_changes(conn, org_id, plan_id, branch, status=("pending", "failed"))
    movable = [
        c
        for c in listed
        if c.status == "pending"
        or (c.status == "failed" and status == "rejected" and (ids, paths) != (None, None))
    ]
    chosen = [
        c
        for c in movable
        if (ids is None or c.id in ids) and (paths is None or set(c.op.paths) & set(paths))
    ]
    # A failed build's changes go together: naming one lets the whole record go.
    picked = {c.id for c in chosen}
    groups = {_build_group(c) for c in chosen if c.status == "failed"}
    chosen = [
        c for c in movable if c.id in picked or (c.status == "failed" and _build_group(c) in groups)
    ]
    if ids is not None:
        unknown = set(ids) - {c.id for c in movable}
        if unknown:
            failed = {c.id for c in listed if c.status == "failed"} & unknown
            hint = " (a change whose build failed can be rejected, not applied)" if failed else ""
            raise InvalidRequest(f"not pending: {', '.join(sorted(unknown))}{hint}")
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
