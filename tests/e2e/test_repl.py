"""The interactive session in a pseudo-terminal, driven as a user would type.

The terminal is a real one as far as prompt-toolkit can tell (``TERM=xterm-256color``, a
pty, cursor-position queries answered), so Ctrl-D, Tab and Alt-Enter behave as for a user.
prompt-toolkit redraws the line with escape sequences between characters, so ``Terminal``
matches on the text with every escape sequence removed, from where the last match ended.
The logic behind these paths is tested in-process in ``tests/client/ui``; these tests check
that the pieces meet in a real terminal with the real server.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import time
from pathlib import Path

import pexpect
import pytest

from plancast.client.commands import streams
from tests.e2e.conftest import BIN, Cli
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

REPLY = 'Adding it.\n<pc:file path="greet.py">\nprint("hi")\n</pc:file>\nDone.\n'
PROMPT = r"tell>"
CTRL_C, CTRL_D, ALT_ENTER, TAB = "\x03", "\x04", "\x1b\r", "\t"
CPR_QUERY, CPR_ANSWER = "\x1b[6n", "\x1b[1;1R"
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erases
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles
    r"|\x1b[()][0-9A-Za-z]|\x1b[=>78NOc]"  # charsets, keypad modes, save/restore
    r"|\r"
)
# watch() uses this module's renderer only once the lead switches it over (see the report).
USES_STREAM_RENDERER = "StreamRenderer" in inspect.getsource(streams)


def plain(text: str) -> str:
    return _ESCAPES.sub("", text)


class Terminal:
    """``plancast`` in a pty with an xterm's manners; ``expect`` matches the plain text."""

    def __init__(self, cli: Cli, *, env: dict[str, str] | None = None, timeout: float = 30):
        environ = {**os.environ, **cli.env, "TERM": "xterm-256color", **(env or {})}
        environ = {k: v for k, v in environ.items() if v is not None}
        self.child = pexpect.spawn(
            str(BIN / "plancast"),
            cwd=str(cli.project),
            env=environ,
            encoding="utf-8",
            timeout=timeout,
            dimensions=(40, 120),
        )
        self.timeout = timeout
        self.raw = ""
        self.pos = 0

    @property
    def text(self) -> str:
        return plain(self.raw)

    def _read(self) -> None:
        try:
            chunk = self.child.read_nonblocking(65536, timeout=0.05)
        except pexpect.TIMEOUT:
            return
        self.raw += chunk
        for _ in range(chunk.count(CPR_QUERY)):
            self.child.send(CPR_ANSWER)  # as a terminal answers "where is the cursor?"

    def expect(self, pattern: str, timeout: float | None = None) -> re.Match[str]:
        deadline = time.monotonic() + (timeout or self.timeout)
        regex = re.compile(pattern)
        while True:
            text = self.text
            found = regex.search(text, self.pos)
            if found:
                self.pos = found.end()
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in the screen's text:\n{text[self.pos :]}")
            try:
                self._read()
            except pexpect.EOF:
                if regex.search(self.text, self.pos) is None:
                    raise AssertionError(
                        f"plancast ended before {pattern!r}:\n{self.text[self.pos :]}"
                    ) from None

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def line(self, text: str) -> None:
        self.child.send(text + "\r")

    def exit_status(self, timeout: float = 15) -> int | None:
        deadline = time.monotonic() + timeout
        while self.child.isalive() and time.monotonic() < deadline:
            try:
                self._read()
            except pexpect.EOF:
                break
        self.child.close()
        return self.child.exitstatus

    def close(self) -> None:
        self.child.close(force=True)


@pytest.fixture
def terminal(cli: Cli) -> object:
    opened: list[Terminal] = []

    def start(**kwargs: object) -> Terminal:
        term = Terminal(cli, **kwargs)  # type: ignore[arg-type]
        opened.append(term)
        return term

    yield start
    for term in opened:
        term.close()


