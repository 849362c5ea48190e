"""Anthropic messages wire format.

Every stream event carries both an `event: <type>` line and the same `type` inside its data: the
`anthropic` SDK dispatches on the `event:` line and silently drops events without one, so a stream
missing them parses as an empty reply rather than failing. Order as the real API sends it:
message_start (input tokens), content_block_start, ping, content_block_delta*, content_block_stop,
message_delta (stop_reason, output tokens), message_stop.
"""

from __future__ import annotations

import json
from typing import Any

from .script import Turn

_STOP = {"stop": "end_turn", "length": "max_tokens"}

_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


def _event(kind: str, data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps({"type": kind, **data}, ensure_ascii=False)
    return f"event: {kind}\ndata: {text}\n\n".encode()


class AnthropicFormat:
    """Renders turns as Messages API stream events and JSON bodies."""

    name = "anthropic"
    request_id_header = "request-id"

    @staticmethod
    def validate(body: dict[str, Any]) -> str | None:
        """Reject what the real API rejects and a port from OpenAI tends to get wrong."""
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: Field required"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("user", "assistant"):
                # The system prompt is the top-level `system` field, never a message.
                return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        return None

    @staticmethod
    def preamble(turn: Turn) -> list[bytes]:
        message = {
            "id": turn.message_id,
            "type": "message",
            "role": "assistant",
            "model": turn.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": turn.input_tokens, "output_tokens": 1},
        }
        return [
            _event("message_start", {"message": message}),
            _event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            ),
            _event("ping", {}),
        ]

    @staticmethod
    def delta(turn: Turn, text: str) -> bytes:
        return _event(
            "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}}
        )

    @staticmethod
    def ending(turn: Turn) -> list[bytes]:
        delta = {"stop_reason": _STOP[turn.reply.finish], "stop_sequence": None}
        return [
            _event("content_block_stop", {"index": 0}),
            _event(
                "message_delta", {"delta": delta, "usage": {"output_tokens": turn.output_tokens}}
            ),
            _event("message_stop", {}),
        ]

    @staticmethod
    def malformed(turn: Turn) -> bytes:
        return _event(
            "content_block_delta", '{"type": "content_block_delta", "index": 0, "delta": '
        )

    @classmethod
    def error_event(cls, turn: Turn) -> bytes:
        return _event("error", cls.error_body(529, "Overloaded"))

    @staticmethod
    def completion(turn: Turn) -> dict[str, Any]:
        return {
            "id": turn.message_id,
            "type": "message",
            "role": "assistant",
            "model": turn.model,
            "content": [{"type": "text", "text": turn.reply.text}],
            "stop_reason": _STOP[turn.reply.finish],
            "stop_sequence": None,
            "usage": {"input_tokens": turn.input_tokens, "output_tokens": turn.output_tokens},
        }

    @staticmethod
    def error_body(status: int, message: str | None = None) -> dict[str, Any]:
        kind = _ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message or f"Emulated error {status}."},
        }
