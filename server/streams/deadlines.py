"""Time limits on a model's output: no stream can hang forever.

Three limits, each failing the stream as ``provider_timeout`` with a message
that says which one fired:

- first token: the model must send text within ``first_token_s`` of the call;
- idle: once it has, it must not go silent for ``idle_s`` (a per-read timeout
  alone never fires on a stream that keeps trickling, hence also:)
- deadline: the whole reply must end within ``deadline_s``.

Arming a timeout for every chunk (``asyncio.timeout``: a timer handle made,
pushed on the loop's heap and cancelled, per chunk) cost a measurable share of
a stream's CPU. One timer per stream does instead: each chunk only moves the
time the current wait must end by, and the timer, when it comes due, either
finds that time still ahead and sleeps again until then, or cancels the wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from plancast.server.llm.errors import ProviderTimeout
from plancast.server.llm.types import ModelOutput, TextDelta


@dataclass(frozen=True, slots=True)
class StreamLimits:
    first_token_s: float = 90.0
    idle_s: float = 60.0
    deadline_s: float = 1800.0


DEFAULT_LIMITS = StreamLimits()


class _Watchdog:
    """Cancels the waiting task once the current wait has lasted past its due time.

    Only a wait is ever cancelled (``waiting``): while the consumer handles an item, a due
    timer re-arms instead, so a cancellation can only land in ``within_limits``'s own
    ``await``, where it becomes a ``ProviderTimeout``.
    """

    __slots__ = ("_handle", "_loop", "_task", "due", "expired", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object]) -> None:
        self._loop = loop
        self._task = task  # the task that waits; an iterator may move between tasks
        self._handle: asyncio.TimerHandle | None = None
        self.due = 0.0
        self.waiting = False
        self.expired = False

    def wait_until(self, due: float, task: asyncio.Task[object]) -> None:
        """``task`` starts a wait that must end by ``due`` (loop time)."""
        self._task = task
        self.due = due
        self.waiting = True
        handle = self._handle
        if handle is None or handle.when() > due:  # rare: only when a wait gets shorter
            if handle is not None:
                handle.cancel()
            self._handle = self._loop.call_at(due, self._check)

    def _check(self) -> None:
        self._handle = None
        if not self.waiting:
            return  # the consumer has an item in hand; its next wait arms a timer again
        if self._loop.time() >= self.due:
            self.expired = True
            self._task.cancel()
        else:  # the wait it was armed for ended in time: sleep until the current one's due
            self._handle = self._loop.call_at(self.due, self._check)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


async def within_limits(
    source: AsyncIterator[ModelOutput], limits: StreamLimits
) -> AsyncIterator[ModelOutput]:
    """Yield from ``source`` until it ends; raise ``ProviderTimeout`` when a limit passes."""
    loop = asyncio.get_running_loop()
    task = _current_task()
    deadline = loop.time() + limits.deadline_s
    first_token_due = loop.time() + limits.first_token_s
    seen_text = False
    watchdog = _Watchdog(loop, task)
    iterator = aiter(source)
    try:
        while True:
            due = loop.time() + limits.idle_s if seen_text else first_token_due
            task = _current_task()
            watchdog.wait_until(min(due, deadline), task)
            cancelling = task.cancelling()
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                # Ours only if nobody else cancelled the task too (a stop, a shutdown):
                # then, and only then, it becomes the timeout (as ``asyncio.timeout`` does).
                if not watchdog.expired or task.uncancel() > cancelling:
                    raise
                if watchdog.due >= deadline:
                    raise ProviderTimeout(
                        f"The reply did not end within the {limits.deadline_s:g} s deadline."
                    ) from None
                if seen_text:
                    raise ProviderTimeout(
                        f"The model went silent for {limits.idle_s:g} s mid-reply."
                    ) from None
                raise ProviderTimeout(
                    f"The model sent no text within {limits.first_token_s:g} s."
                ) from None
            finally:
                watchdog.waiting = False
            if isinstance(item, TextDelta):
                seen_text = True
            yield item
    finally:
        watchdog.stop()
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


def _current_task() -> asyncio.Task[object]:
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("within_limits must be iterated inside a task")
    return task
