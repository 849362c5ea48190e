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
from plancast.server.web import org_actions
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
    await org_actions.change_role(request.app.state, p, user_id, role)
    return JSONResponse({"user_id": user_id, "role": role})


async def remove_member(request: Request) -> Response:
    p = await principal_for(request, Action.SEE_MEMBERS)
    user_id = request.path_params["user_id"]
    await org_actions.remove_member(request.app.state, p, user_id)
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
    made = await org_actions.send_invite(request.app.state, p, email, role)
    return JSONResponse(
        {"id": made.id, "email": email, "role": role, "expires_at": made.expires_at},
        status_code=201,
    )


async def cancel_invite(request: Request) -> Response:
    p = await principal_for(request, Action.INVITE)
    await org_actions.cancel_invite(request.app.state, p, request.path_params["invite_id"])
    return JSONResponse({"cancelled": True})


ROUTES = [
    Route("/api/v1/org/members", list_members, methods=["GET"]),
    Route("/api/v1/org/members/{user_id}", change_member, methods=["PATCH"]),
    Route("/api/v1/org/members/{user_id}", remove_member, methods=["DELETE"]),
    Route("/api/v1/org/invites", list_invites, methods=["GET"]),
    Route("/api/v1/org/invites", create_invite, methods=["POST"]),
    Route("/api/v1/org/invites/{invite_id}", cancel_invite, methods=["DELETE"]),
]
