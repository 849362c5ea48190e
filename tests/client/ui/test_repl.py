"""The session loop, driven through prompt-toolkit's pipe input, with commands that record.

Keys are sent ahead of time; prompt-toolkit hands what one prompt did not read to the next
(its typeahead), so one string scripts a whole session: the prompt, the menus, Ctrl-D.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from plancast.client.commands import changes, streams
from plancast.client.config import Settings
from plancast.client.ui.repl import Repl
from plancast.shared import ErrorCode, PlancastError
from tests.client.ui.conftest import FakeSession, FakeTerminal, Recorder

CTRL_C, CTRL_D, ALT_ENTER = "\x03", "\x04", "\x1b\r"


class Pending:
    """The server's pending changes, as the menu reads them; apply and reject clear them."""

    def __init__(self, session: FakeSession, recorder: Recorder, paths: list[str]) -> None:
        self.paths = list(paths)
        session.api.routes[("GET", "/plans/pl_1/changes")] = lambda _: {
            "changes": [{"id": f"c{n}", "path": p} for n, p in enumerate(self.paths)]
        }
        recorder.effects["apply"] = recorder.effects["reject"] = lambda _: self.clear()

    def clear(self) -> None:
        self.paths = []


@pytest.fixture(autouse=True)
def server(session: FakeSession, recorder: Recorder) -> Pending:
    session.api.routes[("GET", "/plans/pl_1")] = {"name": "plan-1"}
    return Pending(session, recorder, [])


@pytest.fixture
def history() -> InMemoryHistory:
    return InMemoryHistory()


@pytest.fixture
def drive(session: FakeSession, recorder: Recorder, history: InMemoryHistory) -> Iterator[Any]:
    repls: list[Repl] = []

    def run(keys: str) -> int:
        with create_pipe_input() as pipe:
            pipe.send_text(keys)
            repl = Repl(session, recorder.parser, input=pipe, output=DummyOutput(), history=history)
            repls.append(repl)
            return repl.run()

    yield run


def prompts(recorder: Recorder) -> list[tuple[str, str]]:
    return [
        (name, " ".join(args.prompt)) for name, args in recorder.calls if name in ("tell", "chat")
    ]


def test_text_is_sent_in_the_current_mode(drive: Any, recorder: Recorder) -> None:
    assert drive("add a test\r\\chat\rwhy\r\\tell\rmore\r" + CTRL_D) == 0
    assert recorder.names()[0] == "current"  # the plan is shown first
    assert prompts(recorder) == [("tell", "add a test"), ("chat", "why"), ("tell", "more")]


def test_the_mode_and_plan_are_in_the_prompt(
    session: FakeSession, recorder: Recorder, history: InMemoryHistory
) -> None:
    repl = Repl(session, recorder.parser, history=history, output=DummyOutput())
    repl._refresh_plan_name()
    assert "".join(t for _, t in repl._message()) == "plan-1 tell> "
    repl.handle("\\chat")
    assert "".join(t for _, t in repl._message()) == "plan-1 chat> "
    repl.handle("\\multiline")
    assert "Alt-Enter sends" in "".join(t for _, t in repl._rprompt())


def test_alt_enter_adds_a_line_and_multiline_mode_swaps_the_keys(
    drive: Any, recorder: Recorder
) -> None:
    keys = "one" + ALT_ENTER + "two\r" + "\\multiline\r" + "a\rb" + ALT_ENTER + CTRL_D
    drive(keys)
    assert prompts(recorder) == [("tell", "one\ntwo"), ("tell", "a\nb")]


def test_ctrl_c_clears_the_line_and_ctrl_d_leaves(drive: Any, recorder: Recorder) -> None:
    assert drive("typo" + CTRL_C + "right\r" + CTRL_D) == 0
    assert prompts(recorder) == [("tell", "right")]


def test_prompts_after_tell_and_chat_are_sent_as_typed(drive: Any, recorder: Recorder) -> None:
    drive('\\tell fix "it"   please\r\\load "a b.py" -r\r' + CTRL_D)
    assert prompts(recorder) == [("tell", 'fix "it"   please')]
    (load,) = [args for name, args in recorder.calls if name == "load"]
    assert load.paths == ["a b.py"] and load.recursive


