"""What the terminal shows of a streaming reply: the prose as it arrives, and each
change block as a single line (its content is reviewed later with ``diff``).

Pure text in, text out, so that it is tested without a terminal. It reads the
reply with the same parser as the server, so both agree on what a block is.
A line that could be a tag (it starts with ``<``) is held until it is complete;
any other text is shown at once.

``feed`` gives the text to show; ``feed_pieces`` gives the same text cut into prose and block
markers, for a renderer that formats them differently (markdown for prose, a styled line for a
file being written).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from plancast.shared import BlockOpened, OpParsed, ReplyParser


class Piece(NamedTuple):
    """A part of what to show: prose, or the one line that stands for a change block."""

    kind: Literal["prose", "block"]
    text: str
    path: str | None = None  # for a block: the file it writes or edits


class ReplyView:
    def __init__(self) -> None:
        self._parser = ReplyParser()
        self._line = ""  # the incomplete current line
        self._shown = 0  # how much of it is already on screen

    def feed(self, text: str) -> str:
        """The text to show for the next piece of the reply."""
        return "".join(piece.text for piece in self.feed_pieces(text))

    def feed_pieces(self, text: str) -> list[Piece]:
        """Like ``feed``, cut into prose and block markers (empty pieces are left out)."""
        out: list[Piece] = []
        for part in text.splitlines(keepends=True):
            self._line += part
            if self._line.endswith("\n"):
                out.extend(self._complete())
            else:
                out.extend(self._partial())
        return out

    def finish(self) -> str:
        """The text still held back when the reply ends."""
        return "".join(piece.text for piece in self.finish_pieces())

    def finish_pieces(self) -> list[Piece]:
        if not self._line:
            return []
        self._line += "\n"
        pieces = self._complete()
        if pieces and pieces[-1].text.endswith("\n"):
            last = pieces[-1]
            trimmed = last.text[:-1]
            pieces[-1] = last._replace(text=trimmed)
            if not trimmed:
                pieces.pop()
        return pieces

    @property
    def inside_block(self) -> bool:
        """Whether the reply is inside a change block now (its content is not shown)."""
        return self._parser.current_block is not None

    def _partial(self) -> list[Piece]:
        if self.inside_block or self._line.lstrip().startswith("<"):
            return []
        new = self._line[self._shown :]
        self._shown = len(self._line)
        return [Piece("prose", new)] if new else []

    def _complete(self) -> list[Piece]:
        line, shown = self._line, self._shown
        self._line, self._shown = "", 0
        was_inside = self.inside_block
        events = self._parser.feed(line)
        markers = []
        for event in events:
            if isinstance(event, BlockOpened):
                verb = "writing" if event.kind == "file" else "editing"
                markers.append(Piece("block", f"  ▸ {verb} {event.path}\n", event.path))
        structural = (
            was_inside
            or self.inside_block
            or any(isinstance(e, (BlockOpened, OpParsed)) for e in events)
        )
        if structural or not line[shown:]:
            return markers
        return [Piece("prose", line[shown:]), *markers]
