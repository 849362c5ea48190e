"""Anthropic messages through the official SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from plancast.server.llm.errors import translate
from plancast.server.llm.providers.tls import ssl_context
from plancast.server.llm.types import ChatRequest, ModelOutput, TextDelta, Usage
from plancast.shared import ProviderCredentials


def _client(creds: ProviderCredentials, timeout: float, max_retries: int) -> Any:
    import anthropic

    return anthropic.AsyncAnthropic(
        api_key=creds.api_key,
        base_url=creds.base_url or None,
        max_retries=max_retries,
        timeout=anthropic.Timeout(timeout, connect=10.0),
        http_client=anthropic.DefaultAsyncHttpxClient(verify=ssl_context()),
    )


async def stream_chat(
    request: ChatRequest, creds: ProviderCredentials, *, timeout: float, max_retries: int = 0
) -> AsyncIterator[ModelOutput]:
    """Yield the reply's text as it arrives, then its token usage.

    Raises:
        ProviderError: any SDK or transport failure, translated.
    """
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    try:
        async with _client(creds, timeout, max_retries) as client:
            async with client.messages.stream(
                model=request.model.name,
                system=request.system,
                messages=messages,
                max_tokens=request.max_tokens,
            ) as stream:
                async for text in stream.text_stream:
                    if text:
                        yield TextDelta(text)
                final = await stream.get_final_message()
                yield Usage(final.usage.input_tokens, final.usage.output_tokens)
    except Exception as exc:
        raise translate(creds.provider, exc) from None
