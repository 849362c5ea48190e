"""A running stream's events in memory, and the watchers that follow them.

Rules:

1. ``emit`` gives each event the next sequence number (1, 2, 3 …) and appends
   it; events are never dropped or reordered while the stream is live.
2. A watcher is only a cursor: it reads ``events_after(cursor)`` and waits for
   more. Because no watcher has a queue of its own, a slow watcher can never
   slow the stream or the other watchers, and attaching cannot race publishing:
   there is no gap and no duplicate by construction.
3. ``end`` is called once, with the ``End`` event, which is always the last.
4. ``emit`` encodes each event once (``encode`` keeps the text on the event):
   the event log, every watcher and every replay reuse that text.
5. A waiting watcher is woken by the next ``emit`` and then reads, as one
   slice, every event published since (``follow_slices``), however many.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from plancast.shared import End, LocalProtocolError, StreamEvent, encode


class LiveStream:
    def __init__(self, stream_id: str, org_id: str, plan_id: str, branch: str) -> None:
        self.id = stream_id
        self.org_id = org_id
        self.plan_id = plan_id
        self.branch = branch
        self.events: list[StreamEvent] = []
        self.task: asyncio.Task[None] | None = None
        self.session_id: str | None = None  # the sign-in session that started it
        self.user_id: str | None = None  # the user who started it
        self.stop_requested = False  # a user asked to stop: it ends as "stopped"
        self.shutting_down = False  # the server is going away: it ends as "interrupted"
        self.finishing = False  # saving its result: cancelling now would lose it
        self._changed: asyncio.Event | None = None  # made by the first watcher that waits
        self._ended = False  # set with the End event: every watcher asks at every wake-up

    @property
    def last_seq(self) -> int:
        return len(self.events)

    @property
    def ended(self) -> bool:
        return self._ended

    def emit(self, kind: type[StreamEvent], **fields: Any) -> StreamEvent:
        """Number, encode and publish one event; returns it."""
        if self._ended:
            raise RuntimeError(f"stream {self.id} already ended")
        event = kind(stream_id=self.id, seq=len(self.events) + 1, **fields)
        try:
            encode(event)  # once, here: the text stays on the event
        except LocalProtocolError:
            pass  # too large for any frame: each watcher's encode reports it, as before
        self.events.append(event)
        if isinstance(event, End):
            self._ended = True
        # Wake the waiting watchers; the next one to wait arms a fresh flag.
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        return event

    def events_after(self, seq: int) -> list[StreamEvent]:
        return self.events[seq:]

    async def follow(self, after: int) -> AsyncIterator[StreamEvent]:
        """Every event after ``after``, then live ones, until ``End``."""
        async for batch in self.follow_slices(after):
            for event in batch:
                yield event

    async def follow_slices(self, after: int) -> AsyncIterator[list[StreamEvent]]:
        """As ``follow``, but each item is every event ready at that moment (never empty)."""
        if self.ended and after >= len(self.events):
            # Asked for events past the end: the End event again says it is over.
            yield [self.events[-1]]
            return
        cursor = after
        events = self.events
        while True:
            batch = events[cursor:]
            if batch:
                yield batch
                cursor += len(batch)
            if self._ended and cursor >= len(events):
                return
            if not batch:  # wait for the next emit (no await between the check and the wait)
                if self._changed is None:
                    self._changed = asyncio.Event()
                await self._changed.wait()
