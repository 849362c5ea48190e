"""One-key questions: the menu after a reply, and "stop or detach?" when Ctrl-C hits a stream.

A question is a one-line prompt-toolkit application on the session's own input and output, so
that it reads keys in raw mode (no Enter needed; Ctrl-C is a key here, not a signal) and tests
drive it through a pipe like the prompt itself. It is safe to run from a SIGINT handler: it
leaves signal handling alone (``handle_sigint=False``) and runs its own event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prompt_toolkit.application import Application
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.output import Output as PtOutput
from prompt_toolkit.utils import is_dumb_terminal

CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Choice:
    """One answer: the key that picks it, its label, and the action name returned."""

    key: str
    label: str
    action: str


def question_text(question: str, choices: list[Choice], default: str | None) -> StyleAndTextTuples:
    """``question  [d] diff  [a] apply  [Enter] continue`` as styled text."""
    out: StyleAndTextTuples = [("class:question", question)]
    for choice in choices:
        out += [("", "  "), ("class:key", f"[{choice.key}]"), ("", f" {choice.label}")]
    if default is not None:
        label = next((c.label for c in choices if c.action == default), default)
        out += [("", "  "), ("class:key", "[Enter]"), ("", f" {label}")]
    return out


def ask(
    question: str,
    choices: list[Choice],
    *,
    default: str | None = None,
    cancel: str = CANCEL,
    input: Input | None = None,
    output: PtOutput | None = None,
    extra_keys: Mapping[str, str] | None = None,
) -> str:
    """Show ``question`` and return the action of the key pressed.

    Enter picks ``default`` (when given); Escape, Ctrl-C and Ctrl-D give ``cancel``.
    ``extra_keys`` maps more keys (prompt-toolkit names, like ``"c-c"``) to actions, overriding
    those defaults. Other keys are ignored.
    """
    if input is None and output is None and is_dumb_terminal():
        return _ask_line(question, choices, default=default, cancel=cancel)
    bindings = KeyBindings()

    def answer(key: str, action: str) -> None:
        @bindings.add(key, eager=True)
        def _(event: KeyPressEvent) -> None:
            event.app.exit(result=action)

    keys: dict[str, str] = {"escape": cancel, "c-c": cancel, "c-d": cancel}
    if default is not None:
        keys["enter"] = default
    for choice in choices:
        keys[choice.key] = choice.action
        if choice.key.isalpha():
            keys[choice.key.upper()] = choice.action
    keys.update(extra_keys or {})
    for key, action in keys.items():
        answer(key, action)

    app: Application[str] = Application(
        layout=Layout(
            Window(FormattedTextControl(question_text(question, choices, default)), height=1)
        ),
        key_bindings=bindings,
        full_screen=False,
        erase_when_done=True,
        input=input,
        output=output,
    )
    return app.run(handle_sigint=False)


def _ask_line(question: str, choices: list[Choice], *, default: str | None, cancel: str) -> str:
    """The same question as a line of input, for a terminal that cannot be redrawn."""
    from prompt_toolkit import prompt

    text = "".join(t for _, t in question_text(question, choices, default)) + " "
    keys = {c.key.lower(): c.action for c in choices}
    while True:
        try:
            answer = prompt(text).strip().lower()
        except (EOFError, KeyboardInterrupt):
            return cancel
        if not answer and default is not None:
            return default
        if answer[:1] in keys:
            return keys[answer[:1]]
