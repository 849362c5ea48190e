"""The one door to the models: every model call of a stream goes through here.

A call borrows the stream's ``Credentials`` for its duration and keeps nothing:
the SDK client is built for the call and closed after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from plancast.server.llm.credentials import Credentials
from plancast.server.llm.errors import ProviderRateLimited, ProviderUnavailable
from plancast.server.llm.types import ChatRequest, ModelOutput
from plancast.shared import PROVIDERS

logger = logging.getLogger("plancast.server.llm")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries happen only before any output, and never wait longer than ``max_wait_s``.

    The SDKs' own retries are off: they honour any retry-after, however long.
    """

    attempts: int = 3
    base_delay_s: float = 0.5
    max_wait_s: float = 10.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        wanted = retry_after if retry_after is not None else self.base_delay_s * 2**attempt
        return max(0.0, min(wanted, self.max_wait_s))


DEFAULT_RETRY = RetryPolicy()


async def stream_chat(
    request: ChatRequest,
    credentials: Credentials,
    *,
    timeout: float,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> AsyncIterator[ModelOutput]:
    """Stream one chat reply from the provider that ``request.model`` names.

    Raises:
        PlancastError: ``missing_credentials`` before any network traffic when
            the provider needs a key that the client did not send.
        ProviderError: the provider failed; see ``llm.errors``.
    """
    creds = credentials.require(request.model.provider)
    if PROVIDERS[request.model.provider].sdk == "anthropic":
        from plancast.server.llm.providers import anthropic_messages as impl
    else:
        from plancast.server.llm.providers import openai_chat as impl
    for attempt in range(retry.attempts):
        produced = False
        try:
            async for item in impl.stream_chat(request, creds, timeout=timeout, max_retries=0):
                produced = True
                yield item
            return
        except (ProviderRateLimited, ProviderUnavailable) as exc:
            if produced or attempt + 1 >= retry.attempts:
                raise
            wait = retry.delay(attempt, exc.retry_after)
            logger.info(
                "%s call failed (%s); retry %d in %.1fs",
                request.model,
                exc.code,
                attempt + 1,
                wait,
            )
            await asyncio.sleep(wait)