def test_at_paths_are_loaded_before_the_prompt(
    drive: Any, recorder: Recorder, session: FakeSession
) -> None:
    (session.cwd / "app.py").write_text("x = 1\n")
    (session.cwd / "src").mkdir()
    drive("explain @app.py and @src/, not @nothing\r" + CTRL_D)
    assert recorder.names()[1:] == ["load", "tell"]
    assert recorder.calls[1][1].paths == ["app.py", "src/"] and recorder.calls[1][1].recursive


def test_a_failed_load_keeps_the_prompt_back(
    drive: Any, recorder: Recorder, session: FakeSession, term: FakeTerminal
) -> None:
    (session.cwd / "secret.env").write_text("KEY=1\n")
    recorder.effects["load"] = lambda _: 1
    drive("use @secret.env\r" + CTRL_D)
    assert recorder.names()[1:] == ["load"]
    assert "the prompt was not sent" in term.stderr


def test_the_menu_shows_the_diff_then_applies(
    drive: Any, recorder: Recorder, server: Pending
) -> None:
    recorder.effects["tell"] = lambda _: server.paths.append("greet.py")  # type: ignore[func-returns-value]
    drive("add greet\r" + "d" + "a" + "\r" + CTRL_D)
    assert recorder.names() == ["current", "tell", "diff", "apply"]


def test_enter_leaves_the_changes_pending(
    drive: Any, recorder: Recorder, server: Pending, term: FakeTerminal
) -> None:
    recorder.effects["tell"] = lambda _: server.paths.append("a.py")  # type: ignore[func-returns-value]
    drive("go\r" + "\r" + "\\chat no menu after chat\r" + CTRL_D)
    assert recorder.names() == ["current", "tell", "chat"]
    assert "stay pending" in term.stderr


def test_the_menu_can_reject(drive: Any, recorder: Recorder, server: Pending) -> None:
    recorder.effects["continue"] = lambda _: server.paths.append("a.py")  # type: ignore[func-returns-value]
    drive("\\continue\r" + "r" + "\r" + CTRL_D)
    assert recorder.names() == ["current", "continue", "reject"]


def test_applying_more_files_than_the_threshold_asks_first(
    drive: Any, recorder: Recorder, server: Pending, session: FakeSession
) -> None:
    session.settings = Settings(environ={"PLANCAST_CONFIRM_APPLY_FILES": "1"})
    recorder.effects["tell"] = lambda _: server.paths.extend(["a.py", "b.py"])  # type: ignore[func-returns-value]
    drive("go\r" + "a" + "n" + "a" + "y" + "\r" + CTRL_D)  # no, then yes
    assert recorder.names() == ["current", "tell", "apply"]


def test_the_menu_reviews_by_hunk(drive: Any, recorder: Recorder, server: Pending) -> None:
    recorder.effects["tell"] = lambda _: server.paths.append("a.py")  # type: ignore[func-returns-value]
    drive("go\r" + "h" + CTRL_D)
    assert recorder.names() == ["current", "tell", "apply"]
    assert recorder.calls[-1][1].review


