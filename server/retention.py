"""Plan retention: plans unchanged for ``plan_retention_days`` are deleted, every row of them.

The purge runs once at start-up and then every ``every_s`` (a day) in a background task
that stops with the server. Each plan goes in a transaction of its own, so a long purge
never holds the database; a plan that a stream began on meanwhile is skipped (``busy``).
Each org that lost plans gets one audit entry with the count. Stopping is a flag, not a
cancellation: a purge under way stops after its current plan and still writes its entries.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.domain import audit, lifecycle
from plancast.server.domain.ids import now
from plancast.server.errors import Busy, NotFound

logger = logging.getLogger("plancast.server.retention")

DAY_S = 86400.0


class PlanRetention:
    def __init__(self, engine: AsyncEngine, days: float, *, every_s: float = DAY_S) -> None:
        self._engine = engine
        self._days = days
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Purge now, then start the periodic task (nothing at all when retention is off)."""
        if self._days <= 0:
            return
        await self._purge_logged()
        self._task = asyncio.create_task(self._run(), name="plancast-retention")

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def purge(self) -> dict[str, int]:
        """Delete every stale plan; returns how many went, by org."""
        cutoff = now() - self._days * DAY_S
        async with self._engine.connect() as conn:
            stale = await lifecycle.stale_plans(conn, cutoff)
        purged: Counter[str] = Counter()
        for org_id, plan_id in stale:
            if self._stop.is_set():
                break
            try:
                async with self._engine.begin() as conn:
                    gone = await lifecycle.purge_plan(conn, org_id, plan_id, cutoff)
            except (Busy, NotFound):
                continue  # a stream began on it, or it was deleted meanwhile
            if gone:
                purged[org_id] += 1
        if purged:
            async with self._engine.begin() as conn:
                await audit.record(conn, *lifecycle.purge_entries(purged, self._days))
            await lifecycle.scrub(self._engine)
            logger.info(
                "retention: deleted %d plan(s) unchanged for %g days, in %d org(s)",
                sum(purged.values()),
                self._days,
                len(purged),
            )
        return dict(purged)

    async def _purge_logged(self) -> None:
        try:
            await self.purge()
        except Exception:
            logger.exception("retention: purging old plans failed; will retry")

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), self._every_s)
                return
            except TimeoutError:
                await self._purge_logged()
