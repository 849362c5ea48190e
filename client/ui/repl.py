"""The interactive session: type a prompt to tell (or chat), or a ``\\command`` to run one.

What a line does:

- plain text is a prompt for the current mode (``tell`` or ``chat``, shown in the prompt);
  ``@path`` in it loads that file or folder first, through the ``load`` command;
- ``\\command …`` runs any CLI command (``\\load -r src``, ``\\diff``, ``\\plans --json`` …);
- the session's own commands: ``\\tell`` and ``\\chat`` switch mode, ``\\multiline`` toggles
  multi-line input, ``\\help [COMMAND]``, ``\\quit``.

Keys: Tab completes (commands, options, plan names, project paths; fuzzy); Alt-Enter adds a
line (or sends, in multi-line mode); Ctrl-C clears the line, or, while a stream runs, asks
whether to stop it (or detach, when the client can); Ctrl-D leaves.

After a ``tell`` or ``continue`` that left pending changes, a one-key menu offers diff, apply,
reject and review by hunk (``apply --review``: y/n/a/d/q for each hunk, as ``git add -p``).
Every question is asked on the session's own input and output, which are injectable
(prompt-toolkit's pipe input and ``DummyOutput``) so that tests drive the whole loop without a
terminal.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import threading
from collections.abc import Callable
from contextlib import nullcontext
from types import FrameType
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, ThreadedCompleter
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output import Output as PtOutput
from prompt_toolkit.styles import Style

from plancast.client.session import Session
from plancast.client.ui.cli_spec import read_parser
from plancast.client.ui.completion import (
    PATHS_TTL_S,
    PLANS_TTL_S,
    Cached,
    ReplCompleter,
    project_paths,
)
from plancast.client.ui.keys import Choice, ask
from plancast.client.ui.mentions import find_mentions, load_arguments
from plancast.shared import PlancastError

BANNER = (
    "plancast — type what you want changed and press Enter.\n"
    "  @path loads a file first · \\chat / \\tell switch mode · \\diff · \\apply · \\reject\n"
    "  Tab completes · Alt-Enter adds a line · \\help lists everything · Ctrl-D quits"
)

SESSION_COMMANDS = {
    "tell": "switch to tell mode (\\tell PROMPT sends one prompt)",
    "chat": "switch to chat mode (\\chat PROMPT sends one question)",
    "multiline": "toggle multi-line input: Enter adds a line, Alt-Enter sends",
    "help": "list the commands and keys (\\help COMMAND for one command)",
    "quit": "leave the session (Ctrl-D does too)",
}
QUIT_WORDS = frozenset({"quit", "exit", "q"})
STREAM_COMMANDS = frozenset({"tell", "chat", "continue", "connect"})
CHANGE_COMMANDS = frozenset({"tell", "continue"})  # the menu follows these
KEYS_HELP = (
    "keys: Tab completes · Alt-Enter adds a line (sends, in multi-line mode) · "
    "Ctrl-C clears the line or interrupts a stream · Ctrl-D quits"
)

STYLE = Style.from_dict(
    {
        "plan": "#888888",
        "mode.tell": "ansigreen bold",
        "mode.chat": "ansicyan bold",
        "rprompt": "#888888",
        "completion-menu.match": "bold underline",
        "question": "bold",
        "key": "ansiyellow bold",
    }
)


def _command(
    session: Session,
    parser: argparse.ArgumentParser,
    *words: str,
    ask_key: Callable[..., str] | None = None,
) -> int:
    args = parser.parse_args(list(words))
    if ask_key is not None and "ask_key" in vars(args):  # a command that asks (apply --review)
        args.ask_key = ask_key
    return int(args.func(session, args))


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser | None = action.choices.get(name)
            return found
    return None


class Repl:
    """One interactive session over a ``Session``; ``run()`` returns the exit code."""

    def __init__(
        self,
        session: Session,
        parser: argparse.ArgumentParser,
        *,
        input: Input | None = None,
        output: PtOutput | None = None,
        history: History | None = None,
        completer: Completer | None = None,
    ) -> None:
        self.session = session
        self.parser = parser
        self.input = input
        self.pt_output = output
        self.mode = "tell"
        self.multiline = False
        self.plan_name = ""
        self._history = history
        self._completer = completer
        self._stopping = False
        self._detached = False
        self.paths = Cached(self._project_paths, PATHS_TTL_S)
        self.plans = Cached(self._plan_names, PLANS_TTL_S)
        self.prompt: PromptSession[str] | None = None

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        self._ensure_plan()  # a missing server is reported here, before any prompt
        self.prompt = self._prompt_session()
        self.paths.warm()
        self._warm_renderer()
        self.session.output.line(BANNER, "dim")
        while True:
            try:
                text = self.prompt.prompt(self._message, rprompt=self._rprompt)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return 0
            if not self.handle(text):
                return 0

    def handle(self, text: str) -> bool:
        """Act on one submitted line; ``False`` means the session should end."""
        line = text.strip()
        if not line:
            return True
        if line.startswith("\\"):
            name, _, rest = line[1:].partition(" ")
            if name in ("tell", "chat") and rest.strip() and not rest.lstrip().startswith("-"):
                self.send_prompt(name, rest.strip())  # as typed: quotes and new lines kept
                return True
            try:
                words = shlex.split(line[1:])
            except ValueError as exc:  # unbalanced quotes
                self.session.output.error(f"cannot read that command: {exc}")
                return True
            if not words:
                return True
            return self._session_command(words)
        self.send_prompt(self.mode, line)
        return True

    def send_prompt(self, mode: str, text: str) -> None:
        """Load the ``@path`` mentions of ``text`` (stop if that fails), then send it."""
        mentions = find_mentions(text, self.session.cwd)
        if mentions and self.run_words(["load", *load_arguments(mentions)]) != 0:
            self.session.output.note("the prompt was not sent")
            return
        self.run_words([mode, text])

    def _session_command(self, words: list[str]) -> bool:
        name = words[0]
        if name in ("chat", "tell") and len(words) == 1:
            self.mode = name
            return True
        if name in QUIT_WORDS and len(words) == 1:
            return False
        if name == "multiline" and len(words) == 1:
            self.multiline = not self.multiline
            state = "on: Enter adds a line, Alt-Enter sends" if self.multiline else "off"
            self.session.output.note(f"multi-line input {state}")
            return True
        if name in ("help", "h"):
            self._help(words[1:])
            return True
        self.run_words(words)
        return True

    def run_words(self, words: list[str]) -> int | None:
        """Run one CLI command line; errors are shown, never raised. ``None``: it failed."""
        out = self.session.output
        code: int | None = None
        try:
            if words[0] in STREAM_COMMANDS:
                code = self._run_stream(words)
            else:
                code = _command(self.session, self.parser, *words, ask_key=self.ask_key)
        except SystemExit:  # argparse printed the usage error (or the help)
            pass
        except PlancastError as exc:
            out.error(exc.message)
        except KeyboardInterrupt:
            out.note("interrupted")
        finally:
            out.close_live()
        if words[0] in ("new", "cd"):
            self.session.forget_binding()
            self.plans.invalidate()
            self._refresh_plan_name()
        elif words[0] in ("apply", "reject", "load"):
            self.paths.invalidate()
        return code

    # -- streams: Ctrl-C and the menu --------------------------------------------------------

    def _run_stream(self, words: list[str]) -> int:
        from plancast.client.commands import streams

        detached: type[BaseException] = getattr(streams, "Detached", _Never)
        self._stopping = self._detached = False
        in_main = threading.current_thread() is threading.main_thread()  # signals need it
        previous = signal.signal(signal.SIGINT, self._on_interrupt) if in_main else None
        try:
            code = _command(self.session, self.parser, *words)
        except detached:  # detached before watch() began (still starting): it runs on
            self.session.output.note("detached; the stream runs on · \\connect to watch it")
            return 0
        finally:
            if in_main:  # (None: a handler set outside Python; Python's own is the default)
                signal.signal(signal.SIGINT, previous or signal.default_int_handler)
        self.session.output.close_live()
        if words[0] in CHANGE_COMMANDS and not self._detached:
            self.offer_menu()
        return code

    def _on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        """Ctrl-C during a stream: ask, then stop it, detach from it, or keep watching.

        This runs as the SIGINT handler on the main thread, which is waiting for the stream's
        next event inside ``streams.watch``. None of the answers raise ``KeyboardInterrupt``
        into ``watch`` (it would ask its own question again): stop is sent on a connection of
        its own, and ``watch`` goes on to show the stream's ``stopped`` end; detach raises the
        ``Detached`` that ``watch`` handles by leaving the stream running; keep watching just
        returns.
        """
        if self._stopping:  # already stopping: a second Ctrl-C means "stop waiting"
            raise KeyboardInterrupt
        action = self.ask_interrupt()
        if action == "stop":
            self._stopping = True
            try:
                stopped = self.stop_stream()
            except PlancastError as exc:  # say so, and keep watching: Ctrl-C again gives up
                self.session.output.error(f"could not stop the stream: {exc.message}")
                return
            if not stopped:
                raise KeyboardInterrupt  # nothing to stop yet (still starting): give up on it
        elif action == "detach":
            from plancast.client.commands import streams

            self._detached = True
            raise streams.Detached  # type: ignore[attr-defined]  # offered only when it exists

    def ask_interrupt(self) -> str:
        """``stop``, ``detach`` (when this client can detach) or ``watch``."""
        from plancast.client.commands import streams

        choices = [Choice("s", "stop (keeps the partial reply)", "stop")]
        if hasattr(streams, "Detached"):
            choices.append(Choice("d", "detach (it runs on; \\connect to watch)", "detach"))
        live = self.session.output.live
        with live.suspended() if live is not None else nullcontext():
            self.session.output.err.write("\n")
            return ask(
                "interrupt the stream?",
                choices,
                default="watch",
                cancel="watch",
                extra_keys={"c-c": "stop"},  # Ctrl-C twice stops
                input=self.input,
                output=self.pt_output,
            )

    def stop_stream(self) -> bool:
        """Send ``stop`` for the current plan's running stream; ``False`` if there is none.

        One stream runs per plan branch (the server enforces it), so the running stream of the
        current plan is the one being watched.
        """
        from plancast.client.api.stream import StreamConnection

        found = self.session.api.get(f"/plans/{self.session.plan_id}/streams")["streams"]
        running = [s["id"] for s in found if s["status"] == "running"]
        if not running:
            return False
        with StreamConnection(self.session.config) as conn:
            conn.stop(running[-1])
        self.session.output.note("stopping… (the partial reply is kept)")
        return True

    def ask_key(self, question: str, choices: list[Choice], **kwargs: Any) -> str:
        """A one-key question on the session's input and output (for commands that ask)."""
        return ask(question, choices, input=self.input, output=self.pt_output, **kwargs)

    def offer_menu(self) -> None:
        """After a reply with pending changes: diff, apply, reject, review, or the prompt."""
        while True:
            paths = self._pending_paths()
            if not paths:
                return
            action = ask(
                f"{len(paths)} file{'' if len(paths) == 1 else 's'} pending:",  # fits in 80 columns
                [
                    Choice("d", "diff", "diff"),
                    Choice("a", "apply", "apply"),
                    Choice("r", "reject", "reject"),
                    Choice("h", "review hunks", "review"),
                ],
                default="keep",
                input=self.input,
                output=self.pt_output,
            )
            if action == "diff":
                _command(self.session, self.parser, "diff")
                continue
            if action == "apply":
                if self._confirm_apply(len(paths)):
                    _command(self.session, self.parser, "apply")
                    self.paths.invalidate()
                    return
                continue
            if action == "reject":
                _command(self.session, self.parser, "reject")
                return
            if action == "review":
                _command(self.session, self.parser, "apply", "--review", ask_key=self.ask_key)
                self.paths.invalidate()
                return
            self.session.output.note(
                "the changes stay pending (\\diff, \\apply, \\apply --review, \\reject)"
            )
            return

    def _confirm_apply(self, files: int) -> bool:
        threshold = int(self.session.settings["confirm_apply_files"])
        if files <= threshold:
            return True
        answer = ask(
            f"apply changes to {files} files?",
            [Choice("y", "yes", "yes"), Choice("n", "no", "no")],
            default="no",
            cancel="no",
            input=self.input,
            output=self.pt_output,
        )
        return answer == "yes"

    def _pending_paths(self) -> list[str]:
        changes = self.session.api.get(f"/plans/{self.session.plan_id}/changes")["changes"]
        return sorted({c["path"] for c in changes})

    # -- the prompt --------------------------------------------------------------------------

    def _prompt_session(self) -> PromptSession[str]:
        bindings = KeyBindings()

        @bindings.add("escape", "enter", eager=True)  # Alt-Enter (Esc, Enter in some terminals)
        def _(event: KeyPressEvent) -> None:
            if self.multiline:
                event.current_buffer.validate_and_handle()
            else:
                event.current_buffer.insert_text("\n")

        @bindings.add("tab")
        def _(event: KeyPressEvent) -> None:
            # A fuzzy match rewrites what was typed, so there is rarely a common prefix to
            # insert (prompt-toolkit's default): insert the best match; Tab again cycles.
            buffer = event.current_buffer
            state = buffer.complete_state
            if state is not None and state.completions:
                buffer.complete_next()
                return
            # Typed faster than the background completer answers: ask it now, so that a
            # Tab right after typing inserts the match instead of only opening the menu.
            found = next(
                iter(
                    completer.get_completions(
                        buffer.document, CompleteEvent(completion_requested=True)
                    )
                ),
                None,
            )
            if found is not None:
                buffer.apply_completion(found)

        completer = self._completer or ThreadedCompleter(
            ReplCompleter(
                read_parser(self.parser), SESSION_COMMANDS, self.paths.get, self.plans.get
            )
        )
        return PromptSession(
            history=self._history or self._project_history(),
            completer=completer,
            complete_while_typing=True,
            key_bindings=bindings,
            multiline=Condition(lambda: self.multiline),
            prompt_continuation=lambda width, line_number, wrap_count: "." * (width - 1) + " ",
            style=STYLE,
            enable_suspend=True,
            input=self.input,
            output=self.pt_output,
        )

    def _message(self) -> StyleAndTextTuples:
        plan = [("class:plan", f"{self.plan_name} ")] if self.plan_name else []
        return [*plan, (f"class:mode.{self.mode}", self.mode), ("", "> ")]

    def _rprompt(self) -> StyleAndTextTuples:
        if not self.multiline:
            return []
        return [("class:rprompt", "multi-line · Alt-Enter sends")]

    def _help(self, words: list[str]) -> None:
        out = self.session.output
        if words and words[0] not in SESSION_COMMANDS:
            sub = _subparser(self.parser, words[0])
            if sub is None:
                out.error(f"no command {words[0]!r}; \\help lists them")
            else:
                sub.print_help(out.out)
            return
        self.parser.print_help(out.out)
        out.line()
        out.line("in this session:", "bold")
        for name, text in SESSION_COMMANDS.items():
            out.line(f"  \\{name:<10} {text}")
        out.line("  @path      in a prompt: load that file or folder first")
        out.line(KEYS_HELP, "dim")

    # -- the project -------------------------------------------------------------------------

    def _ensure_plan(self) -> None:
        """Bind the directory and start a plan when there is none, then show the current plan."""
        from plancast.client.project import find_root

        if find_root(self.session.cwd) is None or self.session.binding.plan_id is None:
            _command(self.session, self.parser, "new")
            self.session.forget_binding()  # re-read the binding `new` just wrote
        _command(self.session, self.parser, "current")
        self._refresh_plan_name()

    def _refresh_plan_name(self) -> None:
        try:
            self.plan_name = str(self.session.api.get(f"/plans/{self.session.plan_id}")["name"])
        except PlancastError:
            self.plan_name = ""

    def _project_history(self) -> History:
        from plancast.client.ui.history import project_history

        try:
            return project_history(self.session.binding.project_id)
        except (OSError, ValueError) as exc:
            self.session.output.note(f"history is not kept this time: {exc}")
            return InMemoryHistory()

    def _project_paths(self) -> list[str]:
        return project_paths(self.session.binding.root, self.session.cwd)

    def _plan_names(self) -> list[str]:
        from plancast.client.api.rest import RestClient

        # Its own short-lived client: completion runs in a worker thread, and the session's
        # client belongs to the main thread.
        with RestClient(self.session.config, timeout=3.0) as api:
            found = api.get(f"/projects/{self.session.binding.project_id}/plans")["plans"]
        return [str(plan["name"]) for plan in found]

    def _warm_renderer(self) -> None:
        """Import the markdown renderer in the background while the user types (~100 ms)."""
        out = self.session.output
        if out.color and out.out_is_tty:
            threading.Thread(target=_import_rich, name="plancast-warm", daemon=True).start()


class _Never(Exception):
    """Stands in for ``streams.Detached`` in a client that cannot detach."""


def _import_rich() -> None:
    import rich.markdown  # noqa: F401


def run_repl(session: Session, parser: argparse.ArgumentParser, **kwargs: Any) -> int:
    return Repl(session, parser, **kwargs).run()
