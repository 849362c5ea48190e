"""Saving what a stream produced: its reply and changes join the plan in one version.

Used when a stream ends (``engine``) and when a stream that no process runs any
more is closed after a restart (``recovery``), so both save alike. A change whose
build failed (``builds``) joins the plan as ``failed``, never as ``pending``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import changes as changes_domain
from plancast.server.domain import convo, versions
from plancast.server.streams.builds import BuiltChange
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
    built: Sequence[BuiltChange] | None = None,
    *,
    reply_complete: bool | None = None,
) -> None:
    """Add the reply (partial unless ``status`` is finished) and its changes in one version.

    ``built`` holds the builds of those changes (``ReplyBuild.finish``), matched by change
    id; a change it lacks is stored without a build, for the client to build.
    ``reply_complete`` says the model's reply itself ended, even when the stream did not
    finish (stopped during a rebuild or the commit message): ``continue`` has nothing to add.
    """
    if not text and not ops:
        return
    message = await convo.insert_message(
        conn,
        live.org_id,
        live.plan_id,
        role="assistant",
        mode=mode,
        content=text,
        status="complete" if (reply_complete or status == "finished") else "partial",
        stream_id=live.id,
    )
    by_id = {b.change_id: b for b in built or ()}
    builds = [_build_of(by_id.get(cid)) for cid, _ in ops]
    await changes_domain.insert_changes(
        conn,
        live.org_id,
        live.plan_id,
        live.id,
        [op for _, op in ops],
        ids=[cid for cid, _ in ops],
        builds=builds,
    )
    states = tuple((cid, by_id[cid].status if cid in by_id else "pending") for cid, _ in ops)

    def mutate(state: versions.PlanState) -> versions.PlanState:
        state = append_messages(state, [message.id])
        return replace(state, changes=state.changes + states)

    failed = sum(1 for _, s in states if s == "failed")
    what = f"reply ({status})" + (f" with {len(ops)} change(s)" if ops else "")
    what += f", {failed} of them failed to build" if failed else ""
    await versions.commit(conn, live.org_id, live.plan_id, live.branch, "reply", what, mutate)


def _build_of(built: BuiltChange | None) -> changes_domain.ChangeBuild | None:
    if built is None:
        return None
    return changes_domain.ChangeBuild(built.result, built.base_sha256, built.build)