def test_the_review_asks_each_hunk_on_the_sessions_input(
    session: FakeSession, history: InMemoryHistory, term: FakeTerminal
) -> None:
    """The real ``apply --review`` behind the menu: one hunk taken, one skipped."""
    before = "".join(f"line {n}\n" for n in range(1, 21))
    after = before.replace("line 2\n", "TWO\n").replace("line 19\n", "NINETEEN\n")
    (session.cwd / "a.py").write_text(before)
    pending: list[dict[str, Any]] = []
    session.api.routes[("GET", "/plans/pl_1/changes")] = lambda _: {"changes": list(pending)}
    session.api.routes[("POST", "/plans/pl_1/changes/apply")] = lambda _: pending.clear()
    parser = argparse.ArgumentParser(prog="plancast")
    sub = parser.add_subparsers(dest="command")
    changes.register(sub)
    sub.add_parser("current").set_defaults(func=lambda *_: 0)
    tell = sub.add_parser("tell")
    tell.add_argument("prompt", nargs="*")
    op = {"op": "write", "path": "a.py", "content": after}
    tell.set_defaults(func=lambda *_: pending.append({"id": "c1", "path": "a.py", "op": op}) or 0)
    with create_pipe_input() as pipe:
        pipe.send_text("go\r" + "h" + "y" + "n" + CTRL_D)
        repl = Repl(session, parser, input=pipe, output=DummyOutput(), history=history)
        assert repl.run() == 0
    assert (session.cwd / "a.py").read_text() == before.replace("line 2\n", "TWO\n")
    assert ("POST", "/plans/pl_1/changes/apply", {"ids": ["c1"]}) in session.api.calls
    assert "+NINETEEN" in term.stdout and "1 of 2 hunks; 1 skipped" in term.stdout


def test_help_quit_and_unknown_commands(drive: Any, recorder: Recorder, term: FakeTerminal) -> None:
    assert drive("\\help\r\\help load\r\\help nosuch\r\\quit\r") == 0
    assert "in this session:" in term.stdout and "\\multiline" in term.stdout
    assert "usage: plancast load" in term.stdout
    assert "no command 'nosuch'" in term.stderr


def test_command_errors_are_shown_and_the_session_goes_on(
    drive: Any, recorder: Recorder, term: FakeTerminal
) -> None:
    def fail(_: argparse.Namespace) -> None:
        raise PlancastError("no such plan", code=ErrorCode.NOT_FOUND)

    recorder.effects["cd"] = fail
    drive('\\cd nope\r\\load "open\r\\tell\rstill here\r' + CTRL_D)
    assert "error: no such plan" in term.stderr
    assert "cannot read that command" in term.stderr
    assert prompts(recorder) == [("tell", "still here")]


def test_cd_rereads_the_binding_and_the_plan_name(
    drive: Any, recorder: Recorder, session: FakeSession
) -> None:
    def switch(_: argparse.Namespace) -> None:
        session.api.routes[("GET", "/plans/pl_1")] = {"name": "other"}

    recorder.effects["cd"] = switch
    drive("\\cd other\r" + CTRL_D)
    assert session.forgotten == 1


def test_lines_go_to_the_history(drive: Any, history: InMemoryHistory) -> None:
    drive("first\r\\plans\r" + CTRL_D)
    assert list(history.get_strings()) == ["first", "\\plans"]


# -- Ctrl-C while a stream runs -----------------------------------------------------------


@pytest.fixture
def make_repl(session: FakeSession, recorder: Recorder) -> Iterator[Any]:
    with create_pipe_input() as pipe:

        def make(keys: str = "") -> Repl:
            pipe.send_text(keys)
            return Repl(
                session,
                recorder.parser,
                input=pipe,
                output=DummyOutput(),
                history=InMemoryHistory(),
            )

        yield make


@pytest.mark.parametrize(("keys", "action"), [("s", "stop"), (CTRL_C, "stop"), ("\r", "watch")])
def test_the_interrupt_question(make_repl: Any, keys: str, action: str) -> None:
    assert make_repl(keys).ask_interrupt() == action


@pytest.mark.skipif(not hasattr(streams, "Detached"), reason="this client cannot detach")
def test_detach_is_offered_when_the_client_can(make_repl: Any) -> None:
    assert make_repl("d").ask_interrupt() == "detach"


