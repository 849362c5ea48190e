"""A plan's conversation."""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from plancast.server.domain import convo, plans
from plancast.server.domain.principal import Action
from plancast.server.web.rest.inputs import branch_of, principal_for


async def get_convo(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        found = await convo.list_messages(
            conn, p.org_id, request.path_params["plan_id"], branch_of(request)
        )
    return JSONResponse({"messages": [asdict(m) for m in found]})


ROUTES = [
    Route("/api/v1/plans/{plan_id}/convo", get_convo),
]
