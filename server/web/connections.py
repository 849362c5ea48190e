"""Open WebSockets, by user, so that a sign-out or a changed membership reaches them at once.

A REST request reads the caller's role each time; a WebSocket authenticates once and then
lives for hours. When a session ends, or a member's role changes or they are removed, the
server tells this registry, which updates or closes the connections concerned; other
replicas are told through PostgreSQL and do the same with theirs (``app.tell_replicas``).
A session that expires while its connections are open is found by ``sweep``, once a minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.domain import sessions
from plancast.server.domain.principal import Principal, Role

logger = logging.getLogger("plancast.server.web")

CLOSE_SIGNED_OUT = 4401
CLOSE_REMOVED = 4403
SWEEP_S = 60.0
"""How often the open connections' sessions are checked for expiry (``sweep``)."""


class Watched(Protocol):
    principal: Principal

    def end(self, code: int, reason: str) -> None: ...


class Connections:
    def __init__(self) -> None:
        self._open: set[Watched] = set()

    def add(self, connection: Watched) -> None:
        self._open.add(connection)

    def discard(self, connection: Watched) -> None:
        self._open.discard(connection)

    def session_ids(self) -> set[str]:
        """The sign-in sessions that hold open connections."""
        return {c.principal.session_id for c in self._open if c.principal.session_id}

    def sessions_ended(self, session_ids: Iterable[str], reason: str = "signed out") -> int:
        ended = set(session_ids)
        hit = [c for c in self._open if c.principal.session_id in ended]
        for connection in hit:
            connection.end(CLOSE_SIGNED_OUT, reason)
        return len(hit)

    async def sweep(self, engine: AsyncEngine) -> int:
        """Close the connections whose session has expired since they opened; returns how many.

        A sign-out reaches them at once (``sessions_ended``); an expiry has no event, so the
        server looks every ``SWEEP_S``. The sessions still live are marked as used.
        """
        open_ids = self.session_ids()
        if not open_ids:
            return 0
        async with engine.begin() as conn:
            ended = await sessions.keep_open(conn, open_ids)
        return self.sessions_ended(ended, "session expired") if ended else 0

    async def sweep_every(self, engine: AsyncEngine, every_s: float = SWEEP_S) -> None:
        """``sweep`` forever (the app runs it as a task in team mode and cancels it at exit)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.sweep(engine)
            except Exception:
                logger.exception("checking the open connections' sessions failed; will retry")

    def membership_changed(self, org_id: str, user_id: str, role: Role | None) -> int:
        """Give the user's connections in the org their new role, or close them (None)."""
        hit = [
            c for c in self._open if c.principal.org_id == org_id and c.principal.user_id == user_id
        ]
        for connection in hit:
            if role is None:
                connection.end(CLOSE_REMOVED, "removed from the org")
            else:
                p = connection.principal
                connection.principal = Principal(p.user_id, p.org_id, role, p.session_id)
        return len(hit)
