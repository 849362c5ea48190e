"""The OpenAI provider reads the stream's events itself; these pin how it reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from plancast.server.llm.providers.openai_chat import _outputs, _sse_data
from plancast.server.llm.types import TextDelta, Usage


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def _events(*lines: str) -> list[str]:
    return [data async for data in _sse_data(_lines(*lines))]


async def test_each_event_is_its_data_lines_joined() -> None:
    events = await _events(
        ": a comment",
        "event: message",
        'data: {"a":',
        "data:1}",
        "",
        "",
        "id: 7",
        "data: [DONE]",
    )
    assert events == ['{"a":\n1}', "[DONE]"]


async def test_only_one_leading_space_is_dropped() -> None:
    assert await _events("data:  two", "") == [" two"]


def test_a_chunk_gives_its_text_and_usage() -> None:
    chunk = {
        "choices": [{"delta": {"content": "hé"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    assert _outputs(chunk, None) == [TextDelta("hé"), Usage(3, 4)]
    assert _outputs({"choices": [{"delta": {}}], "usage": None}, None) == []
    assert _outputs({"choices": [], "usage": None}, None) == []


@pytest.mark.parametrize(
    "chunk",
    [
        [1, 2],
        "text",
        {"choices": ["x"]},
        {"choices": [{"delta": {"content": 5}}]},
        {"usage": {"prompt_tokens": 3}},
        {"usage": {"prompt_tokens": "many", "completion_tokens": 1}},
    ],
)
def test_a_chunk_of_the_wrong_shape_is_a_value_error(chunk: object) -> None:
    with pytest.raises(ValueError):
        _outputs(chunk, None)


def test_an_error_chunk_raises_the_sdks_error_with_its_body() -> None:
    error = {"type": "server_error", "message": "boom"}
    with pytest.raises(openai.APIError) as caught:
        _outputs({"error": error}, None)
    assert caught.value.body == error
