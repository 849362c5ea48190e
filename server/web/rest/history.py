"""A plan's history: versions, branches, and moving a branch's head (rewind, undo)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain import branches, head_moves, plans, versions
from plancast.server.domain.principal import Action
from plancast.server.errors import InvalidRequest
from plancast.server.web.idempotency import idempotent
from plancast.server.web.rest.inputs import branch_of, field_str, principal_for, read_json


def _version(v: versions.Version) -> dict[str, Any]:
    return {
        "id": v.id,
        "number": v.number,
        "kind": v.kind,
        "description": v.description,
        "parent_id": v.parent_id,
        "created_at": v.created_at,
    }


def _version_ref(value: object, key: str) -> str:
    """A version named by number (a JSON number, or digits) or by id."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise InvalidRequest(f"field {key!r} must be a version number or a version id")


async def get_versions(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    plan_id, branch = request.path_params["plan_id"], branch_of(request)
    every = request.query_params.get("all") == "1"
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, plan_id)
        tip = await versions.head(conn, p.org_id, plan_id, branch)
        if every:
            found = await versions.all_versions(conn, p.org_id, plan_id)
        else:
            found = await versions.history(conn, p.org_id, plan_id, branch)
        heads = await branches.list_branches(conn, p.org_id, plan_id)
    return JSONResponse(
        {
            "branch": branch,
            "head": {"id": tip.id, "number": tip.number},
            "versions": [_version(v) for v in found],
            "branches": [asdict(b) for b in heads],
        }
    )


def _moved(move: head_moves.HeadMove, work: head_moves.DiskWork) -> dict[str, Any]:
    return {
        "id": move.id,
        "branch": move.branch,
        "kind": move.kind,
        "from": _version(move.before),
        "to": _version(move.after),
        "revert": [{"id": cid, "path": path} for cid, path in work.revert],
        "reapply": [{"id": cid, "path": path} for cid, path in work.reapply],
    }


@idempotent
async def rewind(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    data = await read_json(request)
    ref = _version_ref(data.get("version"), "version")
    plan_id, branch = request.path_params["plan_id"], branch_of(request)
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, plan_id)
        move = await head_moves.rewind(conn, p.org_id, plan_id, branch, ref)
        work = await head_moves.disk_work(conn, p.org_id, plan_id, move)
    return JSONResponse(_moved(move, work))


@idempotent
async def undo_rewind(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    await read_json(request)  # no fields, but a body that is not an object is still refused
    plan_id, branch = request.path_params["plan_id"], branch_of(request)
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, plan_id)
        move = await head_moves.undo(conn, p.org_id, plan_id, branch)
        work = await head_moves.disk_work(conn, p.org_id, plan_id, move)
    return JSONResponse(_moved(move, work))


async def list_branches(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    plan_id = request.path_params["plan_id"]
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, plan_id)
        found = await branches.list_branches(conn, p.org_id, plan_id)
    return JSONResponse({"branches": [asdict(b) for b in found]})


@idempotent
async def create_branch(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    data = await read_json(request)
    name = field_str(data, "name") or ""
    at = None if data.get("version") is None else _version_ref(data["version"], "version")
    plan_id = request.path_params["plan_id"]
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, plan_id)
        created = await branches.create_branch(
            conn, p.org_id, plan_id, name, source=branch_of(request), at=at
        )
    return JSONResponse(asdict(created), status_code=201)


@idempotent
async def delete_branch(request: Request) -> Response:
    p = await principal_for(request, Action.WRITE)
    plan_id = request.path_params["plan_id"]
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, plan_id)
        deleted = await branches.delete_branch(conn, p.org_id, plan_id, request.path_params["name"])
    return JSONResponse({"deleted": asdict(deleted)})


ROUTES = [
    Route("/api/v1/plans/{plan_id}/versions", get_versions),
    Route("/api/v1/plans/{plan_id}/rewind", rewind, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/rewind/undo", undo_rewind, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/branches", list_branches, methods=["GET"]),
    Route("/api/v1/plans/{plan_id}/branches", create_branch, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/branches/{name}", delete_branch, methods=["DELETE"]),
]
