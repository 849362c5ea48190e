"""Durable stream events: written in batches, never one commit per token.

Events wait in memory for at most ``flush_ms`` (or until ``flush_size`` are
queued) and are then written in one transaction. ``flush`` writes everything
queued so far; the engine calls it before a stream's final transaction, so that
a finished stream's events are all in the database.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.store.crypto import seal
from plancast.server.store.schema import stream_events
from plancast.server.streams.cluster import notify_events
from plancast.shared import StreamEvent, event_body, event_from_body

logger = logging.getLogger("plancast.server.streams")


def event_row(event: StreamEvent) -> dict[str, Any]:
    """An event as a ``stream_events`` row; ``data`` is cut from its frame text."""
    return {
        "stream_id": event.stream_id,
        "seq": event.seq,
        "type": event.TYPE,
        # Encrypted here, in the stream's own context (its org's key), not at the batch's
        # insert, which writes the events of many orgs at once.
        "data": seal(event_body(event), "stream_events.data"),
    }


def event_from_row(stream_id: str, seq: int, kind: str, data: str) -> StreamEvent:
    """The event of a row, its frame text joined from the row rather than encoded again."""
    return event_from_body(kind, stream_id, seq, data)


async def read_events(conn: AsyncConnection, stream_id: str, after: int) -> list[StreamEvent]:
    rows = await conn.execute(
        select(stream_events.c.seq, stream_events.c.type, stream_events.c.data)
        .where(stream_events.c.stream_id == stream_id, stream_events.c.seq > after)
        .order_by(stream_events.c.seq)
    )
    return [event_from_row(stream_id, seq, kind, data) for seq, kind, data in rows]


class EventLog:
    def __init__(
        self, engine: AsyncEngine, *, flush_ms: int, flush_size: int, notify: bool = False
    ) -> None:
        self._engine = engine
        self._notify = notify  # nudge other replicas' followers (PostgreSQL: cluster.py)
        self._flush_s = flush_ms / 1000
        self._flush_size = flush_size
        self._pending: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="plancast-eventlog")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.flush()

    def append(self, event: StreamEvent) -> None:
        self._pending.append(event_row(event))
        if len(self._pending) >= self._flush_size:
            self._wakeup.set()

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                batch = self._pending[: self._flush_size * 5]
                async with self._engine.begin() as conn:
                    await conn.execute(stream_events.insert(), batch)
                    if self._notify:
                        await notify_events(conn, {row["stream_id"] for row in batch})
                del self._pending[: len(batch)]

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._flush_s)
            except TimeoutError:
                pass
            self._wakeup.clear()
            try:
                await self.flush()
            except Exception:
                # Kept in memory and retried on the next tick; the final flush of
                # each stream raises to its engine if the database stays down.
                logger.exception("writing stream events failed; will retry")
