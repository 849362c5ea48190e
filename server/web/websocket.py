"""The stream WebSocket at ``/api/v1/streams``.

One connection can start, follow and stop any number of streams. It is only a
window on them: closing it stops nothing (DESIGN invariant 1).

Each followed stream has a follower task that reads events at its own pace and
puts frames on the connection's outbound queue; one sender task writes them.
When nothing is queued or being written, a follower writes its frame itself:
the same order, one task switch less. Events that are ready together (a
catch-up, a burst, a slow connection's backlog) go out packed in ``events``
frames, and each event's text is the one encoded when it was emitted. A slow
connection therefore only delays itself, and then catches up in batches. A
malformed or unknown message gets a typed ``error`` reply and the connection
carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.websockets import WebSocket, WebSocketDisconnect

from plancast.server.domain.principal import Principal
from plancast.server.streams.engine import StreamService
from plancast.server.web.auth import authenticate
from plancast.shared import (
    MAX_MESSAGE_BYTES,
    SEAL_SUITE,
    SUBPROTOCOL,
    Attach,
    Error,
    ErrorCode,
    LocalProtocolError,
    Message,
    NewSeal,
    Ping,
    PlancastError,
    Pong,
    RemoteProtocolError,
    SealOffer,
    Started,
    StartStream,
    Stop,
    StreamEvent,
    decode_client,
    encode,
    pack_events,
)

logger = logging.getLogger("plancast.server.web")

OUTBOUND_QUEUE = 256
BATCH_EVENTS = 2048  # read at most this many ready events before sending them
BATCH_BYTES = MAX_MESSAGE_BYTES  # the largest ``events`` frame
CLOSE_UNSUPPORTED = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403


async def stream_socket(ws: WebSocket) -> None:
    settings = ws.app.state.settings
    origin = ws.headers.get("origin")
    if origin is not None and origin not in settings.allowed_origins:
        # Accepted first so that the client can read why (a refused handshake is a bare 403).
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in _offered(ws) else None)
        await ws.close(code=CLOSE_FORBIDDEN_ORIGIN, reason="origin not allowed")
        return
    if SUBPROTOCOL not in _offered(ws):
        await ws.accept()
        await ws.close(code=CLOSE_UNSUPPORTED, reason=f"use the {SUBPROTOCOL} subprotocol")
        return
    try:
        principal = await authenticate(ws)
    except PlancastError as exc:
        await ws.accept(subprotocol=SUBPROTOCOL)
        await ws.close(code=CLOSE_UNAUTHORIZED, reason=exc.message[:120])
        return
    await ws.accept(subprotocol=SUBPROTOCOL)
    connection = _Connection(ws, principal, ws.app.state.streams)
    ws.app.state.connections.add(connection)
    try:
        await connection.run()
    finally:
        ws.app.state.connections.discard(connection)


def _offered(ws: WebSocket) -> list[str]:
    return list(ws.scope.get("subprotocols", []))


class _SendFailed(Exception):
    """Writing to the socket failed; the connection is being closed (and it was logged)."""


class _Connection:
    def __init__(self, ws: WebSocket, principal: Principal, service: StreamService) -> None:
        self.ws = ws
        self.principal = principal
        self.service = service
        self.outbound: asyncio.Queue[str] = asyncio.Queue(OUTBOUND_QUEUE)
        self.writing = asyncio.Lock()  # held around every write, so frames keep their order
        self.followers: dict[str, asyncio.Task[None]] = {}
        self.seals: set[str] = set()  # offered here: a seal no start used goes with the socket
        self._closing: asyncio.Future[None] | None = None

    def end(self, code: int, reason: str) -> None:
        """Close from outside (signed out, removed from the org): no more events, no more
        messages. The close is written after any frame being written."""
        for task in self.followers.values():
            task.cancel()

        async def close() -> None:
            async with self.writing:
                with contextlib.suppress(Exception):
                    await self.ws.close(code=code, reason=reason)

        self._closing = asyncio.ensure_future(close())

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_loop())
        try:
            while await self._receive_one():
                pass
        except WebSocketDisconnect:
            pass
        finally:
            self.service.release_seals(self.seals)
            for task in self.followers.values():
                task.cancel()
            sender.cancel()
            await asyncio.gather(sender, *self.followers.values(), return_exceptions=True)

    async def _receive_one(self) -> bool:
        """Handle one frame; False when the client has gone.

        A method of its own so that the frame (a start frame carries keys) is
        dropped as soon as it is handled, not kept until the next one arrives.
        """
        frame = await self.ws.receive()
        if frame["type"] == "websocket.disconnect":
            return False
        data = frame.get("text")
        await self._handle(data if data is not None else frame.get("bytes") or b"")
        return True

    async def _send_loop(self) -> None:
        with contextlib.suppress(_SendFailed):
            while True:
                text = await self.outbound.get()
                async with self.writing:
                    await self._write(text)

    async def _write(self, text: str) -> None:
        try:
            await self.ws.send_text(text)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A connection that can no longer send must not linger silently.
            logger.exception("stream socket send failed; closing the connection")
            with contextlib.suppress(Exception):
                await self.ws.close(code=1011)
            raise _SendFailed from None

    async def _reply(self, message: Message) -> None:
        try:
            text = encode(message)
        except LocalProtocolError:  # e.g. an error whose text grew past the frame limit
            text = encode(Error(code=ErrorCode.INTERNAL, message="the reply was too large"))
        await self.outbound.put(text)

    async def _handle(self, data: str | bytes) -> None:
        request_id: str | None = None
        stream_id: str | None = None
        try:
            message = decode_client(data)
            stream_id = getattr(message, "stream_id", None)
            if isinstance(message, NewSeal):
                request_id = message.request_id
                seal = await self.service.new_seal(self.principal)
                self.seals.add(seal.seal_id)
                await self._reply(
                    SealOffer(
                        request_id=message.request_id,
                        seal_id=seal.seal_id,
                        public_key=seal.public_key,
                        expires_at=seal.expires_at,
                        suite=SEAL_SUITE,
                    )
                )
            elif isinstance(message, StartStream):
                request_id = message.request_id
                started = await self.service.start(self.principal, message)
                await self._reply(
                    Started(
                        request_id=message.request_id,
                        stream_id=started.stream_id,
                        plan_id=started.plan_id,
                        branch=started.branch,
                    )
                )
                self._follow(started.stream_id, 0)
            elif isinstance(message, Attach):
                self._follow(message.stream_id, message.after)
            elif isinstance(message, Stop):
                if not await self.service.stop(self.principal, message.stream_id):
                    await self._reply(
                        Error(
                            code=ErrorCode.CONFLICT,
                            message="the stream has already ended",
                            stream_id=message.stream_id,
                        )
                    )
            elif isinstance(message, Ping):
                await self._reply(Pong(nonce=message.nonce))
        except RemoteProtocolError as exc:
            await self._reply(Error(code=exc.code, message=exc.message))
        except PlancastError as exc:
            await self._reply(
                Error(
                    code=exc.code,
                    message=exc.message,
                    request_id=request_id,
                    stream_id=getattr(exc, "stream_id", None) or stream_id,
                )
            )
        except Exception:
            logger.exception("stream socket message failed")
            await self._reply(
                Error(code=ErrorCode.INTERNAL, message="internal error", request_id=request_id)
            )

    async def _put_events(self, events: list[StreamEvent]) -> None:
        for frame in pack_events(events, max_bytes=BATCH_BYTES):
            if self.outbound.empty() and not self.writing.locked():
                # Nothing queued, nothing being written: write it now, without the
                # hop through the sender task. A slow socket blocks only this follower.
                async with self.writing:
                    await self._write(frame)
            else:
                await self.outbound.put(frame)

    def _follow(self, stream_id: str, after: int) -> None:
        previous = self.followers.pop(stream_id, None)
        if previous is not None:
            previous.cancel()
        self.followers[stream_id] = asyncio.create_task(self._forward(stream_id, after))

    async def _forward(self, stream_id: str, after: int) -> None:
        """Put the stream's frames on the outbound queue, from ``after`` to its end.

        Events that are ready together (a catch-up, a burst, the backlog of a
        slow connection) go out packed in ``events`` frames; an event that is
        alone goes out in its own frame, at once.
        """
        try:
            async for ready in self._ready_events(stream_id, after):
                await self._put_events(ready)
        except _SendFailed:
            pass  # the connection is being closed
        except PlancastError as exc:
            await self._reply(Error(code=exc.code, message=exc.message, stream_id=stream_id))
        except Exception:
            logger.exception("following stream %s failed", stream_id)
            await self._reply(
                Error(code=ErrorCode.INTERNAL, message="internal error", stream_id=stream_id)
            )

    async def _ready_events(self, stream_id: str, after: int) -> AsyncIterator[list[StreamEvent]]:
        """The stream's events after ``after``, in lists of those ready together.

        A live stream is read a slice at a time (``LiveStream.follow_slices``): a
        watcher takes every event published since it last looked in one step, not
        one generator hop per event per watcher. A stream this process no longer
        holds is replayed from the database with every event in hand, and one that
        runs on another replica is read as its rows arrive (``StreamService.follow_slices``),
        in lists of at most ``BATCH_EVENTS``. Either way: subscribe (the cursor), then
        replay, with no gap and no duplicate (DESIGN invariant 1).
        """
        async for ready in self.service.follow_slices(self.principal, stream_id, after):
            for start in range(0, len(ready), BATCH_EVENTS):
                yield ready[start : start + BATCH_EVENTS]
