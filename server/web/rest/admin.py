"""What an org's owners and admins can read about it: its audit log and its token usage."""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain import audit, org_usage
from plancast.server.domain.principal import Action
from plancast.server.errors import InvalidRequest
from plancast.server.web.params import int_param
from plancast.server.web.rest.inputs import principal_for

DEFAULT_LIMIT = 100
DEFAULT_DAYS = 30


async def list_audit(request: Request) -> Response:
    p = await principal_for(request, Action.SEE_AUDIT)
    before = int_param(request, "before", None)
    limit = int_param(request, "limit", DEFAULT_LIMIT) or 0
    if not 1 <= limit <= audit.MAX_LIMIT:
        raise InvalidRequest(f"?limit= must be 1 to {audit.MAX_LIMIT}")
    async with request.app.state.db.connect() as conn:
        found = await audit.list_entries(conn, p.org_id, before=before, limit=limit)
    return JSONResponse(
        {
            "entries": [audit.as_json(e) for e in found],
            "next_before": found[-1].id if len(found) == limit else None,
        }
    )


async def get_org_usage(request: Request) -> Response:
    p = await principal_for(request, Action.SEE_ORG_USAGE)
    days = org_usage.check_days(int_param(request, "days", DEFAULT_DAYS) or 0)
    async with request.app.state.db.connect() as conn:
        report = await org_usage.org_usage(conn, p.org_id, days)
    return JSONResponse({"org_id": p.org_id} | asdict(report))


ROUTES = [
    Route("/api/v1/org/audit", list_audit, methods=["GET"]),
    Route("/api/v1/org/usage", get_org_usage, methods=["GET"]),
]
