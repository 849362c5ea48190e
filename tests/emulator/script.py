"""What the emulator is told to answer: scripted replies and the faults they carry.

A test pushes `Reply` objects; the emulator pops one per model request, in arrival order, whatever
the endpoint. A reply is either a success (text streamed in chunks, with usage numbers) or a fault.
Faults are fields rather than separate classes so that one reply can combine them (a trickling
stream that is then cut) and so that a JSON reply file maps onto keyword arguments one to one.

Chunk counts in the fault fields (`stall_after`, `cut_after`, ...) count *content* chunks, the
pieces of `text`: the stream's preamble (OpenAI's role chunk; Anthropic's message_start,
content_block_start and ping) always goes out first, so `cut_after=0` means "headers and preamble
sent, then the connection drops before any text".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

DEFAULT_TEXT = "Hello from the emulator."

ROLE_DEFAULT_TEXT = {
    "namer": "emulated plan",
    "committer": "Apply the emulated change\n\nThe emulator wrote this message.",
    "summarizer": "The user and the assistant discussed an emulated plan.",
}
"""What a plancast role other than the planner gets when no reply is queued for its role."""


@dataclass(frozen=True)
class Reply:
    """One scripted answer to one model request.

    `text` is split into `chunk_chars`-sized pieces unless `chunks` gives the pieces explicitly
    (useful to put a chunk boundary exactly where a parser might trip).
    """

    text: str = DEFAULT_TEXT
    chunk_chars: int = 8
    chunks: tuple[str, ...] | None = None
    # "stop" ends normally; "length" means the token limit cut the reply (OpenAI finish_reason
    # "length", Anthropic stop_reason "max_tokens").
    finish: Literal["stop", "length"] = "stop"
    # None: estimated from the request (input) or the text (output), at ~4 characters a token.
    input_tokens: int | None = None
    output_tokens: int | None = None

    # --- faults -----------------------------------------------------------------------------
    # An HTTP error instead of a reply, in the provider's JSON error shape.
    status: int = 200
    error_message: str | None = None
    # Value of the `retry-after` header (seconds, or an HTTP date as a string).
    retry_after: float | str | None = None
    # Extra response headers, for whatever else a test needs to send.
    headers: Mapping[str, str] = field(default_factory=dict)
    # Silence before the status line: the response has not started at all (time to first byte).
    first_byte_delay: float = 0.0
    # After this many content chunks, go silent for `stall_for` seconds, then carry on.
    stall_after: int | None = None
    stall_for: float = 0.0
    # After this many content chunks, drop the connection mid-body: no final chunk, no [DONE].
    cut_after: int | None = None
    # After this many content chunks, send one event whose data line is not valid JSON.
    malformed_after: int | None = None
    # After this many content chunks, send the provider's in-stream error event and end the
    # stream (Anthropic's `event: error` overloaded_error; OpenAI's `data: {"error": ...}`).
    error_event_after: int | None = None
    # Delay before every content chunk but the first: a slow but live stream.
    trickle: float = 0.0
    # Which plancast role this reply answers: "planner" (the reply a user reads), or "namer",
    # "committer", "summarizer", "builder" (told apart by their system prompt's first words).
    role: str = "planner"

    def __post_init__(self) -> None:
        if self.chunks is not None:
            # A frozen reply should not share a mutable list with its caller; JSON gives lists.
            object.__setattr__(self, "chunks", tuple(self.chunks))
            object.__setattr__(self, "text", "".join(self.chunks))
        if self.chunk_chars < 1:
            raise ValueError("chunk_chars must be at least 1")
        count = len(self.pieces())
        for name in ("stall_after", "cut_after", "malformed_after", "error_event_after"):
            at = getattr(self, name)
            # A fault that can never fire would make a test pass for the wrong reason.
            if at is not None and not 0 <= at <= count:
                raise ValueError(f"{name}={at} but the reply has only {count} chunks")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reply:
        """Build a reply from a JSON object (the standalone emulator's reply file)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown reply fields: {sorted(unknown)}")
        return cls(**data)

    @property
    def is_error(self) -> bool:
        return self.status >= 400

    def pieces(self) -> list[str]:
        """The content chunks, in order, exactly as they go on the wire."""
        if self.chunks is not None:
            return list(self.chunks)
        size = self.chunk_chars
        return [self.text[i : i + size] for i in range(0, len(self.text), size)]

    def count_output_tokens(self) -> int:
        if self.output_tokens is not None:
            return self.output_tokens
        return max(1, math.ceil(len(self.text) / 4))


@dataclass(frozen=True)
class Turn:
    """A reply resolved against the request it answers: everything a wire format renders."""

    reply: Reply
    model: str
    message_id: str
    created: int
    input_tokens: int
    output_tokens: int
    # OpenAI only: the request asked for `stream_options.include_usage`.
    include_usage: bool = False
