"""The pipe between the server and one worker: one JSON object per line.

Both ends are asyncio streams on a socketpair. JSON (never pickle) crosses it,
so neither side can make the other run code, and a line holds one message
because JSON escapes every newline inside strings.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

LINE_LIMIT = 64 * 1024 * 1024
"""A chat request carries the plan's whole context; a line may be this long."""


class ChannelClosed(Exception):
    """The other end has gone (exited, was killed, or closed its side)."""


class Channel:
    __slots__ = ("_reader", "_writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def over(cls, sock: Any) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT)
        return cls(reader, writer)

    def send(self, message: dict[str, Any]) -> None:
        """Queue one message; ``drain`` when the peer may be slow to read."""
        if self._writer.is_closing():
            raise ChannelClosed
        self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, OSError):
            raise ChannelClosed from None

    async def receive(self) -> dict[str, Any]:
        """The next message.

        Raises:
            ChannelClosed: the other end has gone, or broke the framing.
        """
        try:
            line = await self._reader.readline()
        except (ConnectionError, OSError, ValueError):  # ValueError: a line over the limit
            raise ChannelClosed from None
        if not line:
            raise ChannelClosed
        try:
            message = json.loads(line)
        except ValueError:
            raise ChannelClosed from None
        if not isinstance(message, dict):
            raise ChannelClosed
        return message

    def close(self) -> None:
        self._writer.close()

    async def wait_closed(self) -> None:
        self.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
