"""Streamed markdown cut into settled blocks: the rules, and any chunking gives the same blocks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plancast.client.ui.markdown import Block, MarkdownBlocks

REPLY = (
    "# Plan\n"
    "I will change two things.\n"
    "Both are small.\n"
    "\n"
    "```python\n"
    "def f():\n"
    "\n"
    "    return 1\n"
    "```\n"
    "- one\n"
    "- two\n"
    "\n"
    "\n"
    "~~~\n"
    "```not a closer\n"
    "~~~~\n"
    "Done."
)
BLOCKS = [
    Block("# Plan\n", False),
    Block("I will change two things.\nBoth are small.\n", False),
    Block("```python\ndef f():\n\n    return 1\n```\n", True),
    Block("- one\n- two\n", False),
    Block("~~~\n```not a closer\n~~~~\n", True),
    Block("Done.\n", False),
]


def blocks_of(chunks: list[str]) -> list[Block]:
    splitter = MarkdownBlocks()
    out = [block for chunk in chunks for block in splitter.feed(chunk)]
    return out + splitter.flush()


def test_blocks_follow_the_rules() -> None:
    assert blocks_of([REPLY]) == BLOCKS


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_same_blocks_for_any_chunk_size(size: int) -> None:
    assert blocks_of([REPLY[i : i + size] for i in range(0, len(REPLY), size)]) == BLOCKS


@given(st.lists(st.integers(min_value=0, max_value=len(REPLY)), max_size=20))
def test_same_blocks_for_random_splits(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [REPLY[a:b] for a, b in zip([0, *points], [*points, len(REPLY)], strict=True)]
    assert blocks_of(chunks) == BLOCKS


@given(st.text(alphabet="ab #`~-\n", max_size=80))
def test_nothing_is_lost_or_invented(text: str) -> None:
    """Settled blocks hold every non-blank line of the input, in order (plus closed fences)."""
    shown = "".join(b.text for b in blocks_of([text]))
    lines = [line for line in text.splitlines() if line.strip()]
    kept = iter(line for line in shown.splitlines() if line.strip())
    for line in lines:
        assert any(other == line for other in kept)


def test_a_block_is_settled_only_when_later_text_cannot_change_it() -> None:
    splitter = MarkdownBlocks()
    assert splitter.feed("A para") == []
    assert splitter.tail == "A para"
    assert splitter.feed("graph\nstill the same one\n") == []
    assert splitter.feed("\n") == [Block("A paragraph\nstill the same one\n", False)]
    assert splitter.feed("```\ncode\n\nmore") == []  # a blank line inside code settles nothing
    assert splitter.in_code
    assert splitter.feed(" code\n```\n") == [Block("```\ncode\n\nmore code\n```\n", True)]
    assert splitter.tail == ""


def test_flush_closes_an_open_fence_so_that_it_renders_as_code() -> None:
    splitter = MarkdownBlocks()
    splitter.feed("````js\nlet x\n```\n")  # a shorter fence does not close it
    assert splitter.flush() == [Block("````js\nlet x\n```\n````\n", False)]
    assert splitter.flush() == []


def test_a_line_between_blocks_takes_the_blank_line_before_it() -> None:
    splitter = MarkdownBlocks()
    assert splitter.take_gap() is False  # nothing before it: no blank line at the top
    splitter.feed("para\n\n")
    assert splitter.take_gap() is True
    assert splitter.take_gap() is False  # taken once
    assert splitter.feed("next\n\n") == [Block("next\n", False)]