def test_prompt_streams_then_the_menu_diffs_and_applies(
    cli: Cli, emulator: Emulator, terminal: object
) -> None:
    emulator.push(Reply(text=REPLY, chunk_chars=4))
    term = terminal()  # type: ignore[operator]
    term.expect("created plan")  # a new directory gets its project and plan at once
    term.expect(PROMPT)
    term.line("add a greeting")
    term.expect("Adding it.")
    term.expect("writing greet.py")
    term.expect(r"1 file pending")
    term.expect(r"\[d\] diff")
    term.send("d")
    term.expect(r'\+print\("hi"\)')
    term.expect(r"\[a\] apply")  # the menu comes back after the diff
    term.send("a")
    term.expect("created greet.py")
    term.expect(PROMPT)
    term.line('\\load "unbalanced')
    term.expect("cannot read that command")
    term.expect(PROMPT)
    term.send(CTRL_D)  # leaves, in a real terminal
    assert term.exit_status() == 0
    assert (cli.project / "greet.py").read_text() == 'print("hi")\n'


LINES = "".join(f"line {n}\n" for n in range(1, 21))
TWO_EDITS = (
    "Two tweaks.\n"
    '<pc:edit path="lines.txt">\n'
    "<pc:find>\nline 2\n</pc:find>\n<pc:replace>\nTOP\n</pc:replace>\n"
    "<pc:find>\nline 19\n</pc:find>\n<pc:replace>\nBOTTOM\n</pc:replace>\n"
    "</pc:edit>\n"
)


def test_the_menu_reviews_hunk_by_hunk_and_writes_only_the_hunks_taken(
    cli: Cli, emulator: Emulator, terminal: object
) -> None:
    (cli.project / "lines.txt").write_text(LINES)
    emulator.push(Reply(text=TWO_EDITS, chunk_chars=4))
    term = terminal(timeout=60)  # type: ignore[operator]
    term.expect(PROMPT)
    term.line("tweak the lines")
    term.expect("editing lines.txt")
    term.expect(r"1 file pending")
    term.expect(r"\[h\] review hunks")
    term.send("h")
    term.expect(r"-line 2\n\+TOP")
    term.expect(r"take hunk 1/2\?")
    term.send("y")
    term.expect(r"-line 19\n\+BOTTOM")
    term.expect(r"take hunk 2/2\?")
    term.send("n")
    term.expect(r"updated lines\.txt with 1 of 2 hunks; 1 skipped")
    term.expect(PROMPT)
    term.send(CTRL_D)
    assert term.exit_status() == 0
    assert (cli.project / "lines.txt").read_text() == LINES.replace("line 2\n", "TOP\n")
    assert cli("diff").stdout == "no pending changes\n"  # marked applied on the server


def test_ctrl_c_asks_and_stop_keeps_the_partial_reply(
    cli: Cli, emulator: Emulator, terminal: object
) -> None:
    emulator.push(Reply(text="Thinking hard. " * 400, chunk_chars=5, trickle=0.02))
    term = terminal()  # type: ignore[operator]
    term.expect(PROMPT)
    term.line("\\chat why")
    term.expect("Thinking hard.")
    term.send(CTRL_C)
    term.expect(r"interrupt the stream\?")
    term.expect(r"\[s\] stop")
    term.send("s")
    term.expect("stopping")
    term.expect("stopped; the partial reply is kept")
    term.expect(PROMPT)
    term.line("\\convo")
    term.expect(r"plancast \(chat\) \[partial\]")
    term.expect(PROMPT)
    term.line("\\quit")
    assert term.exit_status() == 0
    assert len(emulator.requests) == 1


def test_ctrl_c_then_enter_keeps_watching(cli: Cli, emulator: Emulator, terminal: object) -> None:
    emulator.push(Reply(text="word " * 150 + "THE END\n", chunk_chars=5, trickle=0.02))
    term = terminal()  # type: ignore[operator]
    term.expect(PROMPT)
    term.line("\\chat tell me")
    term.expect("word")
    term.send(CTRL_C)
    term.expect(r"interrupt the stream\?")
    term.send("\r")  # Enter: keep watching
    term.expect("THE END")
    term.expect("done")
    term.expect(PROMPT)
    term.send(CTRL_D)
    assert term.exit_status() == 0


@pytest.mark.skipif(not hasattr(streams, "Detached"), reason="this client cannot detach")
def test_ctrl_c_detach_then_connect_shows_the_whole_reply(
    cli: Cli, emulator: Emulator, terminal: object
) -> None:
    emulator.push(Reply(text="part " * 120 + "FINALE\n", chunk_chars=5, trickle=0.02))
    term = terminal()  # type: ignore[operator]
    term.expect(PROMPT)
    term.line("\\chat go")
    term.expect("part")
    term.send(CTRL_C)
    term.expect(r"\[d\] detach")
    term.send("d")
    term.expect("detached; the stream runs on")
    term.expect(PROMPT)
    term.line("\\connect")  # the stream ran on meanwhile; connect shows it all
    term.expect("FINALE")
    term.expect("done")
    term.expect(PROMPT)
    term.send(CTRL_D)
    assert term.exit_status() == 0


