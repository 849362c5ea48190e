"""The pipe between the server and one worker: one JSON object per line.

Both ends are asyncio protocols on a socketpair. JSON (never pickle) crosses it,
so neither side can make the other run code, and a line holds one message
because JSON escapes every newline inside strings.

The reading side splits and decodes every complete line as it arrives, so a
reader can tell that more messages are already waiting (``ready``) and take
them without waiting (``peek``, then ``receive``): the server uses that to
turn a worker's backlog of deltas into one event instead of many. This is a
protocol of its own rather than ``asyncio.StreamReader``, whose buffer cannot
be looked into without its private attributes.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any, cast

LINE_LIMIT = 64 * 1024 * 1024
"""A chat request carries the plan's whole context; a line may be this long."""

JOIN_CHARS = 32 * 1024
"""The most text that joined deltas may hold (in the worker's lines, and in the server's
events made from several lines): 4 bytes a character at most, an event stays far below the
1 MiB frame limit. A single chunk larger than this travels as it came."""

READ_PAUSE = 4096
"""Decoded messages waiting to be taken before reading pauses (the kernel buffer then fills
and the writer's ``drain`` waits): a peer that writes faster than we read cannot grow our
memory without bound."""

_BROKEN: dict[str, Any] = {}
"""Queued after the last good message when the framing broke: the reader ends there."""


class ChannelClosed(Exception):
    """The other end has gone (exited, was killed, or closed its side)."""


class _Pipe(asyncio.Protocol):
    """Both directions of one socketpair end: decoded messages in, flow control out."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.messages: deque[dict[str, Any]] = deque()
        self.partial = bytearray()
        self.eof = False  # no more messages will arrive
        self.lost = False  # the connection is gone: writing fails
        self.reading_paused = False
        self.writing_paused = False
        self._arrived: asyncio.Future[None] | None = None  # one reader at a time
        self._drains: list[asyncio.Future[None]] = []  # any number of writers may wait
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.eof:
            return
        *lines, rest = data.split(b"\n")
        if lines and self.partial:
            lines[0] = bytes(self.partial) + lines[0]
            self.partial.clear()
        for line in lines:
            if len(line) > LINE_LIMIT or not self._decode(line):
                self._break()
                return
        if rest:
            self.partial += rest
            if len(self.partial) > LINE_LIMIT:
                self._break()
                return
        if len(self.messages) >= READ_PAUSE and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self._end()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._end()
        self._wake_writers()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writers()

    # -- for Channel ----------------------------------------------------------------------

    def _decode(self, line: bytes) -> bool:
        try:
            message = json.loads(line)
        except ValueError:
            return False
        if not isinstance(message, dict):
            return False
        self.messages.append(message)
        return True

    def _break(self) -> None:
        self.messages.append(_BROKEN)
        self.partial.clear()
        self._end()
        if self.transport is not None:
            self.transport.close()

    def _end(self) -> None:
        self.eof = True
        self._wake_reader()

    def _wake_reader(self) -> None:
        if self._arrived is not None and not self._arrived.done():
            self._arrived.set_result(None)

    def _wake_writers(self) -> None:
        for waiter in self._drains:
            if not waiter.done():
                waiter.set_result(None)
        self._drains.clear()

    async def wait_for_message(self) -> None:
        if self._arrived is not None:
            raise RuntimeError("another task is already receiving from this channel")
        self._arrived = asyncio.get_running_loop().create_future()
        try:
            await self._arrived
        finally:
            self._arrived = None

    async def wait_for_drain(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._drains.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._drains:  # cancelled while waiting
                self._drains.remove(waiter)

    def taken(self) -> None:
        if self.reading_paused and len(self.messages) < READ_PAUSE // 2:
            self.reading_paused = False
            if self.transport is not None and not self.lost:
                self.transport.resume_reading()


class Channel:
    __slots__ = ("_pipe", "_transport")

    def __init__(self, transport: asyncio.Transport, pipe: _Pipe) -> None:
        self._transport = transport
        self._pipe = pipe

    @classmethod
    async def over(cls, sock: Any) -> Channel:
        transport, pipe = await asyncio.get_running_loop().create_unix_connection(_Pipe, sock=sock)
        return cls(cast(asyncio.Transport, transport), pipe)

    def send(self, message: dict[str, Any]) -> None:
        """Queue one message; ``drain`` when the peer may be slow to read."""
        if self._pipe.lost or self._transport.is_closing():
            raise ChannelClosed
        self._transport.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    async def drain(self) -> None:
        """Wait while the peer is far behind in reading; returns at once otherwise."""
        if self._pipe.writing_paused and not self._pipe.lost:
            await self._pipe.wait_for_drain()
        if self._pipe.lost:
            raise ChannelClosed

    async def receive(self) -> dict[str, Any]:
        """The next message; returns without waiting when one is ``ready``.

        Raises:
            ChannelClosed: the other end has gone, or broke the framing.
        """
        pipe = self._pipe
        while not pipe.messages:
            if pipe.eof:
                raise ChannelClosed
            await pipe.wait_for_message()
        message = pipe.messages.popleft()
        if message is _BROKEN:
            pipe.messages.appendleft(message)  # every later receive fails too
            raise ChannelClosed
        pipe.taken()
        return message

    @property
    def ready(self) -> int:
        """How many messages have arrived and wait to be received."""
        return len(self._pipe.messages)

    def peek(self) -> dict[str, Any] | None:
        """The message ``receive`` would return at once, left in place; None if none waits."""
        messages = self._pipe.messages
        if not messages or messages[0] is _BROKEN:
            return None
        return messages[0]

    def close(self) -> None:
        self._transport.close()

    async def wait_closed(self) -> None:
        self.close()
        await self._pipe.closed
