"""Endpoints for operators and orchestrators: liveness, readiness and metrics.

They live outside ``/api/v1`` because they are not part of the client protocol, and are
named as Kubernetes probes and Prometheus expect them.

- ``GET /healthz``: the process answers. No token, no database: a liveness probe must not
  fail (and restart the server) because the database is slow.
- ``GET /readyz``: the database answers a trivial query and is at the code's migration head,
  and the server is not shutting down; else 503 with the reason. No token. The reason names
  no URL, host or driver message.
- ``GET /metrics``: the Prometheus text format (or OpenMetrics, when the scraper asks).
  Needs the bearer token, as the API does, unless ``metrics_public`` is set for a scraper on
  a private network.

All three pass the same Host check as every other route. That check runs only when the
server is bound to loopback, where a probe is local too and uses a loopback name; bound to
0.0.0.0 in a container (the image's default), a kubelet's probe naming the pod IP reaches
them.
"""

from __future__ import annotations

import logging

from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.store.revisions import check_schema
from plancast.server.web.auth import authenticate

logger = logging.getLogger("plancast.server.web")

READY_TIMEOUT_S = 2.0
"""How long ``/readyz`` waits for the database: under a probe's usual timeout, well over a
healthy database's answer."""


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    if state.streams.closing:
        return _not_ready(request, "the server is shutting down", None)
    check = await check_schema(state.db, READY_TIMEOUT_S)
    if not check.ready:
        return _not_ready(request, check.reason or "", check.revision)
    if state.not_ready_reason is not None:
        logger.info("ready again: the database is at revision %s", check.revision)
        state.not_ready_reason = None
    return JSONResponse({"status": "ready", "revision": check.revision})


def _not_ready(request: Request, reason: str, revision: str | None) -> JSONResponse:
    state = request.app.state
    if state.not_ready_reason != reason:  # log changes, not every probe
        logger.warning("not ready: %s", reason)
        state.not_ready_reason = reason
    return JSONResponse(
        {"status": "unavailable", "reason": reason, "revision": revision}, status_code=503
    )


async def metrics(request: Request) -> Response:
    if not request.app.state.settings.metrics_public:
        await authenticate(request)  # Unauthorized: 401 in the one error shape
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(
        encode(request.app.state.metrics.registry), headers={"Content-Type": content_type}
    )


ROUTES = [
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/metrics", metrics),
]
