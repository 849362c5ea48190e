"""The streams this server process is running, and recently ended ones.

Ended streams stay here for ``linger_s`` so that a client that reattaches right
after the end is served from memory; after that the database replays them.
"""

from __future__ import annotations

import asyncio
import time

from plancast.server.streams.live import LiveStream


class StreamRegistry:
    def __init__(self, linger_s: float = 300.0) -> None:
        self._streams: dict[str, LiveStream] = {}
        self._ended_at: dict[str, float] = {}
        self._linger_s = linger_s

    def add(self, stream: LiveStream) -> None:
        self._evict()
        self._streams[stream.id] = stream

    def get(self, stream_id: str, org_id: str) -> LiveStream | None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.org_id != org_id:
            return None
        return stream

    def mark_ended(self, stream_id: str) -> None:
        self._ended_at[stream_id] = time.monotonic()

    def running(self) -> list[LiveStream]:
        return [s for s in self._streams.values() if not s.ended]

    def unfinished_tasks(self) -> list[asyncio.Task[None]]:
        """The tasks not over yet: running streams', and those still saving after their End."""
        return [s.task for s in self._streams.values() if s.task is not None and not s.task.done()]

    def _evict(self) -> None:
        horizon = time.monotonic() - self._linger_s
        for stream_id, at in list(self._ended_at.items()):
            if at < horizon:
                del self._ended_at[stream_id]
                self._streams.pop(stream_id, None)
