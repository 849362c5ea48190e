"""Progress bars: drawn on a terminal for large jobs only; rich is imported only then."""

from __future__ import annotations

import io
import subprocess
import sys

from plancast.client.context.progress import MIN_FILES, Progress, ScanProgress, is_large


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_is_large() -> None:
    assert not is_large(10, 1000)
    assert is_large(MIN_FILES)
    assert is_large(1, 64 * 1024 * 1024)


def test_no_bar_when_not_a_terminal_or_not_wanted() -> None:
    pipe = io.StringIO()
    with Progress(pipe, "reading", 10) as bar:
        bar.advance()
        bar.update(5, 10)
    assert not bar.enabled and pipe.getvalue() == ""
    term = FakeTerminal()
    with Progress(term, "reading", 10, show=False) as bar:
        bar.advance()
    assert not bar.enabled and term.getvalue() == ""


def test_a_bar_on_a_terminal_is_drawn_then_removed() -> None:
    term = FakeTerminal()
    with Progress(term, "uploading", 1000, unit="bytes") as bar:
        assert bar.enabled
        bar.advance(500)
        bar.update(1000)
    assert "uploading" in term.getvalue()


def test_scan_progress_starts_only_for_a_large_scan() -> None:
    term = FakeTerminal()
    with ScanProgress(term) as progress:
        progress(10, 20)
    assert term.getvalue() == ""
    with ScanProgress(term) as progress:
        progress(256, MIN_FILES * 2)
        progress(MIN_FILES * 2, MIN_FILES * 2)
    assert "scanning" in term.getvalue()
    pipe = io.StringIO()
    with ScanProgress(pipe) as progress:
        progress(256, MIN_FILES * 2)
    assert pipe.getvalue() == ""


def test_progress_module_does_not_import_rich() -> None:
    code = (
        "import sys, io\n"
        "from plancast.client.context.progress import Progress\n"
        "with Progress(io.StringIO(), 'x', 3) as bar: bar.advance()\n"
        "print('rich' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
