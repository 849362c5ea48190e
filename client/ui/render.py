"""Showing a stream as it runs: the reply (markdown in a terminal), a live status line, a summary.

Three ways to show the reply, chosen once per stream from what the terminal can do:

- ``markdown`` (stdout and stderr are a colour terminal, ``markdown`` setting on): each
  markdown block is printed, rendered with rich, once it is settled (see ``ui.markdown``); the
  block still arriving is previewed, rendered, in the live region above the status line.
- ``lines`` (a terminal, but ``NO_COLOR`` or ``markdown = false``): the same with plain text,
  settled line by line; the preview is the line being written.
- ``direct`` (stdout is not a terminal, or stderr cannot redraw): the text is written as it
  arrives, exactly as before this module existed, so that pipes and scripts see plain prose.

stdout only ever receives settled text; the live region (preview and status) is drawn on
stderr and erased before anything else is written, so the two never mix (``ui.live``). The
status line ticks from a background thread, because the stream can be silent for seconds while
the model thinks; that thread only redraws, under the region's lock.

``StreamRenderer`` has the interface of ``plancast.client.commands.streams``'s ``Renderer``
(``show(event)``, ``pause()`` and ``changes``), so that ``watch()`` can use it unchanged.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from plancast.client.ui.live import LiveRegion
from plancast.client.ui.markdown import Block, MarkdownBlocks
from plancast.client.ui.reply_view import Piece, ReplyView
from plancast.client.ui.status import StreamStatus
from plancast.shared import ChangeEvent, Delta, End, Status, StreamEvent

if TYPE_CHECKING:
    from plancast.client.ui.output import Output

Mode = Literal["markdown", "lines", "direct"]

CODE_THEME = "monokai"
TICK_S = 0.1  # how often the status line's clock moves
PREVIEW_EVERY_S = 0.05  # the preview is rendered at most this often (rich is not free)
_TRAILING_SPACES = re.compile(r" +$", re.MULTILINE)


class _Lines:
    """The ``lines`` mode's splitter: a complete line is settled; the rest is the tail."""

    def __init__(self) -> None:
        self.tail = ""
        self.in_code = False

    def feed(self, text: str) -> list[Block]:
        self.tail += text
        cut = self.tail.rfind("\n") + 1
        if not cut:
            return []
        done, self.tail = self.tail[:cut], self.tail[cut:]
        return [Block(done, False)]

    def flush(self) -> list[Block]:
        done, self.tail = self.tail, ""
        return [Block(done + "\n", False)] if done else []


def choose_mode(output: Output, markdown: bool) -> Mode:
    if not (output.out_is_tty and output.can_redraw):
        return "direct"
    return "markdown" if markdown and output.color else "lines"


