"""OpenAI chat-completions wire format (also served on the Azure OpenAI paths).

Only what the real `openai` SDK reads is rendered, but rendered as the real API does: streams are
`data: {json}` events of `"object": "chat.completion.chunk"` (the SDK's `.stream()` helper checks
it), a role chunk first, a final chunk carrying `finish_reason`, an optional usage chunk with empty
`choices`, then `data: [DONE]`. The chat-completions API sends no `event:` lines.
"""

from __future__ import annotations

import json
from typing import Any

from .script import Turn

_FINISH = {"stop": "stop", "length": "length"}

# (type, code) per status, as api.openai.com sends them.
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def _event(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


class OpenAIFormat:
    """Renders turns as chat-completion chunks and JSON bodies."""

    name = "openai"
    request_id_header = "x-request-id"

    @staticmethod
    def validate(body: dict[str, Any]) -> str | None:
        """Reject what the real API rejects and a client bug could send; None when acceptable."""
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "you must provide a model parameter"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty array"
        return None

    @staticmethod
    def _chunk(turn: Turn, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        data: dict[str, Any] = {
            "id": turn.message_id,
            "object": "chat.completion.chunk",
            "created": turn.created,
            "model": turn.model,
            "system_fingerprint": "fp_emulator",
            "choices": choices,
        }
        if turn.include_usage:
            data["usage"] = None
        data.update(extra)
        return _event(data)

    @classmethod
    def _delta(cls, turn: Turn, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return cls._chunk(turn, [choice])

    @classmethod
    def preamble(cls, turn: Turn) -> list[bytes]:
        return [cls._delta(turn, {"role": "assistant", "content": "", "refusal": None})]

    @classmethod
    def delta(cls, turn: Turn, text: str) -> bytes:
        return cls._delta(turn, {"content": text})

    @classmethod
    def ending(cls, turn: Turn) -> list[bytes]:
        events = [cls._delta(turn, {}, _FINISH[turn.reply.finish])]
        if turn.include_usage:
            events.append(cls._chunk(turn, [], usage=cls._usage(turn)))
        events.append(_event("[DONE]"))
        return events

    @staticmethod
    def malformed(turn: Turn) -> bytes:
        return _event('{"id": "' + turn.message_id + '", "choices": [{"delta": ')

    @classmethod
    def error_event(cls, turn: Turn) -> bytes:
        return _event(cls.error_body(500, "The server had an error while processing your request."))

    @staticmethod
    def _usage(turn: Turn) -> dict[str, int]:
        return {
            "prompt_tokens": turn.input_tokens,
            "completion_tokens": turn.output_tokens,
            "total_tokens": turn.input_tokens + turn.output_tokens,
        }

    @classmethod
    def completion(cls, turn: Turn) -> dict[str, Any]:
        message = {"role": "assistant", "content": turn.reply.text, "refusal": None}
        return {
            "id": turn.message_id,
            "object": "chat.completion",
            "created": turn.created,
            "model": turn.model,
            "system_fingerprint": "fp_emulator",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _FINISH[turn.reply.finish],
                }
            ],
            "usage": cls._usage(turn),
        }

    @staticmethod
    def error_body(status: int, message: str | None = None) -> dict[str, Any]:
        kind, code = _ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        text = message or f"Emulated error {status}."
        return {"error": {"message": text, "type": kind, "param": None, "code": code}}
