"""Rejecting some hunks of a file's pending changes (``plancast reject --review``).

The response names the changes by id and path and leaves their text out: a retried request
is answered from the idempotency store, and file content has no business being kept there.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain import plans, review
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


@idempotent
async def reject_hunks(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    data = await read_json(request)  # bounded by max_request_bytes, so is the content
    path, content = field_str(data, "path") or "", field_str(data, "content") or ""
    ids = field_str_list(data, "ids")
    if ids is None:
        raise InvalidRequest("field 'ids' must be a list of strings")
    plan_id = request.path_params["plan_id"]
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, plan_id)
        done = await review.reject_hunks(
            conn, p.org_id, plan_id, branch_of(request), path, ids, content
        )
    return JSONResponse(
        {
            "rejected": [{"id": c.id, "path": c.path} for c in done.rejected],
            "added": {"id": done.added.id, "path": done.added.path, "status": "pending"},
            "version": done.version,
        }
    )


ROUTES = [
    Route("/api/v1/plans/{plan_id}/changes/reject-hunks", reject_hunks, methods=["POST"]),
]
