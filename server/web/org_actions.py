"""What changing an org's members, invites and a user's sessions does, from REST or a page.

Each action is one place: the domain change and its audit entry in one transaction, then
what must follow it (the open connections and streams told, the invite emailed). The JSON
routes (``rest/orgs.py``, ``rest/accounts.py``) and the web pages (``pages/members.py``,
``pages/sessions.py``) only parse and render around these.
"""

from __future__ import annotations

from typing import Any

from plancast.server.domain import audit, orgs, sessions
from plancast.server.domain.audit import AuditAction, Entry
from plancast.server.domain.principal import Principal, Role
from plancast.server.errors import NotFound


def _entry(p: Principal, action: AuditAction, target: str, detail: audit.Detail) -> Entry:
    return Entry(action, org_id=p.org_id, user_id=p.user_id, target=target, detail=detail)


async def change_role(state: Any, p: Principal, user_id: str, role: Role) -> None:
    async with state.db.begin() as conn:
        before = await orgs.role_of(conn, p.org_id, user_id)
        await orgs.set_role(conn, p, user_id, role)
        detail = {"from": str(before), "to": str(role)}
        await audit.record(conn, _entry(p, AuditAction.ROLE_CHANGED, user_id, detail))
    state.memberships_changed(p.org_id, user_id, role)


async def remove_member(state: Any, p: Principal, user_id: str) -> None:
    async with state.db.begin() as conn:
        await orgs.remove_member(conn, p, user_id)
        detail = {"left": user_id == p.user_id}
        await audit.record(conn, _entry(p, AuditAction.MEMBER_REMOVED, user_id, detail))
    state.memberships_changed(p.org_id, user_id, None)


async def send_invite(state: Any, p: Principal, email: str, role: Role) -> orgs.Invite:
    """Make the invite and email its code: the code goes to the invitee's mailbox only."""
    days = state.settings.invite_days
    async with state.db.begin() as conn:
        made, code = await orgs.invite(conn, p, email, role, days * 86400)
        detail = {"role": str(role)}  # the invite's id, not its address or code
        await audit.record(conn, _entry(p, AuditAction.INVITE_CREATED, made.id, detail))
    await state.mailer.send(email, "You are invited to plancast", invite_email(role, code, days))
    return made


def invite_email(role: Role, code: str, days: float) -> str:
    return (
        f"You are invited to join an org on plancast as {role}.\n\n"
        f"With the plancast client: plancast signup EMAIL --invite {code}\n"
        f"(or, signed in already: plancast accept-invite {code})\n\n"
        f"The invite works once, until it expires in {days:g} days.\n"
    )


async def cancel_invite(state: Any, p: Principal, invite_id: str) -> None:
    async with state.db.begin() as conn:
        await orgs.cancel_invite(conn, p, invite_id)
        await audit.record(conn, _entry(p, AuditAction.INVITE_CANCELLED, invite_id, {}))


async def revoke_session(state: Any, user_id: str, session_id: str) -> None:
    """End one of the user's sessions, its streams and connections with it.

    Raises:
        NotFound: the user has no such session (it may have ended already).
    """
    async with state.db.begin() as conn:
        if not await sessions.revoke(conn, user_id, session_id):
            raise NotFound("you have no such session (it may have ended already)")
        entry = Entry(AuditAction.SESSION_REVOKED, user_id=user_id, target=session_id)
        await audit.record(conn, entry)
    state.signin.end_sessions([session_id])
