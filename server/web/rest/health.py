"""Liveness, and whether a stream can start without waiting for a worker."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

VERSION = "0.1.0"


async def health(request: Request) -> JSONResponse:
    """Alive, and whether a stream can start without waiting for a worker (``workers_ready``)."""
    return JSONResponse(
        {"ok": True, "version": VERSION, "workers_ready": request.app.state.workers.ready}
    )


ROUTES = [
    Route("/api/v1/health", health),
]
