"""The org's members, their roles and its pending invites.

What each viewer may change is decided by the domain calls (``domain/orgs.py``, with
``principal.authorize``), as for the REST routes; the page only leaves out the controls a
viewer's role could not use. A change of role or a removal reaches the member's open
connections and streams at once (``memberships_changed``).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from plancast.server.domain import orgs
from plancast.server.domain.accounts import normalize_email
from plancast.server.domain.principal import Action, Role
from plancast.server.web import org_actions
from plancast.server.web.pages.errors import page, status_of
from plancast.server.web.pages.forms import field
from plancast.server.web.pages.render import redirect, render
from plancast.server.web.pages.viewer import Viewer, form_post, signed_in
from plancast.shared import PlancastError

DONE = {
    "invited": "Invite sent.",
    "role": "Role changed.",
    "removed": "Member removed.",
    "cancelled": "Invite cancelled.",
}
"""What a POST did, shown after its redirect (``?done=`` names one: no user data in URLs)."""


@dataclass(frozen=True, slots=True)
class Row:
    member: orgs.Member
    roles: list[Role]  # the roles the viewer may give this member; empty: no control
    removable: bool
    is_viewer: bool


def _rows(viewer: Viewer, members: list[orgs.Member]) -> list[Row]:
    owners = viewer.may(Action.MANAGE_OWNERS)
    givable = [r for r in Role if r != Role.OWNER or owners]
    rows: list[Row] = []
    for m in members:
        touchable = viewer.may(Action.MANAGE_MEMBERS) and (m.role != Role.OWNER or owners)
        is_viewer = m.user_id == viewer.user_id
        rows.append(Row(m, givable if touchable else [], touchable or is_viewer, is_viewer))
    return rows


async def _show(request: Request, viewer: Viewer, error: PlancastError | None = None) -> Response:
    p = viewer.acting
    async with request.app.state.db.connect() as conn:
        found = await orgs.members(conn, p.org_id)
        invites = await orgs.list_invites(conn, p) if viewer.may(Action.INVITE) else []
    status, headers = status_of(error) if error else (200, {})
    owners = viewer.may(Action.MANAGE_OWNERS)
    return render(
        request,
        "members.html",
        status=status,
        headers=headers,
        viewer=viewer,
        rows=_rows(viewer, found),
        invites=invites,
        can_invite=viewer.may(Action.INVITE),
        invite_roles=[r for r in Role if r != Role.OWNER or owners],
        error=error.message if error else None,
        notice=DONE.get(request.query_params.get("done", "")),
    )


@page
async def show(request: Request) -> Response:
    return await _show(request, await signed_in(request, Action.SEE_MEMBERS))


@page
async def invite(request: Request) -> Response:
    viewer, form = await form_post(request, Action.INVITE)
    p = viewer.acting
    try:
        email = normalize_email(field(form, "email"))
        role = orgs.parse_role(field(form, "role") or "member")
        await org_actions.send_invite(request.app.state, p, email, role)
    except PlancastError as exc:
        return await _show(request, viewer, exc)
    return redirect("/web/members?done=invited")


@page
async def change_role(request: Request) -> Response:
    viewer, form = await form_post(request, Action.SEE_MEMBERS)
    p, user_id = viewer.acting, request.path_params["user_id"]
    try:
        role = orgs.parse_role(field(form, "role"))
        await org_actions.change_role(request.app.state, p, user_id, role)
    except PlancastError as exc:
        return await _show(request, viewer, exc)
    return redirect("/web/members?done=role")


@page
async def remove(request: Request) -> Response:
    """Remove a member, or leave the org (the viewer's own row)."""
    viewer, _ = await form_post(request, Action.SEE_MEMBERS)
    p, user_id = viewer.acting, request.path_params["user_id"]
    try:
        await org_actions.remove_member(request.app.state, p, user_id)
    except PlancastError as exc:
        return await _show(request, viewer, exc)
    return redirect("/web/" if user_id == viewer.user_id else "/web/members?done=removed")


@page
async def cancel_invite(request: Request) -> Response:
    viewer, _ = await form_post(request, Action.INVITE)
    try:
        invite_id = request.path_params["invite_id"]
        await org_actions.cancel_invite(request.app.state, viewer.acting, invite_id)
    except PlancastError as exc:
        return await _show(request, viewer, exc)
    return redirect("/web/members?done=cancelled")
