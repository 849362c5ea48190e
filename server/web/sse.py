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

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.routing import Route

from plancast.server.domain.principal import Action, Principal, authorize
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

    follower = _Follower(principal)

    async def sse() -> AsyncIterator[ServerSentEvent]:
        follower.task = asyncio.current_task()
        request.app.state.connections.add(follower)
        try:
            event = first
            while event is not None:
                yield ServerSentEvent(data=_data(event), event=event.TYPE, id=str(event.seq))
                event = await anext(events, None)
        except asyncio.CancelledError:
            if not follower.ended:
                raise
            # Signed out, or removed from the org: the stream ends here for this follower.
        finally:
            request.app.state.connections.discard(follower)

    return EventSourceResponse(sse(), ping=PING_S, headers={"Cache-Control": "no-store"})


class _Follower:
    """An SSE follower as ``web/connections.py`` sees it: a sign-out or a removal ends it."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.task: asyncio.Task[Any] | None = None
        self.ended = False

    def end(self, code: int, reason: str) -> None:
        self.ended = True
        if self.task is not None:
            self.task.cancel()


ROUTES = [Route("/api/v1/streams/{stream_id}/events", stream_events)]
