"""Warming the SDKs in the fork server, so that each worker's first call is not a cold one.

Importing ``openai`` and ``anthropic`` is not enough: their first streamed call also imports
resources lazily, builds validators and decoders, and sets up the HTTP stack. Measured here,
that made a fresh worker's first token ~100 ms later than a warm process's. So the fork
server makes one complete streamed call with each SDK, with a dummy key, to a responder on
its own loopback socket that answers with a canned reply in that provider's wire format,
before it forks any worker. Nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from plancast.server.llm.types import ChatMessage, ChatRequest
from plancast.shared import ModelSpec, ProviderCredentials

_DUMMY_KEY = "warm-up-key-not-secret"


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {body}\n\n".encode()


def _openai_body() -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
        choices = [{"index": 0, "delta": delta, "finish_reason": finish}] if delta or finish else []
        return _sse(
            {
                "id": "warm",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "warm",
                "choices": choices,
                "usage": usage,
            }
        )

    return b"".join(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "warm"}),
            chunk({}, "stop"),
            chunk({}, usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}),
            _sse("[DONE]"),
        ]
    )


def _anthropic_body() -> bytes:
    message = {
        "id": "warm",
        "type": "message",
        "role": "assistant",
        "model": "warm",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    events = [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "w"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 1},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(_sse(data, name) for name, data in events)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        body = _anthropic_body() if b"/v1/messages" in head.split(b"\r\n", 1)[0] else _openai_body()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    finally:
        writer.close()


async def _warm() -> None:
    from plancast.server.llm.providers import anthropic_messages, openai_chat

    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    request = ChatRequest(ModelSpec.parse("openai/warm"), "warm", (ChatMessage("user", "warm"),))
    try:
        creds = ProviderCredentials("openai", api_key=_DUMMY_KEY, base_url=base + "/v1")
        async for _ in openai_chat.stream_chat(request, creds, timeout=10):
            pass
        creds = ProviderCredentials("anthropic", api_key=_DUMMY_KEY, base_url=base)
        request = ChatRequest(ModelSpec.parse("anthropic/warm"), "warm", request.messages)
        async for _ in anthropic_messages.stream_chat(request, creds, timeout=10):
            pass
    finally:
        server.close()
        await server.wait_closed()


def warm_up() -> None:
    """One streamed call per SDK against a local canned responder. Never raises."""
    try:
        asyncio.run(_warm())
    except Exception:  # a warm-up that fails only costs the first call some time
        import logging

        logging.getLogger("plancast.server.workers").warning(
            "warming up the provider SDKs failed; workers will start cold", exc_info=True
        )
