"""Model settings: the built-in packs, and each plan's roles (read, replace)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain import model_settings, plans
from plancast.server.domain.principal import Action
from plancast.server.errors import InvalidRequest
from plancast.server.web.idempotency import idempotent
from plancast.server.web.rest.inputs import branch_of, principal_for, read_json
from plancast.shared import BUILTIN_PACKS, ROLES, ModelSpec, PlanModels


def _resolved(models: PlanModels) -> dict[str, Any]:
    return {
        "pack": models.pack,
        "roles": {role: models.roles[role].to_dict() for role in ROLES},
        "large_context": models.large_context.to_dict() if models.large_context else None,
        "auto_continue": models.auto_continue,
        "summary_tokens": models.summary_tokens,
        "providers": models.providers(),
    }


async def list_packs(request: Request) -> JSONResponse:
    await principal_for(request, Action.READ)
    return JSONResponse(
        {
            "packs": [
                {"name": p.name, "description": p.description}
                | _resolved(PlanModels(pack=p.name).resolved())
                for p in BUILTIN_PACKS.values()
            ]
        }
    )


async def get_models(request: Request) -> JSONResponse:
    """The plan's settings as stored, and resolved for a planner (``?planner=``, optional).

    The planner a client would use by default is only known to the client, so it says which
    one it means; the plan's own settings win over it.
    """
    p = await principal_for(request, Action.READ)
    planner_text = request.query_params.get("planner")
    planner = ModelSpec.parse(planner_text) if planner_text else None
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        models = await model_settings.get(
            conn, p.org_id, request.path_params["plan_id"], branch_of(request)
        )
    own_planner = "planner" in models.roles or models.pack is not None
    resolved = models.resolved(None if own_planner else planner)
    return JSONResponse({"settings": models.to_dict(), "resolved": _resolved(resolved)})


@idempotent
async def put_models(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    data = await read_json(request)
    settings = data.get("settings")
    if not isinstance(settings, dict):
        raise InvalidRequest("field 'settings' must be an object")
    models = PlanModels.from_dict(settings)
    description = data.get("description") or "model settings changed"
    if not isinstance(description, str):
        raise InvalidRequest("field 'description' must be a string")
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        number = await model_settings.put(
            conn,
            p.org_id,
            request.path_params["plan_id"],
            branch_of(request),
            models,
            description[:200],
        )
    return JSONResponse(
        {"settings": models.to_dict(), "version": number, "resolved": _resolved(models.resolved())}
    )


ROUTES = [
    Route("/api/v1/model-packs", list_packs),
    Route("/api/v1/plans/{plan_id}/models", get_models, methods=["GET"]),
    Route("/api/v1/plans/{plan_id}/models", put_models, methods=["PUT"]),
]
