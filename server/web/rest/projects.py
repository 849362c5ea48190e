"""Projects and their plans."""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain import plans, projects, versions
from plancast.server.domain.principal import Action
from plancast.server.web.idempotency import forget_under, idempotent
from plancast.server.web.rest.inputs import branch_of, field_str, principal_for, read_json


async def list_projects(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        found = await projects.list_projects(conn, p.org_id)
    return JSONResponse({"projects": [asdict(x) for x in found]})


@idempotent
async def create_project(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    data = await read_json(request)
    async with request.app.state.db.begin() as conn:
        project = await projects.create_project(conn, p.org_id, field_str(data, "name") or "")
    return JSONResponse(asdict(project), status_code=201)


async def get_project(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        project = await projects.get_project(conn, p.org_id, request.path_params["project_id"])
    return JSONResponse(asdict(project))


async def list_plans(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        found = await plans.list_plans(
            conn,
            p.org_id,
            request.path_params["project_id"],
            archived=request.query_params.get("archived") == "1",
        )
    return JSONResponse({"plans": [asdict(x) for x in found]})


@idempotent
async def create_plan(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    data = await read_json(request)
    async with request.app.state.db.begin() as conn:
        plan = await plans.create_plan(
            conn,
            p.org_id,
            request.path_params["project_id"],
            field_str(data, "name", required=False),
        )
    return JSONResponse(asdict(plan), status_code=201)


async def get_plan(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    plan_id = request.path_params["plan_id"]
    async with request.app.state.db.connect() as conn:
        plan = await plans.get_plan(conn, p.org_id, plan_id)
        branch_names = await plans.list_branches(conn, p.org_id, plan_id)
        head = await versions.head(conn, p.org_id, plan_id, branch_of(request))
    pending = sum(1 for _, status in head.state.changes if status == "pending")
    return JSONResponse(
        asdict(plan)
        | {
            "branches": branch_names,
            "version": head.number,
            "context_items": len(head.state.context),
            "messages": len(head.state.messages),
            "pending_changes": pending,
        }
    )


@idempotent
async def rename_plan(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    data = await read_json(request)
    name = field_str(data, "name") or ""
    async with request.app.state.db.begin() as conn:
        plan = await plans.rename_plan(conn, p.org_id, request.path_params["plan_id"], name)
    return JSONResponse(asdict(plan))


async def _set_archived(request: Request, archived: bool) -> Response:
    p = await principal_for(request, Action.WRITE)
    await read_json(request)  # no fields, but a body that is not an object is still refused
    async with request.app.state.db.begin() as conn:
        plan = await plans.set_archived(conn, p.org_id, request.path_params["plan_id"], archived)
    return JSONResponse(asdict(plan))


@idempotent
async def archive_plan(request: Request) -> Response:
    return await _set_archived(request, True)


@idempotent
async def unarchive_plan(request: Request) -> Response:
    return await _set_archived(request, False)


@idempotent
async def delete_plan(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    plan_id = request.path_params["plan_id"]
    async with request.app.state.db.begin() as conn:
        plan = await plans.delete_plan(conn, p.org_id, plan_id)
        await forget_under(conn, p.org_id, f"/api/v1/plans/{plan_id}/")
    return JSONResponse({"deleted": asdict(plan)})


ROUTES = [
    Route("/api/v1/projects", list_projects, methods=["GET"]),
    Route("/api/v1/projects", create_project, methods=["POST"]),
    Route("/api/v1/projects/{project_id}", get_project),
    Route("/api/v1/projects/{project_id}/plans", list_plans, methods=["GET"]),
    Route("/api/v1/projects/{project_id}/plans", create_plan, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}", get_plan, methods=["GET"]),
    Route("/api/v1/plans/{plan_id}", delete_plan, methods=["DELETE"]),
    Route("/api/v1/plans/{plan_id}/rename", rename_plan, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/archive", archive_plan, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/unarchive", unarchive_plan, methods=["POST"]),
]
