"""The stream renderer: what reaches stdout, what the live region shows, and their order."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plancast.client.config import Settings
from plancast.client.ui.live import LiveRegion
from plancast.client.ui.render import StreamRenderer, choose_mode
from plancast.shared import ChangeEvent, Delta, End, Status, StreamEvent
from tests.client.ui.conftest import FakeSession, FakeTerminal, plain

REPLY = (
    "Plan: make it **greet**.\n"
    "\n"
    "```python\n"
    "x = 1\n"
    "```\n"
    '<pc:file path="greet.py">\n'
    "print('hi')\n"
    "</pc:file>\n"
    "Done, see `greet.py`."
)
PLAIN_SHOWN = (
    "Plan: make it **greet**.\n"
    "\n"
    "```python\n"
    "x = 1\n"
    "```\n"
    "  ▸ writing greet.py\n"
    "Done, see `greet.py`.\n"
)
SUMMARY = (
    "1 pending change(s) to 1 file(s):\n"
    "  greet.py\n"
    "review with `plancast diff`, then `plancast apply` or `plancast reject`\n"
)


def stream_events(text: str, cuts: list[int] | None = None) -> list[StreamEvent]:
    points = sorted(set(cuts if cuts is not None else range(0, len(text), 7)) - {0})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    out: list[StreamEvent] = [Status(stream_id="s1", seq=1, stage="planning", detail="m")]
    out += [Delta(stream_id="s1", seq=i + 2, text=c) for i, c in enumerate(chunks) if c]
    seq = len(out) + 1
    out.append(ChangeEvent(stream_id="s1", seq=seq, change_id="c1", path="greet.py", op="write"))
    out.append(End(stream_id="s1", seq=seq + 1, status="finished", changes=1))
    return out


class Clock:
    def __init__(self, step: float = 0.01) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def render(
    term: FakeTerminal,
    tmp_path: Path,
    events: list[StreamEvent],
    *,
    color: bool = False,
    step: float = 0.01,
) -> StreamRenderer:
    session = FakeSession(tmp_path, term.output(color=color))
    region = None
    if term.err.isatty():
        region = LiveRegion(term.err, size=lambda: (60, 20))
    renderer = StreamRenderer(session, clock=Clock(step), region=region, tick=False)
    for event in events:
        renderer.show(event)
    return renderer


def region_never_under_stdout(log: list[tuple[str, str]]) -> None:
    """No stdout write happens while the live region is on the screen."""
    drawn = False
    for name, text in log:
        if name == "err" and "\x1b[?2026h" in text:  # a redraw of the region
            after_erase = text.rsplit("\x1b[J", 1)[-1]
            drawn = bool(plain(after_erase).strip())
        elif name == "err" and text.endswith("\x1b[J"):  # an erase
            drawn = False
        elif name == "out" and text:
            assert not drawn, f"stdout written over the live region: {text!r}"


def preview_never_repeats(log: list[tuple[str, str]], needle: str) -> None:
    """Once ``needle`` is on stdout, no later redraw of the live region shows it again."""
    printed = False
    for name, text in log:
        if name == "out" and needle in plain(text):
            printed = True
        elif printed and name == "err" and "\x1b[?2026h" in text:
            assert needle not in plain(text), f"the preview repeats {needle!r}"


@pytest.fixture(autouse=True)
def xterm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")


def test_piped_output_is_the_plain_reply(tmp_path: Path) -> None:
    term = FakeTerminal(out_tty=False, err_tty=False)
    renderer = render(term, tmp_path, stream_events(REPLY))
    assert renderer.mode == "direct" and renderer.region is None
    assert term.stdout == PLAIN_SHOWN + SUMMARY
    assert term.stderr == "── done\n"


def test_a_status_line_on_a_terminal_stderr_leaves_piped_stdout_alone(tmp_path: Path) -> None:
    term = FakeTerminal(out_tty=False, err_tty=True)
    renderer = render(term, tmp_path, stream_events(REPLY))
    assert renderer.mode == "direct"
    assert term.stdout == PLAIN_SHOWN + SUMMARY
    shown = plain(term.stderr)
    assert re.search(r"planning · ~0 tokens · \d+\.\ds", shown)
    assert "building greet.py" in shown
    assert re.search(r"writing · ~\d+ tokens", shown)
    assert renderer.region is not None and renderer.region.closed
    assert term.stderr.endswith("── done\n")


@pytest.mark.parametrize(("every", "step"), [(7, 0.01), (1, 0.02)])
def test_markdown_is_rendered_block_by_block(tmp_path: Path, every: int, step: float) -> None:
    term = FakeTerminal()
    events = stream_events(REPLY, list(range(0, len(REPLY), every)))
    renderer = render(term, tmp_path, events, color=True, step=step)  # a throttled preview
    assert renderer.mode == "markdown"
    shown = plain(term.stdout)
    assert "Plan: make it greet." in shown and "**" not in shown  # rendered emphasis
    assert "\x1b[1mgreet" in term.stdout  # bold
    assert shown.count("x = 1") == 1  # settled once, never printed twice
    assert "▸ writing greet.py" in shown and "print('hi')" not in shown
    assert "Done, see greet.py." in shown
    assert shown.index("Plan") < shown.index("x = 1") < shown.index("writing") < shown.index("Done")
    region_never_under_stdout(term.log)
    for needle in ("x = 1", "make it", "writing greet.py"):
        preview_never_repeats(term.log, needle)
    assert renderer.region is not None and renderer.region.closed


def test_the_block_still_arriving_is_previewed_on_stderr_only(tmp_path: Path) -> None:
    term = FakeTerminal()
    text = "A **long** paragraph still going"
    render(term, tmp_path, stream_events(text), color=True, step=1.0)  # no throttling
    preview = [text for name, text in term.log if name == "err" and "long" in plain(text)]
    assert preview and "**" not in plain(preview[-1])  # the preview is rendered markdown too
    region_never_under_stdout(term.log)


@given(st.lists(st.integers(min_value=0, max_value=len(REPLY)), max_size=12))
@settings(max_examples=25, deadline=None)
def test_stdout_is_the_same_for_any_chunking(cuts: list[int]) -> None:
    whole, split = FakeTerminal(), FakeTerminal()
    render(whole, Path("."), stream_events(REPLY, []), color=True)
    render(split, Path("."), stream_events(REPLY, cuts), color=True)
    assert split.stdout == whole.stdout
    region_never_under_stdout(split.log)


def test_without_colour_a_terminal_gets_plain_complete_lines(tmp_path: Path) -> None:
    term = FakeTerminal()
    renderer = render(term, tmp_path, stream_events(REPLY), color=False)
    assert renderer.mode == "lines"
    assert term.stdout == PLAIN_SHOWN + SUMMARY
    assert "\x1b[" not in term.stdout
    region_never_under_stdout(term.log)
    partial = [plain(t) for n, t in term.log if n == "err" and "Done, see" in plain(t)]
    assert partial  # the incomplete last line was previewed before it was printed


def test_the_markdown_setting_and_a_dumb_terminal_turn_rendering_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    term = FakeTerminal()
    output = term.output(color=True)
    assert choose_mode(output, markdown=True) == "markdown"
    assert choose_mode(output, markdown=False) == "lines"
    session = FakeSession(tmp_path, output, Settings(environ={"PLANCAST_MARKDOWN": "0"}))
    assert StreamRenderer(session, tick=False).mode == "lines"
    session.output.close_live()
    monkeypatch.setenv("TERM", "dumb")
    assert choose_mode(output, markdown=True) == "direct"


def test_pause_ends_the_line_only_on_a_terminal(tmp_path: Path) -> None:
    events = stream_events("half a wo", [])[:-2]  # no End: a reconnect in mid-word
    piped = FakeTerminal(out_tty=False, err_tty=False)
    renderer = render(piped, tmp_path, events)
    renderer.pause()
    assert piped.stdout == "half a wo"  # a newline here would split the word for a script
    tty = FakeTerminal(err_tty=False)
    renderer = render(tty, tmp_path, events)
    renderer.pause()
    assert tty.stdout == "half a wo\n"


def test_a_note_during_the_stream_hides_the_region_until_the_next_event(tmp_path: Path) -> None:
    term = FakeTerminal()
    events = stream_events(REPLY)
    renderer = render(term, tmp_path, events[:3], color=False)
    assert renderer.region is not None
    renderer.out.note("connection lost; reconnecting…")
    assert renderer.region.hidden
    mark = len(term.log)
    renderer.tick()  # the clock: stays hidden (a question may be on screen)
    assert all(name != "err" or not plain(t).strip() for name, t in term.log[mark:])
    renderer.show(events[3])
    assert not renderer.region.hidden
    region_never_under_stdout(term.log)


def test_problems_are_warnings_on_stderr(tmp_path: Path) -> None:
    term = FakeTerminal(out_tty=False, err_tty=False)
    problem = Status(stream_id="s1", seq=2, stage="problem", detail="bad block")
    events = stream_events("text")
    render(term, tmp_path, [events[0], problem, *events[1:]])
    assert "warning: bad block" in term.stderr


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (End(stream_id="s1", seq=9, status="stopped"), "stopped; the partial reply is kept"),
        (End(stream_id="s1", seq=9, status="failed", error_message="rate limited"), "rate limited"),
        (End(stream_id="s1", seq=9, status="interrupted"), "error: the stream interrupted"),
    ],
)
def test_the_end_says_how_the_stream_ended(tmp_path: Path, end: End, expected: str) -> None:
    term = FakeTerminal(out_tty=False, err_tty=False)
    render(term, tmp_path, [end])
    assert expected in term.stderr


def test_the_clock_ticks_in_a_thread_that_ends_with_the_stream(tmp_path: Path) -> None:
    term = FakeTerminal()
    session = FakeSession(tmp_path, term.output())
    region = LiveRegion(term.err, size=lambda: (60, 20))
    renderer = StreamRenderer(session, region=region)
    assert renderer._ticker is not None
    seen = threading.Event()
    original = renderer.tick

    def tick() -> None:
        original()
        seen.set()

    renderer.tick = tick  # type: ignore[method-assign]
    assert seen.wait(5)
    renderer.show(End(stream_id="s1", seq=1))
    renderer._ticker.join(5)
    assert not renderer._ticker.is_alive()
    assert session.output.live is None


def test_the_blank_line_before_a_change_block_stays_before_its_marker(tmp_path: Path) -> None:
    term = FakeTerminal()
    text = 'Intro.\n\n<pc:file path="a.py">\nx\n</pc:file>\nAfter.\n'
    render(term, tmp_path, stream_events(text), color=True)
    shown = [line.strip() for line in plain(term.stdout).splitlines()]
    assert shown[:4] == ["Intro.", "", "▸ writing a.py", "After."]


def test_a_change_whose_build_failed_is_named_with_its_reason_and_not_counted(
    tmp_path: Path,
) -> None:
    events = stream_events(REPLY)
    end = events.pop()
    failed = ChangeEvent(
        stream_id="s1",
        seq=end.seq,
        change_id="c1",
        path="greet.py",
        op="write",
        status="failed",
        detail="greet.py would not parse as Python at line 1",
    )
    events += [failed, End(stream_id="s1", seq=end.seq + 1, status="finished", changes=1)]
    term = FakeTerminal(out_tty=False, err_tty=False)
    renderer = render(term, tmp_path, events)
    assert "pending change" not in term.stdout
    assert "not built: greet.py — greet.py would not parse" in term.stderr
    assert renderer.status.changes == 0
