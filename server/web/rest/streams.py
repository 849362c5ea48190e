"""Streams as records (list, show), and the seals a stream start needs."""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from plancast.server.domain import plans, projects
from plancast.server.domain.principal import Action
from plancast.server.streams import records
from plancast.server.web.rest.inputs import branch_of, principal_for
from plancast.shared import SEAL_SUITE


async def list_streams(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        await plans.get_plan(conn, p.org_id, request.path_params["plan_id"])
        found = await records.list_for_plan(conn, p.org_id, request.path_params["plan_id"])
    if "branch" in request.query_params:  # one branch's streams (the client's current one)
        branch = branch_of(request)
        found = [s for s in found if s.branch == branch]
    return JSONResponse({"streams": [asdict(s) for s in found]})


async def list_project_streams(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    project_id = request.path_params["project_id"]
    async with request.app.state.db.connect() as conn:
        await projects.get_project(conn, p.org_id, project_id)
        found = await records.list_for_project(conn, p.org_id, project_id)
    return JSONResponse({"streams": [asdict(s) | {"plan_name": name} for s, name in found]})


async def get_stream(request: Request) -> JSONResponse:
    p = await principal_for(request, Action.READ)
    async with request.app.state.db.connect() as conn:
        found = await records.get(conn, p.org_id, request.path_params["stream_id"])
    return JSONResponse(asdict(found))


async def create_seal(request: Request) -> JSONResponse:
    """A one-time worker key for the next stream: the client seals its provider keys to it.

    Not idempotent on purpose: a seal is used once, so a retry must get a new one. The seal
    lives in this server process: with replicas, a client asks on the WebSocket that will
    carry the start instead (``new_seal``).
    """
    p = await principal_for(request, Action.WRITE)
    seal = await request.app.state.streams.new_seal(p)
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
    Route("/api/v1/projects/{project_id}/streams", list_project_streams),
    Route("/api/v1/plans/{plan_id}/streams", list_streams),
    Route("/api/v1/streams/{stream_id}", get_stream),
    Route("/api/v1/seals", create_seal, methods=["POST"]),
]
