"""The status line's text, from events and a given time."""

from __future__ import annotations

import pytest

from plancast.client.ui.status import StreamStatus, format_elapsed, format_tokens


@pytest.mark.parametrize(
    ("chars", "shown"),
    [(0, "~0 tokens"), (7, "~1 tokens"), (3996, "~999 tokens"), (6400, "~1.6k tokens")],
)
def test_tokens_are_estimated_at_four_characters_each(chars: int, shown: str) -> None:
    assert format_tokens(chars) == shown


@pytest.mark.parametrize(("seconds", "shown"), [(0.04, "0.0s"), (9.96, "10.0s"), (61.5, "1m01s")])
def test_elapsed(seconds: float, shown: str) -> None:
    assert format_elapsed(seconds) == shown


def test_the_stage_follows_the_stream() -> None:
    status = StreamStatus(started=100.0)
    assert status.line(100.0).startswith("⠋ starting")
    status.on_stage("planning", "openai/gpt-5.5")
    assert "planning" in status.line(101.0)
    status.on_text("x" * 40)
    assert status.line(102.5, frame=1) == "⠙ writing · ~10 tokens · 2.5s · Ctrl-C to stop"
    status.on_stage("building", "src/app.py")
    assert "building src/app.py" in status.line(103.0)
    status.on_stage("problem", "bad block")  # a warning, not a stage
    assert "building src/app.py" in status.line(103.0)
    status.on_prose()
    status.on_block("b.py")
    line = status.line(104.0, ascii_only=True)
    assert line.startswith("- building b.py - ") and "2 files" in line
    line.encode("ascii")
