"""ReplyView's pieces: the same text as ``feed``, cut into prose and block markers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from plancast.client.ui.reply_view import Piece, ReplyView

REPLY = (
    'Intro.\n<pc:file path="a.py">\nx\n</pc:file>\n<pc:edit path="b.py">\n'
    "<pc:find>\ny\n</pc:find>\n<pc:replace>\nz\n</pc:replace>\n</pc:edit>\nEnd"
)


def pieces(chunks: list[str]) -> list[Piece]:
    view = ReplyView()
    return [p for c in chunks for p in view.feed_pieces(c)] + view.finish_pieces()


def test_markers_carry_their_path() -> None:
    got = pieces([REPLY])
    assert [p for p in got if p.kind == "block"] == [
        Piece("block", "  ▸ writing a.py\n", "a.py"),
        Piece("block", "  ▸ editing b.py\n", "b.py"),
    ]
    assert "".join(p.text for p in got if p.kind == "prose") == "Intro.\nEnd"


@given(st.lists(st.integers(min_value=0, max_value=len(REPLY)), max_size=20))
def test_pieces_join_to_what_feed_shows(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [REPLY[a:b] for a, b in zip([0, *points], [*points, len(REPLY)], strict=True)]
    view = ReplyView()
    shown = "".join(view.feed(c) for c in chunks) + view.finish()
    got = pieces(chunks)
    assert "".join(p.text for p in got) == shown
    assert all(p.text for p in got)  # no empty pieces
