"""Saving what a stream produced: its reply and changes join the plan in one version.

Used when a stream ends (``engine``) and when a stream that no process runs any
more is closed after a restart (``recovery``), so both save alike.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import changes as changes_domain
from plancast.server.domain import convo, versions
from plancast.server.streams.live import LiveStream
from plancast.shared import FileOp


def append_messages(state: versions.PlanState, ids: list[str]) -> versions.PlanState:
    return replace(state, messages=state.messages + tuple(ids))


async def record_reply(
    conn: AsyncConnection,
    live: LiveStream,
    mode: str,
    text: str,
    ops: list[tuple[str, FileOp]],
    status: str,
) -> None:
    """Add the reply (partial unless ``status`` is finished) and its changes in one version."""
    if not text and not ops:
        return
    message = await convo.insert_message(
        conn,
        live.org_id,
        live.plan_id,
        role="assistant",
        mode=mode,
        content=text,
        status="complete" if status == "finished" else "partial",
        stream_id=live.id,
    )
    await changes_domain.insert_changes(
        conn,
        live.org_id,
        live.plan_id,
        live.id,
        [op for _, op in ops],
        ids=[cid for cid, _ in ops],
    )

    def mutate(state: versions.PlanState) -> versions.PlanState:
        state = append_messages(state, [message.id])
        return replace(state, changes=state.changes + tuple((cid, "pending") for cid, _ in ops))

    what = f"reply ({status})" + (f" with {len(ops)} change(s)" if ops else "")
    await versions.commit(conn, live.org_id, live.plan_id, live.branch, "reply", what, mutate)
