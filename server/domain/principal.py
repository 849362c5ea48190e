"""Who is asking, and what they may do: the one policy layer.

Rules:

1. Every request resolves to a ``Principal`` (user, org, role) before any
   handler logic runs; handlers receive it and pass ``org_id`` to every query.
2. ``authorize`` is the only place that decides whether a role may perform an
   action. Local mode is a single implicit owner, checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from plancast.server.errors import Forbidden


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Action(StrEnum):
    READ = "read"  # projects, plans, context, conversation, changes, streams
    WRITE = "write"  # create and change plans, load context, start and stop streams
    ADMIN = "admin"  # members, roles, org settings


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.ADMIN: frozenset(Action),
    Role.MEMBER: frozenset({Action.READ, Action.WRITE}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    org_id: str
    role: Role
    session_id: str | None = None  # the sign-in session; revoking it stops its streams


def authorize(principal: Principal, action: Action) -> None:
    """Raise ``Forbidden`` unless the principal's role allows ``action``."""
    if action not in PERMISSIONS[principal.role]:
        raise Forbidden(f"the {principal.role} role may not {action} here")
