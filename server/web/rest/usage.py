"""Usage metadata: tokens and timings of a plan's model calls, or of a whole project's."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from plancast.server.domain import plans, usage
from plancast.server.domain.principal import Action
from plancast.server.web.rest.inputs import principal_for


def _report(report: usage.UsageReport, names: dict[str, str]) -> dict[str, Any]:
    return {
        "by_model": [asdict(g) for g in report.by_model],
        "by_role": [asdict(g) for g in report.by_role],
        "by_plan": [asdict(g) | {"name": names.get(g.key)} for g in report.by_plan],
        "total": asdict(report.total),
    }


async def get_plan_usage(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    plan_id = request.path_params["plan_id"]
    async with request.app.state.db.connect() as conn:
        report = await usage.plan_usage(conn, p.org_id, plan_id)
        plan = await plans.get_plan(conn, p.org_id, plan_id)
    return JSONResponse({"plan_id": plan_id} | _report(report, {plan.id: plan.name}))


async def get_project_usage(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    project_id = request.path_params["project_id"]
    async with request.app.state.db.connect() as conn:
        report = await usage.project_usage(conn, p.org_id, project_id)
        names = {x.id: x.name for x in await plans.list_plans(conn, p.org_id, project_id)}
    return JSONResponse({"project_id": project_id} | _report(report, names))


ROUTES = [
    Route("/api/v1/plans/{plan_id}/usage", get_plan_usage),
    Route("/api/v1/projects/{project_id}/usage", get_project_usage),
]
