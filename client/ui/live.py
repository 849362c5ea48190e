"""A few lines at the bottom of the terminal, redrawn in place: the live part of a stream.

Rules:

1. The region is drawn on one stream (stderr) starting at column 0 of the cursor's line and
   ends without a newline; erasing it puts the cursor back at column 0 of its first line. So
   anything written between an erase and the next draw lands exactly where the region was, and
   the region reappears below it.
2. Anyone else's write hides the region until its owner calls ``show`` again (``update``, the
   clock's redraw, does not bring it back). So a question asked with ``input()`` in the middle
   of a stream, or a note, stays readable: the region returns with the next event.
3. Every line is cropped to one column less than the terminal's width, so no line ever wraps
   and "up N lines" is always right. At most ``rows - 1`` lines are drawn (the last ones).
4. One re-entrant lock guards the screen: the stream renderer's ticker thread, the main thread's
   writes (through ``Output``, which erases first) and the interrupt question (``suspend``)
   never interleave. Re-entrant, because a SIGINT handler runs on the main thread, possibly while
   that thread already holds the lock.
5. Each redraw is wrapped in the "synchronized output" mode (DEC 2026) that modern terminals use
   to show a frame at once; terminals that do not know it ignore it.
"""

from __future__ import annotations

import re
import shutil
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_SYNC_ON, _SYNC_OFF = "\x1b[?2026h", "\x1b[?2026l"
_RESET = "\x1b[0m"


def char_width(ch: str) -> int:
    """Terminal cells taken by one character: 2 for wide East Asian, 0 for combining marks."""
    if unicodedata.combining(ch) or ch in "\u200b\u200d":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def crop(line: str, width: int) -> str:
    """``line`` cut to ``width`` terminal cells; escape sequences are kept and cost nothing.

    A line that is cut while a style is on gets a reset, so the style does not leak.
    """
    out: list[str] = []
    used = 0
    pos = 0
    styled = False
    for match in _ANSI.finditer(line):
        for ch in line[pos : match.start()]:
            w = char_width(ch)
            if used + w > width:
                return "".join(out) + (_RESET if styled else "")
            out.append(ch)
            used += w
        out.append(match.group())
        styled = match.group() not in (_RESET, "\x1b[m")
        pos = match.end()
    for ch in line[pos:]:
        w = char_width(ch)
        if used + w > width:
            return "".join(out) + (_RESET if styled else "")
        out.append(ch)
        used += w
    return "".join(out)


def terminal_size(stream: TextIO) -> tuple[int, int]:
    """(columns, rows) of the terminal behind ``stream``, or a safe 80x24."""
    try:
        import os

        size = os.get_terminal_size(stream.fileno())
        return size.columns, size.lines
    except (AttributeError, ValueError, OSError):
        fallback = shutil.get_terminal_size((80, 24))
        return fallback.columns, fallback.lines


class LiveRegion:
    """Lines redrawn in place at the bottom of a terminal stream."""

    def __init__(
        self, stream: TextIO, *, size: Callable[[], tuple[int, int]] | None = None
    ) -> None:
        self._stream = stream
        self._size = size or (lambda: terminal_size(stream))
        self._lock = threading.RLock()
        self._lines: list[str] = []
        self._drawn = 0
        self._suspended = 0
        self.hidden = False
        self.closed = False

    @property
    def width(self) -> int:
        """The columns a line may use (one less than the terminal's: rule 2)."""
        return max(self._size()[0] - 1, 10)

    @property
    def height(self) -> int:
        return max(self._size()[1] - 1, 1)

    def show(self, lines: list[str]) -> None:
        """Make ``lines`` the region's content and draw it (unless suspended or closed)."""
        with self._lock:
            self._lines = list(lines)
            self.hidden = False
            self._redraw()

    def update(self, lines: list[str]) -> None:
        """Change the content; draw it only if the region is visible (rule 2)."""
        with self._lock:
            self._lines = list(lines)
            if not self.hidden:
                self._redraw()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Erase the region for someone else's write; it stays hidden until the next ``show``."""
        with self._lock:
            self._erase()
            self._stream.flush()
            self.hidden = True
            yield

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Erase the region and draw nothing, not even on ``show``, until the block ends."""
        with self._lock:
            self._erase()
            self._stream.flush()
            self.hidden = True
            self._suspended += 1
        try:
            yield
        finally:
            with self._lock:
                self._suspended -= 1

    def close(self) -> None:
        """Erase the region for good; later calls draw nothing."""
        with self._lock:
            self._erase()
            self._stream.flush()
            self.closed = True

    def _erase(self) -> None:
        self._stream.write(self._erasing())

    def _erasing(self) -> str:
        """The escape sequence that erases the region (and forgets it was drawn)."""
        if not self._drawn:
            return ""
        up = f"\x1b[{self._drawn - 1}A" if self._drawn > 1 else ""
        self._drawn = 0
        return "\r" + up + "\x1b[J"

    def _redraw(self) -> None:
        if self.closed or self._suspended:
            return
        width, height = self.width, self.height
        lines = [crop(line, width) for line in self._lines[-height:]]
        # One write per frame: the erase and the new lines reach the terminal together.
        self._stream.write(_SYNC_ON + self._erasing() + "\n".join(lines) + _SYNC_OFF)
        self._stream.flush()
        self._drawn = len(lines)
