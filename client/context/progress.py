"""Progress bars for long scans, reads and uploads: on stderr, only on a terminal, only when big.

A pipe or a log file gets no bar (no escape codes in a captured stderr), and a small job gets
none either (a bar that flashes for 50 ms is noise). ``rich`` is imported only when a bar is
actually drawn, so ``plancast --help`` and small loads never load it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, TextIO

__all__ = ["MIN_BYTES", "MIN_FILES", "Progress", "ScanProgress", "is_large"]

#: A job with at least this many files, or this many bytes, counts as large.
MIN_FILES = 500
MIN_BYTES = 8 * 1024 * 1024


def is_large(files: int, size: int = 0) -> bool:
    """Whether a job of ``files`` files and ``size`` bytes deserves a bar."""
    return files >= MIN_FILES or size >= MIN_BYTES


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """One bar, as a context manager: ``with Progress(err, "reading", n) as bar: bar.advance()``.

    When ``enabled`` is false (not a terminal, or ``show`` was false) every method does nothing.
    ``total`` may change while the bar runs (:meth:`update`), for phases whose size is learnt
    late, such as a walk before the files are opened.
    """

    def __init__(
        self,
        stream: TextIO,
        description: str,
        total: int | None = None,
        *,
        show: bool = True,
        unit: str = "files",
    ) -> None:
        self.enabled = show and _isatty(stream)
        self._stream = stream
        self._description = description
        self._total = total
        self._unit = unit
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        count = DownloadColumn() if self._unit == "bytes" else MofNCompleteColumn()
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            count,
            TimeElapsedColumn(),
            console=Console(file=self._stream),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self._description, total=self._total)
        return self

    def advance(self, amount: int = 1) -> None:
        """Count ``amount`` more units done."""
        if self._bar is not None:
            self._bar.advance(self._task, amount)

    def update(self, completed: int, total: int | None = None) -> None:
        """Set how much is done (and the total, when it changed)."""
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, total=total or self._total)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class ScanProgress:
    """A ``progress(done, total)`` callback for :func:`~plancast.client.context.scan.scan`.

    The size of a scan is known only after its walk, so the bar starts at the first call whose
    ``total`` is large (:func:`is_large`), and never for a small scan. Use as a context manager
    so that the bar is removed when the scan ends.
    """

    def __init__(self, stream: TextIO, description: str = "scanning") -> None:
        self._stream = stream
        self._description = description
        self._bar: Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if not is_large(total) or not _isatty(self._stream):
                return
            self._bar = Progress(self._stream, self._description, total).__enter__()
        self._bar.update(done, total)

    def __enter__(self) -> ScanProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
            self._bar = None
