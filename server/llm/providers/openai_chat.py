"""OpenAI chat completions through the official SDK: OpenAI, Azure, and compatible endpoints.

Ollama and any other OpenAI-compatible server are reached with a base URL; one
that needs no key gets a placeholder, because the SDK insists on having one.
"""

from __future__ import annotations

import json
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
            # The SDK sends the request, retries and raises on the status; the
            # body's events we read ourselves. Building a typed chunk object per
            # delta was most of a worker's CPU, and a worker only needs the text.
            async with client.chat.completions.with_streaming_response.create(
                model=request.model.name,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            ) as response:
                async for data in _sse_data(response.iter_lines()):
                    if data.startswith("[DONE]"):
                        break
                    for output in _outputs(json.loads(data), response.http_response.request):
                        yield output
    except Exception as exc:
        raise translate(creds.provider, exc) from None


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The data of each server-sent event: `data:` lines joined, sent at a blank line."""
    buffer: list[str] = []
    async for line in lines:
        if not line:
            if buffer:
                yield "\n".join(buffer)
                buffer.clear()
        elif line.startswith("data:"):
            value = line[5:]
            buffer.append(value[1:] if value.startswith(" ") else value)
        # `event:`, `id:`, `retry:` and `:` comments carry nothing a chat stream needs.
    if buffer:
        yield "\n".join(buffer)


def _outputs(chunk: Any, http_request: Any) -> list[ModelOutput]:
    """What one chat completion chunk carries, read as the SDK would read it.

    Raises:
        openai.APIError: the chunk is an error event (the stream had started fine).
        ValueError: the chunk is not a JSON object.
    """
    if not isinstance(chunk, dict):
        raise ValueError("a stream chunk is not a JSON object")
    if chunk.get("error"):
        import openai

        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else None
        raise openai.APIError(
            message if isinstance(message, str) and message else "error during streaming",
            http_request,
            body=error,
        )
    outputs: list[ModelOutput] = []
    try:
        choices = chunk.get("choices")
        if choices:
            text = (choices[0].get("delta") or {}).get("content")
            if isinstance(text, str) and text:
                outputs.append(TextDelta(text))
            elif text:
                raise ValueError("a delta's content is not text")
        usage = chunk.get("usage")
        if usage:
            outputs.append(Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"])))
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise ValueError("a stream chunk has an unexpected shape") from exc
    return outputs
