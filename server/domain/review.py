"""Rejecting part of a file's pending changes: the hunks the user drops, by hunk review.

The server never reads the user's files, so it cannot split a change into hunks itself: the
client computes, against its disk, the file with only the hunks the user keeps, and sends
that text. The server swaps the file's pending changes for one change that writes it.

Rules:

1. ``ids`` must name pending changes of this plan branch, every one of them on ``path``
   (another path's change, or one already applied or rejected, is ``InvalidRequest``; a
   plan of another org is ``NotFound``).
2. One new version (kind ``reject``) both marks those changes rejected and adds one pending
   ``WriteFile(path, content)``. Nothing is half done: a reader sees the old state or the
   new one, and rewinding that version brings the old changes back.
3. The new change takes the place of the first change it replaces in the plan's order, so
   the file keeps its place among the others, and keeps their stream when they all came
   from one (so ``apply --commit`` still finds the committer's message).
4. ``content`` is the whole file as the client computed it. Its size is bounded by the
   request size limit (``max_request_bytes``) before it reaches this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import changes, versions
from plancast.server.errors import Conflict, InvalidRequest
from plancast.shared import WriteFile, check_relative_path


@dataclass(frozen=True, slots=True)
class HunksRejected:
    """What one ``reject_hunks`` did: the changes it rejected, the one it added, the version."""

    rejected: tuple[changes.Change, ...]
    added: changes.Change
    version: int


async def reject_hunks(
    conn: AsyncConnection,
    org_id: str,
    plan_id: str,
    branch: str,
    path: str,
    ids: Sequence[str],
    content: str,
) -> HunksRejected:
    """Reject the changes ``ids`` of ``path`` and add one pending change that writes ``content``.

    Raises:
        NotFound: no such plan branch in this org.
        InvalidRequest: ``ids`` is empty, or names a change that is not pending on ``path``.
        Conflict: another request applied or rejected one of them meanwhile.
        UnsafePathError: ``path`` is not a safe project-relative path.
    """
    path = check_relative_path(path)
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        raise InvalidRequest("name at least one pending change of the file in 'ids'")
    pending = {c.id: c for c in await changes.list_changes(conn, org_id, plan_id, branch)}
    unknown = [cid for cid in wanted if cid not in pending]
    if unknown:
        raise InvalidRequest(f"not pending: {', '.join(sorted(unknown))}")
    elsewhere = sorted(cid for cid in wanted if pending[cid].path != path)
    if elsewhere:
        raise InvalidRequest(f"not changes of {path}: {', '.join(elsewhere)}")
    rejected = tuple(pending[cid] for cid in wanted)
    streams = {c.stream_id for c in rejected}
    stream_id = streams.pop() if len(streams) == 1 else None
    op = WriteFile(path, content)
    (added_id,) = await changes.insert_changes(conn, org_id, plan_id, stream_id, [op])
    doomed = set(wanted)

    def mutate(state: versions.PlanState) -> versions.PlanState:
        moved = {cid for cid, status in state.changes if cid in doomed and status == "pending"}
        if moved != doomed:  # another writer applied or rejected one meanwhile
            raise Conflict(f"not pending any more: {', '.join(sorted(doomed - moved))}")
        out = [(cid, "rejected" if cid in doomed else s) for cid, s in state.changes]
        first = next(n for n, (cid, _) in enumerate(state.changes) if cid in doomed)
        out.insert(first, (added_id, "pending"))  # rule 3: where the first one was
        return replace(state, changes=tuple(out))

    version = await versions.commit(
        conn, org_id, plan_id, branch, "reject", f"rejected hunks of {path}", mutate
    )
    now_pending = await changes.list_changes(conn, org_id, plan_id, branch)
    added = next(c for c in now_pending if c.id == added_id)
    return HunksRejected(rejected=rejected, added=added, version=version.number)
