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
    """What a request does to its org; the table below says which roles may.

    docs/security.md shows the same table; a test checks that the two agree.
    """

    READ = "read"  # projects, plans, context, conversation, changes, streams, usage of a plan
    WRITE = "write"  # create and change plans, load context, start and stop streams
    SEE_MEMBERS = "see_members"  # the org's members and their roles
    INVITE = "invite"  # invite members and admins, list and cancel invites
    MANAGE_MEMBERS = "manage_members"  # change roles between member and admin, remove them
    MANAGE_OWNERS = "manage_owners"  # make or unmake owners, remove an owner
    SEE_ORG_USAGE = "see_org_usage"  # the org's token usage by model and day
    SEE_AUDIT = "see_audit"  # the org's audit log
    DELETE_ORG = "delete_org"  # delete the org and all its data


_MEMBER = frozenset({Action.READ, Action.WRITE, Action.SEE_MEMBERS})
_ADMIN = _MEMBER | {
    Action.INVITE,
    Action.MANAGE_MEMBERS,
    Action.SEE_ORG_USAGE,
    Action.SEE_AUDIT,
}

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.ADMIN: frozenset(_ADMIN),
    Role.MEMBER: _MEMBER,
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
