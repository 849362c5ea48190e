"""The current org's members, roles and invites (team mode).

Who may do what is decided by ``principal.authorize``'s table, inside the domain calls;
a change of role or a removal is told to the open connections and streams at once.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain import orgs
from plancast.server.domain.accounts import normalize_email
from plancast.server.domain.principal import Action
from plancast.server.web.rest.inputs import field_str, principal_for, read_json


async def list_members(request: Request) -> Response:
    p = await principal_for(request, Action.SEE_MEMBERS)
    async with request.app.state.db.connect() as conn:
        found = await orgs.members(conn, p.org_id)
    return JSONResponse(
        {
            "org_id": p.org_id,
            "members": [
                {"user_id": m.user_id, "email": m.email, "role": m.role, "joined_at": m.joined_at}
                for m in found
            ],
        }
    )


async def change_member(request: Request) -> Response:
    p = await principal_for(request, Action.SEE_MEMBERS)
    user_id = request.path_params["user_id"]
    role = orgs.parse_role(field_str(await read_json(request), "role") or "")
    async with request.app.state.db.begin() as conn:
        await orgs.set_role(conn, p, user_id, role)
    request.app.state.memberships_changed(p.org_id, user_id, role)
    return JSONResponse({"user_id": user_id, "role": role})


async def remove_member(request: Request) -> Response:
    p = await principal_for(request, Action.SEE_MEMBERS)
    user_id = request.path_params["user_id"]
    async with request.app.state.db.begin() as conn:
        await orgs.remove_member(conn, p, user_id)
    request.app.state.memberships_changed(p.org_id, user_id, None)
    return JSONResponse({"user_id": user_id, "removed": True})


async def list_invites(request: Request) -> Response:
    p = await principal_for(request, Action.INVITE)
    async with request.app.state.db.connect() as conn:
        pending = await orgs.list_invites(conn, p)
    return JSONResponse(
        {
            "invites": [
                {
                    "id": i.id,
                    "email": i.email,
                    "role": i.role,
                    "created_at": i.created_at,
                    "expires_at": i.expires_at,
                }
                for i in pending
            ]
        }
    )


async def create_invite(request: Request) -> Response:
    p = await principal_for(request, Action.INVITE)
    data = await read_json(request)
    email = normalize_email(field_str(data, "email") or "")
    role = orgs.parse_role(field_str(data, "role", required=False) or "member")
    settings = request.app.state.settings
    async with request.app.state.db.begin() as conn:
        made, code = await orgs.invite(conn, p, email, role, settings.invite_days * 86400)
    await request.app.state.mailer.send(
        email,
        "You are invited to plancast",
        f"You are invited to join an org on plancast as {role}.\n\n"
        f"With the plancast client: plancast signup --invite {code}\n"
        f"(or, signed in already: plancast accept-invite {code})\n\n"
        f"The invite works once, until it expires in {settings.invite_days:g} days.\n",
    )
    return JSONResponse(
        {"id": made.id, "email": email, "role": role, "expires_at": made.expires_at},
        status_code=201,
    )


async def cancel_invite(request: Request) -> Response:
    p = await principal_for(request, Action.INVITE)
    async with request.app.state.db.begin() as conn:
        await orgs.cancel_invite(conn, p, request.path_params["invite_id"])
    return JSONResponse({"cancelled": True})


ROUTES = [
    Route("/api/v1/org/members", list_members, methods=["GET"]),
    Route("/api/v1/org/members/{user_id}", change_member, methods=["PATCH"]),
    Route("/api/v1/org/members/{user_id}", remove_member, methods=["DELETE"]),
    Route("/api/v1/org/invites", list_invites, methods=["GET"]),
    Route("/api/v1/org/invites", create_invite, methods=["POST"]),
    Route("/api/v1/org/invites/{invite_id}", cancel_invite, methods=["DELETE"]),
]
