"""Writing to the terminal: plain when piped or when ``NO_COLOR`` is set, coloured otherwise.

Commands write through an ``Output`` rather than ``print`` so that tests (and the REPL) can
inject their own streams. While a stream is shown, a live region (the status line, and the part
of the reply still arriving) may be drawn on stderr; every write here to the terminal erases it
first, so that a note or an error never lands in the middle of it. It comes back with the
stream's next event (``ui.live``, rule 2).
"""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from plancast.client.ui.live import LiveRegion

_STYLES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}


class Output:
    def __init__(
        self, out: TextIO | None = None, err: TextIO | None = None, *, color: bool | None = None
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        if color is None:
            color = "NO_COLOR" not in os.environ and isatty(self.out)
        self.color = color
        self.live: LiveRegion | None = None

    # -- what the terminal can do ------------------------------------------------------------

    @property
    def out_is_tty(self) -> bool:
        return isatty(self.out)

    @property
    def err_is_tty(self) -> bool:
        return isatty(self.err)

    @property
    def can_redraw(self) -> bool:
        """Whether stderr is a terminal that understands cursor movement (not ``TERM=dumb``)."""
        return self.err_is_tty and os.environ.get("TERM", "") not in ("dumb", "")

    # -- writing -----------------------------------------------------------------------------

    def _quiet(self, stream: TextIO) -> AbstractContextManager[None]:
        live = self.live
        if live is None or (stream is not self.err and not isatty(stream)):
            return nullcontext()  # no region, or a pipe: nothing on the terminal to move
        return live.paused()

    def style(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_STYLES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def line(self, text: str = "", *styles: str) -> None:
        with self._quiet(self.out):
            self.out.write(self.style(text, *styles) + "\n")
            self.out.flush()

    def write(self, text: str) -> None:
        """Write without a newline, at once (for streamed text)."""
        with self._quiet(self.out):
            self.out.write(text)
            self.out.flush()

    def json(self, value: Any) -> None:
        """A command's result for scripts (``--json``): one JSON document on stdout."""
        import json

        with self._quiet(self.out):
            self.out.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
            self.out.flush()

    def note(self, text: str, *styles: str) -> None:
        """Progress and status: to stderr, so that stdout stays the command's result."""
        with self._quiet(self.err):
            self.err.write(self.err_style(text, *(styles or ("dim",))) + "\n")
            self.err.flush()

    def error(self, text: str) -> None:
        with self._quiet(self.err):
            self.err.write(self.err_style("error: ", "red", "bold") + text + "\n")
            self.err.flush()

    def err_style(self, text: str, *styles: str) -> str:
        """Like ``style``, for stderr: it may be a terminal while stdout is piped."""
        if not styles or "NO_COLOR" in os.environ or not (self.color or self.err_is_tty):
            return text
        codes = ";".join(_STYLES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def diff(self, text: str) -> None:
        for line in text.splitlines():
            if line.startswith(("+++", "---")):
                self.line(line, "bold")
            elif line.startswith("@@"):
                self.line(line, "cyan")
            elif line.startswith("+"):
                self.line(line, "green")
            elif line.startswith("-"):
                self.line(line, "red")
            else:
                self.line(line)

    def attach_live(self, region: LiveRegion) -> None:
        """Route writes around ``region`` (cleared before each write) until ``close_live``."""
        self.close_live()
        self.live = region

    def close_live(self) -> None:
        """Clear and stop the live region, if any. Safe to call at any time, and twice."""
        live, self.live = self.live, None
        if live is not None:
            live.close()


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
