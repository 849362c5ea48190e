"""OpenAI chat completions through the official SDK: OpenAI, Azure, and compatible endpoints.

Ollama and any other OpenAI-compatible server are reached with a base URL; one
that needs no key gets a placeholder, because the SDK insists on having one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from plancast.server.llm.errors import translate
from plancast.server.llm.providers.tls import ssl_context
from plancast.server.llm.types import ChatRequest, ModelOutput, TextDelta, Usage
from plancast.shared import PROVIDERS, ProviderCredentials

DEFAULT_AZURE_API_VERSION = "2024-10-21"


def _client(creds: ProviderCredentials, timeout: float, max_retries: int) -> Any:
    import openai

    spec = PROVIDERS[creds.provider]
    common: dict[str, Any] = {
        "api_key": creds.api_key or "unused",
        "max_retries": max_retries,
        "timeout": openai.Timeout(timeout, connect=10.0),
        "http_client": openai.DefaultAsyncHttpxClient(verify=ssl_context()),
    }
    if creds.provider == "azure":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=creds.base_url or "",
            api_version=creds.api_version or DEFAULT_AZURE_API_VERSION,
            **common,
        )
    return openai.AsyncOpenAI(base_url=creds.base_url or spec.default_base_url, **common)


async def stream_chat(
    request: ChatRequest, creds: ProviderCredentials, *, timeout: float, max_retries: int = 0
) -> AsyncIterator[ModelOutput]:
    """Yield the reply's text as it arrives, then its token usage.

    Raises:
        ProviderError: any SDK or transport failure, translated; the SDK's own
            text (which may quote a key) is dropped.
    """
    messages = [{"role": "system", "content": request.system}]
    messages += [{"role": m.role, "content": m.content} for m in request.messages]
    try:
        async with _client(creds, timeout, max_retries) as client:
            stream = await client.chat.completions.create(
                model=request.model.name,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                if chunk.choices:
                    text = chunk.choices[0].delta.content
                    if text:
                        yield TextDelta(text)
                if chunk.usage is not None:
                    yield Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
    except Exception as exc:
        raise translate(creds.provider, exc) from None
