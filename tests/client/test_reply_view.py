"""The streamed reply as shown: prose at once, blocks collapsed, any chunking alike."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plancast.client.ui.reply_view import ReplyView

REPLY = (
    "Plan: add a greeting.\n"
    "\n"
    '<pc:file path="greet.py">\n'
    "def greet():\n"
    "    return 'hi'\n"
    "</pc:file>\n"
    '<pc:edit path="app.py">\n'
    "<pc:find>\n"
    "x = 1\n"
    "</pc:find>\n"
    "<pc:replace>\n"
    "x = 2\n"
    "</pc:replace>\n"
    "</pc:edit>\n"
    "Use <b>care</b> here.\n"
    "Done."
)
SHOWN = (
    "Plan: add a greeting.\n"
    "\n"
    "  ▸ writing greet.py\n"
    "  ▸ editing app.py\n"
    "Use <b>care</b> here.\n"
    "Done."
)


def show(chunks: list[str]) -> str:
    view = ReplyView()
    return "".join(view.feed(c) for c in chunks) + view.finish()


def test_blocks_collapse_to_one_line_each() -> None:
    assert show([REPLY]) == SHOWN


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_same_screen_for_any_chunk_size(size: int) -> None:
    assert show([REPLY[i : i + size] for i in range(0, len(REPLY), size)]) == SHOWN


@given(st.lists(st.integers(min_value=0, max_value=len(REPLY)), max_size=30))
def test_same_screen_for_random_splits(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [REPLY[a:b] for a, b in zip([0, *points], [*points, len(REPLY)], strict=True)]
    assert show(chunks) == SHOWN


def test_prose_is_shown_before_its_line_ends() -> None:
    view = ReplyView()
    assert view.feed("Thinking about") == "Thinking about"
    assert view.feed(" it") == " it"
    assert view.feed("\n<pc:fi") == "\n"  # could be a tag: held
    assert view.feed('le path="a.py">\n') == "  ▸ writing a.py\n"
    assert view.feed("secret content\n") == ""  # block content is never shown