def test_tab_completes_a_path_and_at_path_loads_it_first(
    cli: Cli, emulator: Emulator, terminal: object
) -> None:
    source = cli.project / "src" / "greeting_helper.py"
    source.parent.mkdir()
    source.write_text("def helper():\n    return 'MARKER-42'\n")
    (cli.project / ".gitignore").write_text("ignored_helper.py\n")
    (cli.project / "ignored_helper.py").write_text("no\n")
    emulator.push(Reply(text="It returns a marker.\n"))
    term = terminal()  # type: ignore[operator]
    term.expect(PROMPT)
    term.send("\\chat what does @grehel")
    term.send(TAB)  # (the line is redrawn from the first changed character on)
    term.expect(r"src/greeting_helper\.py")
    term.line(" return?")
    term.expect("It returns a marker.")
    term.expect(PROMPT)
    term.send(CTRL_D)
    assert term.exit_status() == 0
    (request,) = emulator.requests
    assert "MARKER-42" in json.dumps(request.body)  # loaded before the prompt went out
    assert request.messages[-1]["content"] == "what does @src/greeting_helper.py return?"


def test_alt_enter_writes_a_multi_line_prompt(
    cli: Cli, emulator: Emulator, terminal: object
) -> None:
    emulator.push(Reply(text="Two lines received.\n"))
    term = terminal()  # type: ignore[operator]
    term.expect(PROMPT)
    term.send("\\chat first line")
    term.send(ALT_ENTER)
    term.line("second line")
    term.expect("Two lines received.")
    term.expect(PROMPT)
    term.send(CTRL_D)
    assert term.exit_status() == 0
    (request,) = emulator.requests
    assert request.messages[-1]["content"] == "first line\nsecond line"


@pytest.mark.skipif(not USES_STREAM_RENDERER, reason="watch() does not use ui.render yet")
def test_reply_renders_as_markdown_with_a_status_line(
    cli: Cli, emulator: Emulator, terminal: object
) -> None:
    text = "Some **bold** words.\n\n```python\nanswer = 42\n```\n\nAfter the code.\n"
    emulator.push(Reply(text=text, chunk_chars=3, trickle=0.02))
    term = terminal(env={"NO_COLOR": None})  # type: ignore[operator]
    term.expect(PROMPT)
    term.line("\\chat show me")
    term.expect(r"~\d+ tokens · \d+\.\ds")  # the status line, while it streams
    term.expect("Some bold words.")  # rendered: the asterisks are gone
    term.expect("answer = 42")
    term.expect("After the code.")
    term.expect("done")
    assert "**bold**" not in term.text
    assert "\x1b[" in term.raw  # styled output
    term.send(CTRL_D)
    assert term.exit_status() == 0


def test_history_is_kept_per_project_and_private(cli: Cli, terminal: object) -> None:
    term = terminal()  # type: ignore[operator]
    term.expect(PROMPT)
    term.line("\\plans")
    term.expect(r"\* +1 +plan-1")
    term.expect(PROMPT)
    term.send(CTRL_D)
    assert term.exit_status() == 0
    folder = Path(os.environ["XDG_STATE_HOME"]) / "plancast" / "history"
    (history,) = folder.iterdir()
    assert "\\plans" in history.read_text()
    assert history.stat().st_mode & 0o777 == 0o600


def test_a_dumb_terminal_gets_line_questions(
    cli: Cli, emulator: Emulator, terminal: object
) -> None:
    emulator.push(Reply(text=REPLY, chunk_chars=4))
    term = terminal(env={"TERM": "dumb"})  # type: ignore[operator]
    term.expect(PROMPT)
    term.line("add a greeting")
    term.expect(r"\[Enter\] keep")
    term.line("a")  # a line, not a key: the terminal cannot redraw
    term.expect("created greet.py")
    term.expect(PROMPT)
    term.line("\\quit")  # (prompt-toolkit ignores Ctrl-D on a dumb terminal)
    assert term.exit_status() == 0
    assert (cli.project / "greet.py").read_text() == 'print("hi")\n'
