"""The live view of a plan: its running stream (else its latest), followed over SSE.

The page itself holds no reply text: ``static/live.js`` opens an ``EventSource`` on
``/api/v1/streams/{id}/events``, which replays the stream from its first event and then
follows it live, with this page's session cookie. After a dropped connection the browser
reconnects with ``Last-Event-ID`` by itself and gets exactly the events it missed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from plancast.server.domain import plans
from plancast.server.domain.principal import Action
from plancast.server.errors import NotFound
from plancast.server.streams import records
from plancast.server.web.pages.errors import page
from plancast.server.web.pages.render import render
from plancast.server.web.pages.viewer import signed_in


def _pick(found: list[records.StreamRecord]) -> records.StreamRecord | None:
    """The most recent running stream, else the most recent one (``found`` is oldest first)."""
    running = [s for s in found if s.status == "running"]
    return (running or found or [None])[-1]


@page
async def show(request: Request) -> Response:
    viewer = await signed_in(request, Action.READ)
    org_id, plan_id = viewer.acting.org_id, request.path_params["plan_id"]
    async with request.app.state.db.connect() as conn:
        plan = await plans.get_plan(conn, org_id, plan_id)  # NotFound across orgs
        found = await records.list_for_plan(conn, org_id, plan_id)
    wanted = request.query_params.get("stream")
    if wanted is None:
        stream = _pick(found)
    else:
        stream = next((s for s in found if s.id == wanted), None)
        if stream is None:
            raise NotFound("this plan has no such stream")
    return render(
        request,
        "live.html",
        viewer=viewer,
        plan=plan,
        stream=stream,
        others=[s for s in reversed(found) if stream is None or s.id != stream.id][:10],
    )
