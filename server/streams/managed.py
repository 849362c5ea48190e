"""``StreamService`` as a server process runs it: closed while shutting down, drained, observed.

Rules:

1. Once ``drain`` begins (the server is shutting down), ``new_seal`` and ``start`` are
   refused as ``busy``, with a message saying so, before any work: no seal is made or
   claimed, nothing is recorded.
2. ``drain(grace_s)`` lets the running streams go on for up to ``grace_s``, waiting also for
   a start that had passed the check in Rule 1 before it began. Those still running then are
   cancelled by ``shutdown`` and end as ``interrupted``, their partial replies kept.
   ``hurry`` (a second stop signal) ends the grace period early.
3. Every stream this process starts is watched to its end, once (a retried start attaches to
   the same stream and is not watched again). When its task is over, each of
   ``outcome_listeners`` gets a ``StreamOutcome``: numbers, a status, an error code and the
   model's name, never a prompt, reply or id.

These sit on top of ``StreamService``'s public surface (``start``, ``registry``, each
stream's task, ``shutdown``), so the engine stays about running streams.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plancast.server.domain.principal import Principal
from plancast.server.errors import Busy
from plancast.server.streams.engine import StartedStream, StreamService
from plancast.server.streams.live import LiveStream
from plancast.server.workers.pool import Seal
from plancast.shared import End, ModelSpec, StartStream

logger = logging.getLogger("plancast.server.streams")

HURRY_POLL_S = 0.1
"""How often a drain looks at the flag ``hurry`` sets (a signal handler can only set flags)."""

SHUTTING_DOWN = (
    "the server is shutting down and starts no new streams; start again in a moment "
    "(the streams already running are finishing)"
)


@dataclass(frozen=True, slots=True)
class StreamOutcome:
    """How one stream ended (Rule 3)."""

    status: str  # finished, stopped, failed or interrupted
    error_code: str | None
    events: int  # the sequence number of its last event
    model: str  # the planner model the start asked for: provider/model


class ManagedStreamService(StreamService):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Takes ``StreamService``'s arguments as they are."""
        super().__init__(*args, **kwargs)
        self.closing = False
        self._hurried = False
        self.outcome_listeners: list[Callable[[StreamOutcome], None]] = []
        self._watched: dict[str, LiveStream] = {}

    async def new_seal(self, principal: Principal) -> Seal:
        """``StreamService.new_seal``, refused while the server shuts down (Rule 1).

        Raises:
            Busy: the server is shutting down; or as ``StreamService.new_seal``.
        """
        if self.closing:  # a seal is good only for a start, which would be refused
            raise Busy(SHUTTING_DOWN, stream_id=None)
        return await super().new_seal(principal)

    async def start(self, principal: Principal, request: StartStream) -> StartedStream:
        """``StreamService.start``, refused while the server shuts down (Rule 1).

        Raises:
            Busy: the server is shutting down; or as ``StreamService.start``.
        """
        if self.closing:
            raise Busy(SHUTTING_DOWN, stream_id=None)
        started = await super().start(principal, request)
        live = self.registry.get(started.stream_id, principal.org_id)
        task = live.task if live is not None else None
        if live is not None and task is not None and not task.done():
            if live.id not in self._watched:
                self._watched[live.id] = live
                model = str(ModelSpec.parse(request.model))
                task.add_done_callback(functools.partial(self._ended, live, model))
        return started

    def watched(self) -> list[LiveStream]:
        """The streams started here whose task has not ended yet."""
        return list(self._watched.values())

    def _ended(self, live: LiveStream, model: str, _task: asyncio.Task[None]) -> None:
        self._watched.pop(live.id, None)
        last = live.events[-1] if live.events else None
        if isinstance(last, End):
            outcome = StreamOutcome(last.status, last.error_code, live.last_seq, model)
        else:  # the engine always ends a stream with End; count a miss as a failure
            outcome = StreamOutcome("failed", "internal", live.last_seq, model)
        for listener in self.outcome_listeners:
            try:
                listener(outcome)
            except Exception:
                logger.exception("a stream outcome listener failed")

    def hurry(self) -> None:
        """End the grace period of a drain now: the streams still running are interrupted.

        Only sets a flag, so that a signal handler may call it.
        """
        self._hurried = True

    async def drain(self, grace_s: float) -> int:
        """Refuse new streams, give the running ones ``grace_s``, then interrupt the rest.

        Returns how many streams were still running when the grace period ran out.
        """
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        told = False
        while True:
            tasks = [s.task for s in self.registry.running() if s.task and not s.task.done()]
            remaining = deadline - loop.time()
            if not tasks or remaining <= 0 or self._hurried:
                break
            if not told:
                logger.info(
                    "shutting down: waiting up to %.1f s for %d running stream(s)",
                    remaining,
                    len(tasks),
                )
                told = True
            await asyncio.wait(tasks, timeout=min(remaining, HURRY_POLL_S))
        left = len(self.registry.running())
        if left:
            logger.info("shutting down: interrupting %d stream(s) still running", left)
        await self.shutdown()
        return left
