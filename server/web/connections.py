"""Open WebSockets, by user, so that a sign-out or a changed membership reaches them at once.

A REST request reads the caller's role each time; a WebSocket authenticates once and then
lives for hours. When a session ends, or a member's role changes or they are removed, the
server tells this registry, which updates or closes the connections concerned; other
replicas are told through PostgreSQL and do the same with theirs (``app.tell_replicas``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from plancast.server.domain.principal import Principal, Role

CLOSE_SIGNED_OUT = 4401
CLOSE_REMOVED = 4403


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

    def sessions_ended(self, session_ids: Iterable[str]) -> int:
        ended = set(session_ids)
        hit = [c for c in self._open if c.principal.session_id in ended]
        for connection in hit:
            connection.end(CLOSE_SIGNED_OUT, "signed out")
        return len(hit)

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
