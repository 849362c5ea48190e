"""Closing streams that no process runs any more (a crash, a dead replica).

Each orphan is marked interrupted. Its reply is rebuilt from the stored
``delta`` events and reparsed for changes, which reuse the ids clients saw
live; both join the conversation, so ``continue`` picks up from it. An ``end``
event closes its event log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.domain.ids import new_id
from plancast.server.store.crypto import Keyring
from plancast.server.store.schema import stream_events
from plancast.server.streams import records
from plancast.server.streams.eventlog import event_row, read_events
from plancast.server.streams.live import LiveStream
from plancast.server.streams.outcome import record_reply
from plancast.shared import ChangeEvent, Delta, End, FileOp, OpParsed, ReplyParser

logger = logging.getLogger("plancast.server.streams")

INTERRUPTED = "the server stopped while this stream ran; the partial reply was kept"


async def recover_orphans(
    db: AsyncEngine,
    *,
    only_expired: bool,
    owner: str = "recovery",
    lease_s: float = 30.0,
    cluster_notify: Callable[[AsyncConnection, set[str]], Awaitable[None]] | None = None,
    keys: Keyring | None = None,
) -> list[str]:
    """Close every orphaned stream; returns the ids of those this call closed.

    Each is claimed first (``records.claim_orphan``), so replicas that look for orphans at
    the same time never close one twice.
    """
    async with db.connect() as conn:
        orphans = await records.orphaned(conn, only_expired=only_expired)
    closed: list[str] = []
    for stream_id, org_id in orphans:
        async with db.begin() as conn:
            claimed = await records.claim_orphan(
                conn, stream_id, owner, only_expired=only_expired, lease_s=lease_s
            )
            if not claimed:
                continue
            if keys is not None:
                await keys.use_org(conn, org_id)
            record = await records.get(conn, org_id, stream_id)
            events = await read_events(conn, stream_id, 0)
            text = "".join(e.text for e in events if isinstance(e, Delta))
            ops: list[tuple[str, FileOp]] = []
            if record.mode != "chat":
                # Same text, same parser, same order: the ids clients saw live are reused.
                seen = [e.change_id for e in events if isinstance(e, ChangeEvent)]
                parser = ReplyParser()
                parsed = parser.feed(text) + parser.finish()
                found = [e.op for e in parsed if isinstance(e, OpParsed)]
                ids = seen[: len(found)] + [new_id("chg") for _ in found[len(seen) :]]
                ops = list(zip(ids, found, strict=True))
            live = LiveStream(stream_id, org_id, record.plan_id, record.branch)
            await record_reply(conn, live, record.mode, text, ops, "interrupted")
            end = End(
                stream_id=stream_id,
                seq=(events[-1].seq if events else 0) + 1,
                status="interrupted",
                error_code=None,
                error_message=INTERRUPTED,
                changes=len(ops),
            )
            await conn.execute(stream_events.insert(), [event_row(end)])
            await records.finish(
                conn,
                stream_id,
                status="interrupted",
                last_seq=end.seq,
                error_code=None,
                error_message=INTERRUPTED,
            )
            if cluster_notify is not None:
                await cluster_notify(conn, {stream_id})
        closed.append(stream_id)
        logger.info("stream %s marked interrupted; kept %d reply chars", stream_id, len(text))
    return closed
