"""Following a stream over Server-Sent Events: read-only, for browsers and for
proxies that block WebSockets.

``GET /api/v1/streams/{stream_id}/events`` sends each event with ``id`` = its
sequence number and ``event`` = its type, then ends after ``end``. A client
that reconnects with ``Last-Event-ID: N`` (or ``?after=N``) gets exactly the
events after N, as a WebSocket ``attach`` would. A comment line every 15 s
keeps proxies from cutting an idle stream. In team mode a web page's session
cookie is accepted here besides the bearer token (the live plan view).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.routing import Route

from plancast.server.domain.principal import Action, authorize
from plancast.server.errors import InvalidRequest
from plancast.server.web.auth import authenticate
from plancast.shared import LocalProtocolError, StreamEvent, encode, to_dict

PING_S = 15


def _after(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if not raw.isdigit():
        raise InvalidRequest("Last-Event-ID (or ?after=) must be a sequence number")
    return int(raw)


def _data(event: StreamEvent) -> str:
    """The event's WebSocket frame text (encoded once, when it was emitted)."""
    try:
        return encode(event)
    except LocalProtocolError:  # over the WebSocket frame limit: SSE has none
        return json.dumps(to_dict(event), ensure_ascii=False, separators=(",", ":"))


async def stream_events(request: Request) -> EventSourceResponse:
    # A web page's EventSource cannot send an Authorization header: its session cookie
    # counts here, on this read-only GET, as on the pages themselves (web/auth.py).
    principal = await authenticate(request, allow_cookie=True)
    authorize(principal, Action.READ)
    stream_id = request.path_params["stream_id"]
    after = _after(request)
    service = request.app.state.streams
    events = service.follow(principal, stream_id, after)
    first = await anext(events, None)  # NotFound raises here, before the 200 goes out

    async def sse() -> AsyncIterator[ServerSentEvent]:
        event = first
        while event is not None:
            yield ServerSentEvent(data=_data(event), event=event.TYPE, id=str(event.seq))
            event = await anext(events, None)

    return EventSourceResponse(sse(), ping=PING_S, headers={"Cache-Control": "no-store"})


ROUTES = [Route("/api/v1/streams/{stream_id}/events", stream_events)]
