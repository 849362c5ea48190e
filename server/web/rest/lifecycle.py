"""The end of data (team mode): export your account, delete it, delete your org.

What each holds and removes is ``domain/lifecycle.py``'s; the sequence around it (stop the
streams concerned first, audit in the deletion's transaction, forget a deleted org's key)
is ``web/data_lifecycle.py``'s, which the web pages run too. These routes read the JSON
body, check who asks and answer in JSON.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain.principal import Action
from plancast.server.web import data_lifecycle
from plancast.server.web.auth import identify
from plancast.server.web.rest.inputs import field_str, principal_for, read_json


async def export_account(request: Request) -> Response:
    who = await identify(request)
    data = await data_lifecycle.export_account(request.app.state, who.user_id)
    return JSONResponse(data, headers=data_lifecycle.EXPORT_HEADERS)


async def delete_account(request: Request) -> Response:
    who = await identify(request)
    request.app.state.throttle.check(request)
    password = field_str(await read_json(request), "password") or ""
    done = await data_lifecycle.delete_account(request.app.state, who.user_id, password)
    return JSONResponse(
        {
            "deleted": who.user_id,
            "orgs_deleted": done.plan.deleted_orgs,
            "orgs_left": done.plan.left_orgs,
            "sessions_ended": len(done.sessions),
        }
    )


async def delete_org(request: Request) -> Response:
    p = await principal_for(request, Action.DELETE_ORG)
    confirm = field_str(await read_json(request), "confirm") or ""
    done = await data_lifecycle.delete_org(request.app.state, p, confirm)
    return JSONResponse(
        {
            "deleted": p.org_id,
            "projects": done.projects,
            "plans": done.plans,
            "members": done.members,
        }
    )


ROUTES = [
    Route("/api/v1/account/export", export_account, methods=["GET"]),
    Route("/api/v1/account", delete_account, methods=["DELETE"]),
    Route("/api/v1/org", delete_org, methods=["DELETE"]),
]
