"""Time limits on a model's output: no stream can hang forever.

Three limits, each failing the stream as ``provider_timeout`` with a message
that says which one fired:

- first token: the model must send text within ``first_token_s`` of the call;
- idle: once it has, it must not go silent for ``idle_s`` (a per-read timeout
  alone never fires on a stream that keeps trickling, hence also:)
- deadline: the whole reply must end within ``deadline_s``.
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


async def within_limits(
    source: AsyncIterator[ModelOutput], limits: StreamLimits
) -> AsyncIterator[ModelOutput]:
    """Yield from ``source`` until it ends; raise ``ProviderTimeout`` when a limit passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.deadline_s
    seen_text = False
    iterator = aiter(source)
    try:
        while True:
            left = deadline - loop.time()
            wait = min(limits.idle_s if seen_text else limits.first_token_s, left)
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    item = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if wait >= left:
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
            if isinstance(item, TextDelta):
                seen_text = True
            yield item
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()
