"""Writing to the terminal: plain when piped or when ``NO_COLOR`` is set, coloured otherwise.

Commands write through an ``Output`` rather than ``print`` so that tests (and
the REPL) can inject their own streams.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

_STYLES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "cyan": "36",
}


class Output:
    def __init__(
        self, out: TextIO | None = None, err: TextIO | None = None, *, color: bool | None = None
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        if color is None:
            color = "NO_COLOR" not in os.environ and _isatty(self.out)
        self.color = color

    def style(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_STYLES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def line(self, text: str = "", *styles: str) -> None:
        self.out.write(self.style(text, *styles) + "\n")
        self.out.flush()

    def write(self, text: str) -> None:
        """Write without a newline, at once (for streamed text)."""
        self.out.write(text)
        self.out.flush()

    def note(self, text: str, *styles: str) -> None:
        """Progress and status: to stderr, so that stdout stays the command's result."""
        self.err.write(self.style(text, *(styles or ("dim",))) + "\n")
        self.err.flush()

    def error(self, text: str) -> None:
        self.err.write(self.style("error: ", "red", "bold") + text + "\n")
        self.err.flush()

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


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
