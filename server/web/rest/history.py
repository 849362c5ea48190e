"""A plan's history: versions and branches."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from plancast.server.domain import plans, versions
from plancast.server.domain.principal import Action
from plancast.server.web.rest.inputs import branch_of, principal_for


async def get_versions(request: Request) -> JSONResponse:
    p = principal_for(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        found = await versions.history(
            conn, p.org_id, request.path_params["plan_id"], branch_of(request)
        )
    return JSONResponse(
        {
            "versions": [
                {
                    "id": v.id,
                    "number": v.number,
                    "kind": v.kind,
                    "description": v.description,
                    "created_at": v.created_at,
                }
                for v in found
            ]
        }
    )


ROUTES = [
    Route("/api/v1/plans/{plan_id}/versions", get_versions),
]
