"""Streamed markdown cut into blocks that can be rendered once and for all.

A reply arrives a few characters at a time, but a terminal cannot take back what scrolled off.
So the renderer prints a block only when no later text can change how it looks, and shows the
block still open in a live preview. Rules, in the order they are checked for each complete line:

1. Inside a fenced code block (```` ``` ```` or ``~~~``, up to three spaces of indent), every
   line belongs to it; a fence of the same character, at least as long, with nothing after it,
   closes it and settles the block, fences included.
2. A fence opener settles the open block (a fence may interrupt a paragraph) and opens a code
   block.
3. A blank line settles the open block: a following line starts a new one. Markdown blocks
   separated by a blank line render the same apart as together (what would differ, a loose
   list's spacing and reference-style links, is rare in replies and harmless).
4. An ATX heading (``# ...``) is a block by itself: it settles what was open and itself.
5. Any other line joins the open block (paragraphs, lists, tables, quotes).

Pure text in, blocks out, so that it is tested byte by byte without a terminal.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")


class Block(NamedTuple):
    """A settled piece of markdown; ``gap`` says a blank line came before it in the source."""

    text: str
    gap: bool


class MarkdownBlocks:
    def __init__(self) -> None:
        self._lines: list[str] = []  # complete lines of the open block
        self._partial = ""  # the incomplete last line
        self._fence: tuple[str, int] | None = None  # (character, length) of an open fence
        self._gap = False  # a blank line came before the open block
        self._started = False  # some block was settled already (no gap before the first)

    @property
    def tail(self) -> str:
        """What is not settled yet: the open block and the incomplete line."""
        return "".join(self._lines) + self._partial

    @property
    def in_code(self) -> bool:
        return self._fence is not None

    def feed(self, text: str) -> list[Block]:
        """Blocks that ``text`` settled, in order."""
        settled: list[Block] = []
        self._partial += text
        start = 0
        while (end := self._partial.find("\n", start)) != -1:
            settled.extend(self._line(self._partial[start : end + 1]))
            start = end + 1
        self._partial = self._partial[start:]
        return settled

    def flush(self) -> list[Block]:
        """Settle everything, as at the end of the reply or before a line that is not prose.

        An open code fence is closed in the text given out, so that it renders as code.
        """
        if self._partial:
            self._lines.append(self._partial + "\n")
            self._partial = ""
        if self._fence is not None and self._lines:
            char, length = self._fence
            self._lines.append(char * length + "\n")
        self._fence = None
        return [self._take()] if self._lines else []

    def take_gap(self) -> bool:
        """Whether a blank line is due before what comes next; it is then taken (not repeated).

        For a line that is not markdown (a change block's marker) printed between blocks: it
        gets the blank line that came before it, and counts as content for the next one.
        """
        due = self._gap and self._started and not self._lines and not self._partial
        self._gap = False
        self._started = True
        return due

    def _take(self) -> Block:
        block = Block("".join(self._lines), self._gap and self._started)
        self._lines = []
        self._gap = False
        self._started = True
        return block

    def _line(self, line: str) -> list[Block]:
        if self._fence is not None:
            self._lines.append(line)
            if _closes(line, *self._fence):
                self._fence = None
                return [self._take()]
            return []
        opener = _FENCE.match(line.rstrip("\n"))
        if opener and (opener.group(1)[0] == "~" or "`" not in opener.group(2)):
            out = [self._take()] if self._lines else []
            self._fence = (opener.group(1)[0], len(opener.group(1)))
            self._lines.append(line)
            return out
        if not line.strip():
            if self._lines:
                out = [self._take()]
                self._gap = True
                return out
            self._gap = True
            return []
        if _HEADING.match(line):
            out = [self._take()] if self._lines else []
            self._lines.append(line)
            out.append(self._take())
            return out
        self._lines.append(line)
        return []


def _closes(line: str, char: str, length: int) -> bool:
    stripped = line.strip()
    indent = len(line) - len(line.lstrip(" "))
    return indent <= 3 and len(stripped) >= length and stripped == char * len(stripped)
