"""Pending changes: list them, mark them applied or rejected."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain import changes, plans
from plancast.server.domain.principal import Action
from plancast.server.errors import InvalidRequest
from plancast.server.web.idempotency import idempotent
from plancast.server.web.rest.inputs import branch_of, field_str_list, principal_for, read_json
from plancast.shared import op_to_dict


def _change(c: changes.Change) -> dict[str, Any]:
    return {
        "id": c.id,
        "path": c.path,
        "op": op_to_dict(c.op),
        "status": c.status,
        "stream_id": c.stream_id,
        "position": c.position,
        "result": c.result,
        "base_sha256": c.base_sha256,
        "build": c.build,
    }


async def get_changes(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    status = request.query_params.get("status", "pending")
    if status not in (*changes.STATUSES, "all"):
        raise InvalidRequest("status must be pending, applied, rejected, failed or all")
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        found = await changes.list_changes(
            conn,
            p.org_id,
            request.path_params["plan_id"],
            branch_of(request),
            status=None if status == "all" else status,
        )
    return JSONResponse({"changes": [_change(c) for c in found]})


async def _set_change_status(request: Request, status: str) -> JSONResponse:
    p = await principal_for(request, Action.WRITE)
    data = await read_json(request)
    ids, paths = field_str_list(data, "ids"), field_str_list(data, "paths")
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        moved = await changes.set_status(
            conn,
            p.org_id,
            request.path_params["plan_id"],
            branch_of(request),
            status,
            ids=ids,
            paths=paths,
        )
    # Ids and paths only: the response is kept with its idempotency key, and file text must
    # not be kept anywhere but in the plan's own history.
    return JSONResponse(
        {"changes": [{"id": c.id, "path": c.path, "status": status} for c in moved]}
    )


@idempotent
async def apply_changes(request: Request) -> Response:
    return await _set_change_status(request, "applied")


@idempotent
async def reject_changes(request: Request) -> Response:
    return await _set_change_status(request, "rejected")


ROUTES = [
    Route("/api/v1/plans/{plan_id}/changes", get_changes),
    Route("/api/v1/plans/{plan_id}/changes/apply", apply_changes, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/changes/reject", reject_changes, methods=["POST"]),
]
