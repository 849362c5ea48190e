"""Audit entries from the hot paths (stream starts, worker processes), written in batches.

A stream start or a worker's exit must not wait on, or fail because of, the audit log. So
``note`` only queues an entry; a background task writes the queue every ``flush_s`` in one
transaction. A write that fails is logged and retried on the next tick; past
``max_pending`` entries (a database down for long), the oldest are dropped, and the log says
how many. Entries of request handlers are written in the handler's own transaction instead
(``domain.audit.record``), so they commit with what they describe.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.domain import audit
from plancast.server.domain.audit import AuditAction, Entry
from plancast.server.domain.principal import Principal

if TYPE_CHECKING:
    from plancast.server.streams.engine import StartedStream
    from plancast.server.workers.pool import Worker

logger = logging.getLogger("plancast.server.audit")


class AuditTrail:
    def __init__(
        self, engine: AsyncEngine, *, flush_s: float = 0.2, max_pending: int = 10_000
    ) -> None:
        self._engine = engine
        self._flush_s = flush_s
        self._max_pending = max_pending
        self._pending: list[audit.Entry] = []
        self._dropped = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="plancast-audit")

    def note(self, entry: audit.Entry) -> None:
        """Queue ``entry``; never blocks and never raises."""
        self._pending.append(entry)
        if len(self._pending) > self._max_pending:  # the database is down: drop the oldest
            del self._pending[0]
            self._dropped += 1

    # -- the hooks: a stream engine's start listener, a worker pool's listener ------------

    def stream_started(
        self, principal: Principal, started: StartedStream, model: str, worker_pid: int
    ) -> None:
        """A stream began: its ids, the model's name and its worker; never the prompt (nor
        the branch's name, which the user chose)."""
        self.note(
            Entry(
                AuditAction.STREAM_STARTED,
                org_id=principal.org_id,
                user_id=principal.user_id,
                target=started.stream_id,
                detail={
                    "plan_id": started.plan_id,
                    "model": audit.safe_model(model),
                    "worker_pid": worker_pid,
                },
            )
        )

    def worker_event(self, event: str, worker: Worker) -> None:
        """A worker process started (idle, holding no key yet) or exited (with its stream's
        ids, when a stream had claimed it)."""
        stream_id, org_id, user_id = worker.claimed_for or (None, None, None)
        action = AuditAction.WORKER_STARTED if event == "started" else AuditAction.WORKER_EXITED
        detail: dict[str, str | int | None] = {"pid": worker.pid}
        if stream_id is not None:
            detail["stream_id"] = stream_id
        self.note(Entry(action, org_id=org_id, user_id=user_id, detail=detail))

    # -- writing --------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write what is queued; raises if the database refuses (the entries stay queued)."""
        async with self._lock:
            if self._dropped:
                logger.warning(
                    "audit log: %d entries dropped while it could not be written", self._dropped
                )
                self._dropped = 0
            while self._pending:
                batch = self._pending[:500]
                del self._pending[:500]  # taken out, so that ``note`` never drops one of them
                try:
                    async with self._engine.begin() as conn:
                        await audit.record(conn, *batch)
                except BaseException:
                    self._pending[:0] = batch
                    raise

    async def close(self) -> None:
        """Stop the task and write what is left (logged, not raised, if that fails)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.flush()
        except Exception:
            logger.exception("audit log: %d entries could not be written", len(self._pending))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            try:
                await self.flush()
            except Exception:
                logger.exception("writing the audit log failed; will retry")
