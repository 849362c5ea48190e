"""What a model call takes and yields, independent of the provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from plancast.shared import ModelSpec


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: ModelSpec
    system: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int = 8192


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


ModelOutput = TextDelta | Usage