class StreamRenderer:
    """Renders one stream's events; see the module docstring for what goes where."""

    def __init__(
        self,
        session: Any,
        *,
        mode: Mode | None = None,
        clock: Callable[[], float] = time.monotonic,
        region: LiveRegion | None = None,
        tick: bool = True,
    ) -> None:
        self.out: Output = session.output
        self.view = ReplyView()
        self.changes: list[ChangeEvent] = []
        self.failed: dict[str, ChangeEvent] = {}  # a change is sent again when its build fails
        self.status = StreamStatus(started=clock())
        self.mode: Mode = mode or choose_mode(self.out, _markdown_setting(session))
        self._clock = clock
        self._frame = 0
        self._lock = threading.RLock()
        self.at_line_start = True
        self._ascii = not _can_encode(self.out.err, "▸⠋·")
        self._blocks: MarkdownBlocks | _Lines = (
            MarkdownBlocks() if self.mode == "markdown" else _Lines()
        )
        self._preview: list[str] = []
        self._preview_dirty = False
        self._preview_at = 0.0
        self._console: Any = None
        self._done = False
        self.region = region
        if self.region is None and self.out.can_redraw:
            self.region = LiveRegion(self.out.err)
        if self.region is not None:
            self.out.attach_live(self.region)
            self._draw(reveal=True)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.region is not None and tick:
            self._ticker = threading.Thread(
                target=self._tick_loop, name="plancast-status", daemon=True
            )
            self._ticker.start()

    # -- events ------------------------------------------------------------------------------

    def show(self, event: StreamEvent) -> None:
        with self._lock:
            if isinstance(event, Delta):
                self.status.on_text(event.text)
                self._pieces(self.view.feed_pieces(event.text))
            elif isinstance(event, ChangeEvent):
                if event.status == "failed":
                    self.failed[event.change_id] = event
                    self.status.changes -= 1
                else:
                    self.changes.append(event)
                    self.status.changes += 1
            elif isinstance(event, Status):
                self.status.on_stage(event.stage, event.detail)
                if event.stage == "problem":
                    self._settle_all()
                    self._break_on_terminal()
                    self.out.note(f"warning: {event.detail}", "yellow")
            elif isinstance(event, End):
                self._pieces(self.view.finish_pieces())
                self._settle_all()
                self._break()
                self.close()
                self._end(event)
                return
            self._draw(reveal=True)

    def pause(self) -> None:
        """Before someone else's note (a reconnect, a detach): show what arrived, end the line.

        The line is ended only on a terminal, where the note would otherwise start in the middle
        of it: piped, the note goes elsewhere, and a newline would corrupt the reply's text
        (a reconnect can fall in the middle of a word). The live region is hidden by the note's
        write and comes back with the next event.
        """
        with self._lock:
            self._settle_all()
            self._break_on_terminal()

    def close(self) -> None:
        """Stop the clock and erase the live region. Idempotent; safe after any failure."""
        self._done = True
        self._stop.set()
        if self.region is not None and self.out.live is self.region:
            self.out.close_live()
        elif self.region is not None:
            self.region.close()

    # -- the reply ---------------------------------------------------------------------------

    def _pieces(self, pieces: list[Piece]) -> None:
        for piece in pieces:
            if piece.kind == "block":
                self.status.on_block(piece.path or "")
                self._settle_all()
                if isinstance(self._blocks, MarkdownBlocks) and self._blocks.take_gap():
                    self._put("\n")
                self._put(self.out.style(piece.text.rstrip("\n"), "cyan") + "\n")
                continue
            self.status.on_prose()
            if self.mode == "direct":
                self._put(piece.text)
                continue
            settled = self._blocks.feed(piece.text)
            for block in settled:
                self._print_block(block)
            self._preview_dirty = True
            if settled:  # the preview shows text that is now printed: redo it before any draw
                self._preview_at = float("-inf")

    def _settle_all(self) -> None:
        if self.mode == "direct":
            return
        for block in self._blocks.flush():
            self._print_block(block)
        self._preview_dirty = True
        self._preview_at = float("-inf")

    def _print_block(self, block: Block) -> None:
        text = block.text
        if self.mode == "markdown":
            text = self._markdown(text)
        if block.gap:
            text = "\n" + text
        self._put(text)

    def _put(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.at_line_start = text.endswith("\n")

    def _break(self) -> None:
        if not self.at_line_start:
            self._put("\n")

    def _break_on_terminal(self) -> None:
        if self.out.out_is_tty:
            self._break()

    def _markdown(self, text: str, width: int | None = None) -> str:
        """``text`` rendered by rich as terminal text, without its padding."""
        from rich.markdown import Markdown

        console = self._rich(width)
        with console.capture() as capture:
            console.print(Markdown(text, code_theme=CODE_THEME))
        rendered = _TRAILING_SPACES.sub("", capture.get()).lstrip("\n")
        return rendered if rendered.endswith("\n") else rendered + "\n"

    def _rich(self, width: int | None) -> Any:
        from rich.console import Console

        if self._console is None:
            self._console = Console(
                file=io.StringIO(),
                force_terminal=True,
                highlight=False,
                markup=False,
                emoji=False,
            )
        self._console.width = width or (self.region.width if self.region else 80)
        return self._console

    # -- the live region ---------------------------------------------------------------------

    def _render_preview(self) -> None:
        tail = self._blocks.tail if self.mode != "direct" else ""
        self._preview_dirty = False
        self._preview_at = self._clock()
        if not tail.strip() or self.region is None:
            self._preview = []
            return
        keep = self.region.height
        lines = tail.splitlines(keepends=True)
        if len(lines) > keep:  # render only what can be seen; keep a code fence's opener
            head = lines[:1] if self._blocks.in_code else []
            lines = head + lines[-keep:]
        source = "".join(lines)
        if self.mode == "markdown":
            rendered = self._markdown(source, self.region.width).rstrip("\n").split("\n")
        else:
            rendered = source.rstrip("\n").split("\n")
        self._preview = rendered[-max(keep - 1, 1) :]

    def _draw(self, *, reveal: bool = False) -> None:
        """Redraw the region; ``reveal`` brings it back if someone else's write hid it."""
        if self.region is None or self._done:
            return
        now = self._clock()
        if self._preview_dirty and now - self._preview_at >= PREVIEW_EVERY_S:
            self._render_preview()
        status = self.status.line(now, frame=self._frame, ascii_only=self._ascii)
        lines = [*self._preview, self.out.err_style(status, "dim")]
        if reveal:
            self.region.show(lines)
        else:
            self.region.update(lines)

    def tick(self) -> None:
        """Move the clock and the spinner (the ticker thread calls this)."""
        with self._lock:
            self._frame += 1
            self._draw()

    def _tick_loop(self) -> None:
        while not self._stop.wait(TICK_S):
            if self.region is None or self.region.closed:
                return
            self.tick()

    # -- the end -----------------------------------------------------------------------------

    def _end(self, end: End) -> None:
        out = self.out
        if end.status == "finished":
            out.note("── done", "green")
        elif end.status == "stopped":
            out.note(
                "── stopped; the partial reply is kept (`plancast continue` resumes)", "yellow"
            )
        else:
            out.error(end.error_message or f"the stream {end.status}")
        for change in self.failed.values():
            out.error(f"not built: {change.path} — {change.detail} (never applied)")
        pending = [c for c in self.changes if c.change_id not in self.failed]
        if pending:
            paths = sorted({c.path for c in pending})
            out.line(f"{len(pending)} pending change(s) to {len(paths)} file(s):", "bold")
            for path in paths:
                out.line(f"  {path}")
            out.line("review with `plancast diff`, then `plancast apply` or `plancast reject`")


def _markdown_setting(session: Any) -> bool:
    try:
        return bool(session.settings["markdown"])
    except (AttributeError, KeyError):  # a session without settings (tests, old callers)
        return True


def _can_encode(stream: Any, text: str) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True
