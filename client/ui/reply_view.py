"""What the terminal shows of a streaming reply: the prose as it arrives, and each
change block as a single line (its content is reviewed later with ``diff``).

Pure text in, text out, so that it is tested without a terminal. It reads the
reply with the same parser as the server, so both agree on what a block is.
A line that could be a tag (it starts with ``<``) is held until it is complete;
any other text is shown at once.
"""

from __future__ import annotations

from plancast.shared import BlockOpened, OpParsed, ReplyParser


class ReplyView:
    def __init__(self) -> None:
        self._parser = ReplyParser()
        self._line = ""  # the incomplete current line
        self._shown = 0  # how much of it is already on screen

    def feed(self, text: str) -> str:
        """The text to show for the next piece of the reply."""
        out: list[str] = []
        for piece in text.splitlines(keepends=True):
            self._line += piece
            if self._line.endswith("\n"):
                out.append(self._complete())
            else:
                out.append(self._partial())
        return "".join(out)

    def finish(self) -> str:
        """The text still held back when the reply ends."""
        if not self._line:
            return ""
        self._line += "\n"
        return self._complete().rstrip("\n")

    def _inside_block(self) -> bool:
        return self._parser.current_block is not None

    def _partial(self) -> str:
        if self._inside_block() or self._line.lstrip().startswith("<"):
            return ""
        new = self._line[self._shown :]
        self._shown = len(self._line)
        return new

    def _complete(self) -> str:
        line, shown = self._line, self._shown
        self._line, self._shown = "", 0
        was_inside = self._inside_block()
        events = self._parser.feed(line)
        markers = []
        for event in events:
            if isinstance(event, BlockOpened):
                verb = "writing" if event.kind == "file" else "editing"
                markers.append(f"  ▸ {verb} {event.path}\n")
        structural = (
            was_inside
            or self._inside_block()
            or any(isinstance(e, (BlockOpened, OpParsed)) for e in events)
        )
        if structural:
            return "".join(markers)
        return line[shown:] + "".join(markers)
