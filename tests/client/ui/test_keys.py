"""One-key questions, read from prompt-toolkit's input like the prompt itself."""

from __future__ import annotations

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from plancast.client.ui.keys import Choice, ask, question_text

CHOICES = [Choice("d", "diff", "diff"), Choice("a", "apply", "apply")]


def answer(keys: str, **kwargs: object) -> str:
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        return ask("pending:", CHOICES, input=pipe, output=DummyOutput(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("keys", "action"),
    [("d", "diff"), ("A", "apply"), ("xyz\x01a", "apply"), ("\r", "keep"), ("\x03", "cancel")],
)
def test_the_first_key_that_means_something_answers(keys: str, action: str) -> None:
    assert answer(keys, default="keep") == action


def test_enter_does_nothing_without_a_default_and_keys_can_be_remapped() -> None:
    assert answer("\rd") == "diff"
    assert answer("\x03", extra_keys={"c-c": "stop"}) == "stop"


def test_the_question_lists_the_keys() -> None:
    text = "".join(t for _, t in question_text("pending:", CHOICES, "keep"))
    assert text == "pending:  [d] diff  [a] apply  [Enter] keep"


def test_a_dumb_terminal_gets_a_line_question(monkeypatch: pytest.MonkeyPatch) -> None:
    import prompt_toolkit

    answers = iter(["what?", "A", "", "x"])
    asked: list[str] = []

    def line(text: str) -> str:
        asked.append(text)
        return next(answers)

    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setattr(prompt_toolkit, "prompt", line)
    assert ask("pending:", CHOICES, default="keep") == "apply"  # "what?" was not an answer
    assert asked[0] == "pending:  [d] diff  [a] apply  [Enter] keep "
    assert ask("pending:", CHOICES, default="keep") == "keep"


def test_a_dumb_terminal_question_can_be_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    import prompt_toolkit

    def interrupted(text: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setattr(prompt_toolkit, "prompt", interrupted)
    assert ask("stop?", CHOICES, cancel="watch") == "watch"
