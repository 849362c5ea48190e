"""REST routes (JSON). Each handler parses, authorizes, calls the domain, renders.

Resources are scoped to the caller's org by the domain queries themselves; a
plan of another org is "not found", never "forbidden", so ids cannot be probed.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain import changes, context, convo, plans, projects, versions
from plancast.server.domain.principal import Action, Principal, authorize
from plancast.server.errors import InvalidRequest
from plancast.server.streams import records
from plancast.server.web.auth import authenticate
from plancast.server.web.idempotency import idempotent
from plancast.shared import SEAL_SUITE, ErrorCode, PlancastError, op_to_dict

VERSION = "0.1.0"
_NOT_JSON = object()


async def _json(request: Request) -> dict[str, Any]:
    limit: int = request.app.state.settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PlancastError(
            f"request body is larger than {limit} bytes", code=ErrorCode.MESSAGE_TOO_LARGE
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PlancastError(
                f"request body is larger than {limit} bytes", code=ErrorCode.MESSAGE_TOO_LARGE
            )
    if not body:
        return {}
    data: Any = _NOT_JSON
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        pass
    if data is _NOT_JSON:
        raise InvalidRequest("request body is not valid JSON (or nested too deeply)")
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    return data


def _str(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"field {key!r} must be a string")
    return value


def _str_list(data: dict[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"field {key!r} must be a list of strings")
    return value


def _branch(request: Request) -> str:
    return request.query_params.get("branch", "main")


def _principal(request: Request, action: Action) -> Principal:
    principal = authenticate(request)
    authorize(principal, action)
    return principal


async def health(request: Request) -> JSONResponse:
    """Alive, and whether a stream can start without waiting for a worker (``workers_ready``)."""
    return JSONResponse(
        {"ok": True, "version": VERSION, "workers_ready": request.app.state.workers.ready}
    )


async def list_projects(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        found = await projects.list_projects(conn, p.org_id)
    return JSONResponse({"projects": [asdict(x) for x in found]})


@idempotent
async def create_project(request: Request) -> Response:
    p = _principal(request, Action.WRITE)
    data = await _json(request)
    async with request.app.state.db.begin() as conn:
        project = await projects.create_project(conn, p.org_id, _str(data, "name") or "")
    return JSONResponse(asdict(project), status_code=201)


async def get_project(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        project = await projects.get_project(conn, p.org_id, request.path_params["project_id"])
    return JSONResponse(asdict(project))


async def list_plans(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        found = await plans.list_plans(conn, p.org_id, request.path_params["project_id"])
    return JSONResponse({"plans": [asdict(x) for x in found]})


@idempotent
async def create_plan(request: Request) -> Response:
    p = _principal(request, Action.WRITE)
    data = await _json(request)
    async with request.app.state.db.begin() as conn:
        plan = await plans.create_plan(
            conn, p.org_id, request.path_params["project_id"], _str(data, "name", required=False)
        )
    return JSONResponse(asdict(plan), status_code=201)


async def get_plan(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    plan_id = request.path_params["plan_id"]
    async with request.app.state.db.connect() as conn:
        plan = await plans.get_plan(conn, p.org_id, plan_id)
        branch_names = await plans.list_branches(conn, p.org_id, plan_id)
        head = await versions.head(conn, p.org_id, plan_id, _branch(request))
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


async def get_context(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    with_content = request.query_params.get("content") == "1"
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        items = await context.list_items(
            conn,
            p.org_id,
            request.path_params["plan_id"],
            _branch(request),
            with_content=with_content,
        )
    return JSONResponse({"items": [asdict(i) for i in items]})


@idempotent
async def load_context(request: Request) -> Response:
    p = _principal(request, Action.WRITE)
    data = await _json(request)
    raw = data.get("items")
    if not isinstance(raw, list):
        raise InvalidRequest("field 'items' must be a list")
    items = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise InvalidRequest("each item must be an object with kind, name and content")
        items.append(
            context.NewItem(
                _str(entry, "kind") or "", _str(entry, "name") or "", _str(entry, "content") or ""
            )
        )
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        result = await context.load(
            conn, p.org_id, request.path_params["plan_id"], _branch(request), items
        )
    return JSONResponse(asdict(result))


@idempotent
async def remove_context(request: Request) -> Response:
    p = _principal(request, Action.WRITE)
    data = await _json(request)
    names = None if data.get("all") is True else _str_list(data, "names")
    if names is None and data.get("all") is not True:
        raise InvalidRequest("give 'names' (paths, folders or globs) or 'all': true")
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        removed = await context.remove(
            conn, p.org_id, request.path_params["plan_id"], _branch(request), names
        )
    return JSONResponse({"removed": removed})


async def get_convo(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        found = await convo.list_messages(
            conn, p.org_id, request.path_params["plan_id"], _branch(request)
        )
    return JSONResponse({"messages": [asdict(m) for m in found]})


def _change(c: changes.Change) -> dict[str, Any]:
    return {
        "id": c.id,
        "path": c.path,
        "op": op_to_dict(c.op),
        "status": c.status,
        "stream_id": c.stream_id,
        "position": c.position,
    }


async def get_changes(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    status = request.query_params.get("status", "pending")
    if status not in (*changes.STATUSES, "all"):
        raise InvalidRequest("status must be pending, applied, rejected or all")
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        found = await changes.list_changes(
            conn,
            p.org_id,
            request.path_params["plan_id"],
            _branch(request),
            status=None if status == "all" else status,
        )
    return JSONResponse({"changes": [_change(c) for c in found]})


async def _set_change_status(request: Request, status: str) -> JSONResponse:
    p = _principal(request, Action.WRITE)
    data = await _json(request)
    ids, paths = _str_list(data, "ids"), _str_list(data, "paths")
    async with request.app.state.db.begin() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        moved = await changes.set_status(
            conn,
            p.org_id,
            request.path_params["plan_id"],
            _branch(request),
            status,
            ids=ids,
            paths=paths,
        )
    return JSONResponse({"changes": [_change(c) for c in moved]})


@idempotent
async def apply_changes(request: Request) -> Response:
    return await _set_change_status(request, "applied")


@idempotent
async def reject_changes(request: Request) -> Response:
    return await _set_change_status(request, "rejected")


async def get_versions(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        found = await versions.history(
            conn, p.org_id, request.path_params["plan_id"], _branch(request)
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


async def list_streams(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        found = await records.list_for_plan(conn, p.org_id, request.path_params["plan_id"])
    return JSONResponse({"streams": [asdict(s) for s in found]})


async def list_project_streams(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    project_id = request.path_params["project_id"]
    async with request.app.state.db.connect() as conn:
        await projects.get_project(conn, p.org_id, project_id)
        found = await records.list_for_project(conn, p.org_id, project_id)
    return JSONResponse({"streams": [asdict(s) | {"plan_name": name} for s, name in found]})


async def get_stream(request: Request) -> JSONResponse:
    p = _principal(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        found = await records.get(conn, p.org_id, request.path_params["stream_id"])
    return JSONResponse(asdict(found))


async def create_seal(request: Request) -> JSONResponse:
    """A one-time worker key for the next stream: the client seals its provider keys to it.

    Not idempotent on purpose: a seal is used once, so a retry must get a new one.
    """
    p = _principal(request, Action.WRITE)
    seal = await request.app.state.workers.reserve(p)
    return JSONResponse(
        {
            "seal_id": seal.seal_id,
            "public_key": seal.public_key,
            "expires_at": seal.expires_at,
            "suite": SEAL_SUITE,
        },
        status_code=201,
    )


ROUTES = [
    Route("/api/v1/health", health),
    Route("/api/v1/projects", list_projects, methods=["GET"]),
    Route("/api/v1/projects", create_project, methods=["POST"]),
    Route("/api/v1/projects/{project_id}", get_project),
    Route("/api/v1/projects/{project_id}/plans", list_plans, methods=["GET"]),
    Route("/api/v1/projects/{project_id}/plans", create_plan, methods=["POST"]),
    Route("/api/v1/projects/{project_id}/streams", list_project_streams),
    Route("/api/v1/plans/{plan_id}", get_plan),
    Route("/api/v1/plans/{plan_id}/context", get_context, methods=["GET"]),
    Route("/api/v1/plans/{plan_id}/context", load_context, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/context/remove", remove_context, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/convo", get_convo),
    Route("/api/v1/plans/{plan_id}/changes", get_changes),
    Route("/api/v1/plans/{plan_id}/changes/apply", apply_changes, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/changes/reject", reject_changes, methods=["POST"]),
    Route("/api/v1/plans/{plan_id}/versions", get_versions),
    Route("/api/v1/plans/{plan_id}/streams", list_streams),
    Route("/api/v1/streams/{stream_id}", get_stream),
    Route("/api/v1/seals", create_seal, methods=["POST"]),
]
