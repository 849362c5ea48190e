"""A plan's context: list, load, remove."""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain import context, plans
from plancast.server.domain.principal import Action
from plancast.server.errors import InvalidRequest
from plancast.server.web.idempotency import idempotent
from plancast.server.web.rest.inputs import (
    branch_of,
    field_str,
    field_str_list,
    principal_for,
    read_json,
)


async def get_context(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    with_content = request.query_params.get("content") == "1"
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        items = await context.list_items(
            conn,
            p.org_id,
            request.path_params["plan_id"],
            branch_of(request),
            with_content=with_content,
        )
    return JSONResponse({"items": [asdict(i) for i in items]})


@idempotent
async def load_context(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    data = await read_json(request)
    raw = data.get("items")
    if not isinstance(raw, list):
        raise InvalidRequest("field 'items' must be a list")
    items = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise InvalidRequest("each item must be an object with kind, name and content")
        items.append(
            context.NewItem(
                field_str(entry, "kind") or "",
                field_str(entry, "name") or "",
                field_str(entry, "content") or "",
            )
        )
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        result = await context.load(
            conn, p.org_id, request.path_params["plan_id"], branch_of(request), items
        )
    return JSONResponse(asdict(result))


@idempotent
async def remove_context(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    data = await read_json(request)
    names = None if data.get("all") is True else field_str_list(data, "names")
    if names is None and data.get("all") is not True:
        raise InvalidRequest("give 'names' (paths, folders or globs) or 'all': true")
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        removed = await context.remove(
            conn, p.org_id, request.path_params["plan_id"], branch_of(request), names
        )
    return JSONResponse({"removed": removed})


ROUTES = [
    Route("/api/v1/plans/{plan_id}/context", get_context, methods=["GET"]),
    Route("/api/v1/plans/{plan_id}/context", load_context, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/context/remove", remove_context, methods=["POST"]),
]
