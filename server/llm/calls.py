"""The one door to the models: every model call of a stream goes through here.

A call borrows the stream's ``Credentials`` for its duration and keeps nothing:
the SDK client is built for the call and closed after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from plancast.server.llm.credentials import Credentials
from plancast.server.llm.types import ChatRequest, ModelOutput
from plancast.shared import PROVIDERS


async def stream_chat(
    request: ChatRequest, credentials: Credentials, *, timeout: float
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
    async for item in impl.stream_chat(request, creds, timeout=timeout):
        yield item
