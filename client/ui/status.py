"""The one-line status of a running stream: stage, size, elapsed time, file being built.

Pure: the renderer feeds it events and asks for the line with the current time, so the format
is tested without a clock or a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPINNER_ASCII = "-\\|/"
CHARS_PER_TOKEN = 4  # the same rough estimate as the server's usage figures for unknown models


def format_tokens(chars: int) -> str:
    tokens = chars // CHARS_PER_TOKEN
    if tokens < 1000:
        return f"~{tokens} tokens"
    return f"~{tokens / 1000:.1f}k tokens"


def format_elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


@dataclass(slots=True)
class StreamStatus:
    """What the status line knows about the stream being shown."""

    started: float
    stage: str = "starting"
    chars: int = 0
    building: str | None = None
    files: list[str] = field(default_factory=list)
    changes: int = 0

    def on_stage(self, stage: str, detail: str = "") -> None:
        if stage == "building":
            self.on_block(detail)
        elif stage != "problem":  # a problem is a warning line, not a stage
            self.stage = stage

    def on_text(self, text: str) -> None:
        self.chars += len(text)
        if self.stage in ("starting", "planning"):
            self.stage = "writing"

    def on_block(self, path: str) -> None:
        """A file block opened: it is being built until the next prose arrives."""
        self.stage = "building"
        self.building = path
        if path and path not in self.files:
            self.files.append(path)

    def on_prose(self) -> None:
        if self.stage == "building":
            self.stage = "writing"
            self.building = None

    def line(self, now: float, *, frame: int = 0, ascii_only: bool = False) -> str:
        spinner = SPINNER_ASCII if ascii_only else SPINNER
        sep = " - " if ascii_only else " · "
        stage = f"building {self.building}" if self.stage == "building" else self.stage
        parts = [
            f"{spinner[frame % len(spinner)]} {stage}",
            format_tokens(self.chars),
            format_elapsed(max(now - self.started, 0.0)),
        ]
        if self.files:
            parts.append(f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}")
        return sep.join(parts) + (" - Ctrl-C to stop" if ascii_only else " · Ctrl-C to stop")
