"""Several server replicas on one PostgreSQL database: what they tell each other.

Replicas share nothing but the database (DESIGN invariant 4), so they talk through it:
PostgreSQL's LISTEN/NOTIFY on one channel, ``plancast``. A notification is only a nudge;
what it is about is always read from the tables, so a lost one costs latency, not data.

- **Events.** The event log's batch insert carries a ``pg_notify`` in its transaction, so
  the nudge arrives once the rows are visible. A replica following a stream that another
  replica runs reads the rows after its last sequence number, then waits for the next
  nudge (or ``POLL_S``, whichever comes first): no gap, no duplicate, as locally.
- **Commands.** ``stop``, and the ends of sessions and memberships, are sent to every
  replica; the one running the stream (or holding the connection) acts on it.

Payloads are JSON with ids only: no prompt, reply or key ever goes through the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

logger = logging.getLogger("plancast.server.streams")

CHANNEL = "plancast"
POLL_S = 1.0  # a follower reads the table at least this often, nudged or not
RECONNECT_S = 2.0
CHECK_S = 10.0
MAX_PAYLOAD = 7000  # PostgreSQL refuses a payload of 8000 bytes or more

Handler = Callable[[dict[str, Any]], None]


async def notify(conn: AsyncConnection, message: dict[str, Any]) -> None:
    """Queue a notification in ``conn``'s transaction: sent when it commits."""
    await conn.execute(select(func.pg_notify(CHANNEL, json.dumps(message, separators=(",", ":")))))


async def notify_events(conn: AsyncConnection, stream_ids: set[str]) -> None:
    """Nudge the followers of these streams (in as many notifications as the size needs)."""
    batch: list[str] = []
    size = 0
    for stream_id in sorted(stream_ids):
        if size + len(stream_id) + 3 > MAX_PAYLOAD and batch:
            await notify(conn, {"k": "events", "s": batch})
            batch, size = [], 0
        batch.append(stream_id)
        size += len(stream_id) + 3
    if batch:
        await notify(conn, {"k": "events", "s": batch})


class Cluster:
    """One replica's end of the channel: a dedicated connection that listens."""

    def __init__(self, database_url: str, replica_id: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self.replica_id = replica_id
        self._handlers: dict[str, Handler] = {}
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="plancast-cluster")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 10)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def waiter(self, stream_id: str) -> asyncio.Event:
        """An event set at the next nudge for ``stream_id``; take it before reading the table."""
        event = asyncio.Event()
        self._waiters.setdefault(stream_id, set()).add(event)
        return event

    def drop_waiter(self, stream_id: str, event: asyncio.Event) -> None:
        waiting = self._waiters.get(stream_id)
        if waiting is not None:
            waiting.discard(event)
            if not waiting:
                del self._waiters[stream_id]

    async def _listen(self) -> None:
        import asyncpg

        while True:
            connection = None
            try:
                connection = await asyncpg.connect(
                    self._dsn, server_settings={"application_name": "plancast-listen"}
                )
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._received)
                self._connected.set()
                self._wake_all()  # anything sent while we were away: followers re-read
                while not lost.is_set():
                    # A connection that died silently (no FIN, a dropped route) is found
                    # by asking it something now and then.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), CHECK_S)
                    if not lost.is_set():
                        await asyncio.wait_for(connection.fetchval("SELECT 1"), CHECK_S)
                logger.warning("the PostgreSQL listen connection was lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The type only: an asyncpg error can quote the DSN, password and all.
                logger.warning("cannot listen on PostgreSQL (%s); retrying", type(exc).__name__)
            finally:
                self._connected.clear()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close(timeout=2))
            await asyncio.sleep(RECONNECT_S)

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            kind = message["k"]
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed notification on %r", CHANNEL)
            return
        if kind == "events":
            for stream_id in message.get("s", ()):
                for event in self._waiters.get(stream_id, ()):
                    event.set()
            return
        handler = self._handlers.get(kind)
        if handler is None:
            return
        try:
            handler(message)
        except Exception:
            logger.exception("handling a %r notification failed", kind)

    def _wake_all(self) -> None:
        for waiting in self._waiters.values():
            for event in waiting:
                event.set()
