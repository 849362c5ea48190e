"""Fakes for driving the terminal UI in-process: a session without a server, and a terminal.

``FakeTerminal`` gives two streams (stdout, stderr) that write into one ordered log, as two
file descriptors on the same pty do, and says whether each is a TTY; tests then check what a
user would have seen, and in what order.
"""

from __future__ import annotations

import argparse
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plancast.client.config import ClientConfig, Settings
from plancast.client.project import ProjectBinding
from plancast.client.ui.output import Output

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def plain(text: str) -> str:
    return ANSI.sub("", text)


class Stream(io.StringIO):
    def __init__(self, log: list[tuple[str, str]], name: str, tty: bool) -> None:
        super().__init__()
        self._log, self._name, self._tty = log, name, tty

    def write(self, text: str) -> int:
        self._log.append((self._name, text))
        return super().write(text)

    def isatty(self) -> bool:
        return self._tty


class FakeTerminal:
    """stdout and stderr, each a TTY or not, writing into one log in order."""

    def __init__(self, *, out_tty: bool = True, err_tty: bool = True) -> None:
        self.log: list[tuple[str, str]] = []
        self.out = Stream(self.log, "out", out_tty)
        self.err = Stream(self.log, "err", err_tty)

    def output(self, *, color: bool = False) -> Output:
        return Output(self.out, self.err, color=color)

    @property
    def stdout(self) -> str:
        return self.out.getvalue()

    @property
    def stderr(self) -> str:
        return self.err.getvalue()


class FakeApi:
    """Answers REST calls from ``routes`` (a value, or a callable of the body)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[str, str, Any]] = []

    def _answer(self, method: str, path: str, body: Any) -> Any:
        self.calls.append((method, path, body))
        answer = self.routes[(method, path)]
        return answer(body) if callable(answer) else answer

    def get(self, path: str, **params: Any) -> Any:
        return self._answer("GET", path, params or None)

    def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        return self._answer("POST", path, body)

    def close(self) -> None:
        pass


class FakeSession:
    """What commands and the REPL use of a ``Session``, with no server behind it."""

    def __init__(self, root: Path, output: Output, settings: Settings | None = None) -> None:
        self.output = output
        self.cwd = root
        self.api = FakeApi()
        self.settings = settings or Settings(environ={}, file_values={})
        self.binding = ProjectBinding(root, "prj_1", "pl_1")
        self.config = ClientConfig("http://127.0.0.1:9", None)
        self.forgotten = 0

    @property
    def plan_id(self) -> str:
        assert self.binding.plan_id is not None
        return self.binding.plan_id

    def forget_binding(self) -> None:
        self.forgotten += 1

    def close(self) -> None:
        pass


@pytest.fixture
def term() -> FakeTerminal:
    return FakeTerminal()


@pytest.fixture
def session(tmp_path: Path, term: FakeTerminal) -> FakeSession:
    root = tmp_path / "project"
    root.mkdir()
    fake = FakeSession(root, term.output())
    fake.binding.save()
    return fake


@dataclass
class Recorder:
    """A parser whose commands record their calls instead of talking to a server."""

    parser: argparse.ArgumentParser
    calls: list[tuple[str, argparse.Namespace]] = field(default_factory=list)
    effects: dict[str, Callable[[argparse.Namespace], int | None]] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    parser = argparse.ArgumentParser(prog="plancast")
    sub = parser.add_subparsers(dest="command")
    rec = Recorder(parser)

    def command(name: str, *arguments: tuple[tuple[str, ...], dict[str, Any]]) -> None:
        p = sub.add_parser(name, help=f"the {name} command")
        for flags, kwargs in arguments:
            p.add_argument(*flags, **kwargs)

        def run(session: Any, args: argparse.Namespace) -> int:
            rec.calls.append((name, args))
            effect = rec.effects.get(name)
            result = effect(args) if effect else None
            return 0 if result is None else result

        p.set_defaults(func=run)

    many = {"nargs": "*"}
    command("new")
    command("current")
    command("load", (("paths",), many), (("-r", "--recursive"), {"action": "store_true"}))
    for mode in ("tell", "chat"):
        command(mode, (("prompt",), many), (("-m", "--model"), {}))
    command("continue")
    command("diff", (("paths",), many))
    command("apply", (("--review",), {"action": "store_true"}))
    command("reject", (("paths",), many))
    command("cd", (("plan",), {}))
    command("plans", (("--json",), {"action": "store_true"}))
    command("completion", (("shell",), {"choices": ["bash", "zsh", "fish"]}))
    yield rec