def test_stop_is_sent_without_interrupting_the_watch(
    make_repl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    repl = make_repl()
    stopped: list[bool] = []
    monkeypatch.setattr(repl, "ask_interrupt", lambda: "stop")
    monkeypatch.setattr(repl, "stop_stream", lambda: stopped.append(True) or True)
    repl._on_interrupt(signal.SIGINT, None)  # returns: watch() goes on to the `stopped` end
    assert stopped == [True]
    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C while stopping gives up
        repl._on_interrupt(signal.SIGINT, None)


def test_stop_before_the_stream_exists_interrupts(
    make_repl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    repl = make_repl()
    monkeypatch.setattr(repl, "ask_interrupt", lambda: "stop")
    monkeypatch.setattr(repl, "stop_stream", lambda: False)
    with pytest.raises(KeyboardInterrupt):
        repl._on_interrupt(signal.SIGINT, None)


def test_keep_watching_and_detach(make_repl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    repl = make_repl()
    monkeypatch.setattr(repl, "ask_interrupt", lambda: "watch")
    assert repl._on_interrupt(signal.SIGINT, None) is None
    if hasattr(streams, "Detached"):
        monkeypatch.setattr(repl, "ask_interrupt", lambda: "detach")
        with pytest.raises(streams.Detached):
            repl._on_interrupt(signal.SIGINT, None)


def test_stop_stream_stops_the_plans_running_stream(
    session: FakeSession, make_repl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plancast.client.api import stream

    sent: list[str] = []

    class Connection:
        def __init__(self, config: object) -> None:
            pass

        def __enter__(self) -> Connection:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def stop(self, stream_id: str) -> None:
            sent.append(stream_id)

    monkeypatch.setattr(stream, "StreamConnection", Connection)
    streams_route = ("GET", "/plans/pl_1/streams")
    session.api.routes[streams_route] = {"streams": [{"id": "st_old", "status": "finished"}]}
    repl = make_repl()
    assert repl.stop_stream() is False
    session.api.routes[streams_route] = {
        "streams": [{"id": "st_old", "status": "finished"}, {"id": "st_1", "status": "running"}]
    }
    assert repl.stop_stream() is True
    assert sent == ["st_1"]


def test_stream_commands_run_under_the_interrupt_handler(drive: Any, recorder: Recorder) -> None:
    before = signal.getsignal(signal.SIGINT)
    during: list[object] = []
    recorder.effects["chat"] = lambda _: during.append(signal.getsignal(signal.SIGINT))  # type: ignore[func-returns-value]
    recorder.effects["plans"] = lambda _: during.append(signal.getsignal(signal.SIGINT))  # type: ignore[func-returns-value]
    drive("\\chat hi\r\\plans\r" + CTRL_D)
    assert getattr(during[0], "__func__", None) is Repl._on_interrupt
    assert during[1] is before  # other commands: Ctrl-C interrupts them as usual
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.skipif(not hasattr(streams, "Detached"), reason="this client cannot detach")
def test_a_detach_before_the_watch_began_leaves_the_session_running(
    drive: Any, recorder: Recorder, term: FakeTerminal
) -> None:
    def detach(_: argparse.Namespace) -> None:
        raise streams.Detached

    recorder.effects["tell"] = detach
    assert drive("go\r" + "\\chat still here\r" + CTRL_D) == 0
    assert "detached; the stream runs on" in term.stderr
    assert prompts(recorder) == [("tell", "go"), ("chat", "still here")]


def test_a_stop_that_cannot_be_sent_is_reported_and_the_watch_goes_on(
    make_repl: Any, monkeypatch: pytest.MonkeyPatch, term: FakeTerminal
) -> None:
    repl = make_repl()

    def unreachable() -> bool:
        raise PlancastError("cannot reach the plancast server")

    monkeypatch.setattr(repl, "ask_interrupt", lambda: "stop")
    monkeypatch.setattr(repl, "stop_stream", unreachable)
    assert repl._on_interrupt(signal.SIGINT, None) is None
    assert "could not stop the stream: cannot reach" in term.stderr


def test_tab_right_after_typing_inserts_the_match(
    drive: Any, recorder: Recorder, session: FakeSession
) -> None:
    # Keys arrive in one burst, before the background completer can answer: the Tab binding
    # must ask the completer itself rather than only open the menu.
    (session.binding.root / "app.py").write_text("print('hi')\n")
    assert drive("\\load ap\t\r" + CTRL_D) == 0
    loads = [args.paths for name, args in recorder.calls if name == "load"]
    assert loads == [["app.py"]]
