"""Completion in the session: what is offered where the cursor is, and where paths come from."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from plancast.client.cli import build_parser
from plancast.client.ui.cli_spec import read_parser
from plancast.client.ui.completion import Cached, ReplCompleter, project_paths
from plancast.client.ui.repl import SESSION_COMMANDS

PATHS = ["src/", "src/greet.py", "src/app.py", "README.md"]
PLANS = ["plan-1", "refactor-auth"]


@pytest.fixture
def completer() -> ReplCompleter:
    return ReplCompleter(
        read_parser(build_parser()), SESSION_COMMANDS, lambda: PATHS, lambda: PLANS
    )


def offered(completer: ReplCompleter, text: str) -> list[str]:
    document = Document(text, len(text))
    found = list(completer.get_completions(document, CompleteEvent(completion_requested=True)))
    for completion in found:  # each replaces exactly the word being typed
        assert -completion.start_position <= len(text)
    return [text[: len(text) + c.start_position] + c.text for c in found]


def test_commands_include_the_cli_and_the_sessions_own(completer: ReplCompleter) -> None:
    assert offered(completer, "\\loa")[0] == "\\load"  # "lo" would offer "log" first
    assert "\\multiline" in offered(completer, "\\mul")
    assert "\\config" in offered(completer, "\\")
    assert offered(completer, "\\cmpl")[0] == "\\completion"  # fuzzy


def test_options_of_the_command_being_typed(completer: ReplCompleter) -> None:
    assert offered(completer, "\\load --rec")[0] == "\\load --recursive"
    assert "\\plans --json" in offered(completer, "\\plans -")


def test_arguments_by_kind(completer: ReplCompleter) -> None:
    assert offered(completer, "\\cd ref") == ["\\cd refactor-auth"]
    assert offered(completer, "\\load -r gre") == ["\\load -r src/greet.py"]
    assert offered(completer, "\\completion f") == ["\\completion fish"]
    assert "\\config confirm_tokens" in offered(completer, "\\config conf")
    assert offered(completer, "\\config markdown ") == []  # the value: free text


def test_at_paths_in_prompts(completer: ReplCompleter) -> None:
    assert offered(completer, "fix @gre")[0] == "fix @src/greet.py"
    assert offered(completer, "\\chat what is in @rea") == ["\\chat what is in @README.md"]
    assert offered(completer, "just words") == []
    assert offered(completer, "mail me@gre") == []  # not a mention: not after a space


def test_project_paths_follow_git_ignore_rules_and_the_current_folder(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("build/\n*.log\n")
    for name in ("src/app.py", "src/lib/util.py", "build/out.js", "debug.log", "README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    paths = project_paths(tmp_path, tmp_path)
    assert "src/app.py" in paths and "src/lib/" in paths and "src/" in paths
    assert not any(p.startswith("build") or p.endswith(".log") for p in paths)
    inside = project_paths(tmp_path, tmp_path / "src")
    assert inside[: inside.index("app.py") + 1] == ["lib/", "app.py"]  # the folder's own first
    assert "lib/util.py" in inside and "../README.md" in inside


def test_cached_values_expire_and_failures_offer_nothing() -> None:
    now = [0.0]
    calls: list[int] = []

    def fetch() -> list[str]:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("gone")
        return [str(len(calls))]

    cache = Cached(fetch, ttl=10, clock=lambda: now[0])
    assert cache.get() == ["1"] and cache.get() == ["1"]
    now[0] = 11
    assert cache.get() == ["2"]
    cache.invalidate()
    assert cache.get() == []  # the failed fetch
    assert cache.get() == ["4"]  # and it is tried again
