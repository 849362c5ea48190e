"""Exporting an account, deleting it, deleting an org: the sequences that the REST routes
(``rest/lifecycle.py``) and the web pages (``pages/data.py``) both run.

Each sequence is more than its domain call, and its order matters, so it lives once, here:
the streams concerned stop first (``closing.py``), since a deletion refuses a running stream;
the audit entry commits in the deletion's transaction; every replica then forgets a deleted
org's data key (``org_shredded``); and on SQLite the WAL is emptied of the deleted rows.
The callers check who asks, throttle, and shape the answer.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import State

from plancast.server.domain import audit, lifecycle, orgs, sessions
from plancast.server.domain.audit import AuditAction, Entry
from plancast.server.domain.principal import Action, Principal, authorize
from plancast.server.errors import InvalidRequest
from plancast.server.web import closing

EXPORT_HEADERS = {"Content-Disposition": 'attachment; filename="plancast-export.json"'}
"""An export is a download, whichever route serves it."""


async def export_account(state: State, user_id: str) -> dict[str, Any]:
    """The user's export (``domain/lifecycle.py`` Rule 1), audited once it was read."""
    db = state.db
    async with db.connect() as conn:
        mine = await orgs.orgs_of(conn, user_id)
    for org in mine:  # their content is stored encrypted under each org's data key
        await state.keys.enter(db, org.id)
    async with db.connect() as conn:
        data = await lifecycle.export_user(conn, user_id)
    async with db.begin() as conn:
        detail = {"orgs": len(data["orgs"]), "memberships": len(data["memberships"])}
        await audit.record(conn, Entry(AuditAction.EXPORTED, user_id=user_id, detail=detail))
    return data


async def delete_account(state: State, user_id: str, password: str) -> lifecycle.AccountDeleted:
    """Delete the account, after asking for its password again.

    Raises:
        Forbidden: a wrong password. RateLimited: too many wrong ones.
        Conflict: the last owner of an org with other members (then nothing stopped).
        Busy: a stream in an org to delete still ran after the bounded wait.
    """
    await state.signin.check_password(user_id, password)
    async with state.db.connect() as conn:
        plan = await lifecycle.plan_account_deletion(conn, user_id)  # conflict: stop nothing
        ended = [s.id for s in await sessions.list_for_user(conn, user_id)]
    await closing.close_account(state, user_id, ended, [*plan.deleted_orgs, *plan.left_orgs])
    async with state.db.begin() as conn:
        done = await lifecycle.delete_account(conn, user_id)
        await audit.record(conn, *_account_entries(user_id, done))
    state.signin.end_sessions(done.sessions)  # any that began meanwhile
    for org in done.orgs:
        state.org_shredded(org.org_id)  # its data key's row went: every replica forgets it
    await lifecycle.scrub(state.db)
    return done


async def delete_org(state: State, p: Principal, confirm: str) -> lifecycle.OrgDeleted:
    """Delete the principal's current org, ``confirm`` being its name as typed.

    Raises:
        Forbidden: not an owner. InvalidRequest: ``confirm`` is not the org's name.
        Busy: one of its streams still ran after the bounded wait.
    """
    authorize(p, Action.DELETE_ORG)
    async with state.db.connect() as conn:
        name = next((o.name for o in await orgs.orgs_of(conn, p.user_id) if o.id == p.org_id), None)
        member_ids = [m.user_id for m in await orgs.members(conn, p.org_id)]
    if name is None or confirm != name:
        raise InvalidRequest("to delete the org, confirm with its name, exactly as it is")
    await closing.close_org(state, p.org_id, member_ids)
    async with state.db.begin() as conn:
        done = await lifecycle.delete_org(conn, p.org_id)
        await audit.record(conn, _org_deleted(p.user_id, done))
    state.org_shredded(p.org_id)  # its data key's row went: every replica forgets it
    await lifecycle.scrub(state.db)
    return done


def _account_entries(user_id: str, done: lifecycle.AccountDeleted) -> list[Entry]:
    detail = {
        "orgs_deleted": len(done.orgs),
        "orgs_left": len(done.plan.left_orgs),
        "sessions_ended": len(done.sessions),
    }
    return [
        Entry(AuditAction.ACCOUNT_DELETED, user_id=user_id, target=user_id, detail=detail),
        *(
            Entry(
                AuditAction.MEMBER_REMOVED,
                org_id=org_id,
                user_id=user_id,
                target=user_id,
                detail={"left": True, "account_deleted": True},
            )
            for org_id in done.plan.left_orgs
        ),
        *(_org_deleted(user_id, org) for org in done.orgs),
    ]


def _org_deleted(user_id: str, done: lifecycle.OrgDeleted) -> Entry:
    """Only the org's id and counts: its name went with it."""
    return Entry(
        AuditAction.ORG_DELETED,
        org_id=done.org_id,
        user_id=user_id,
        target=done.org_id,
        detail={"projects": done.projects, "plans": done.plans, "members": done.members},
    )
