"""Completion in the interactive session: commands, options, plan names and project paths.

What is completed depends on where the cursor is:

- ``\\co|``: a command (every CLI command, and the session's own ``\\multiline`` …);
- ``\\load -|``: an option of that command, with its help;
- ``\\load src/a|``, ``\\rm``, ``\\diff``, ``\\reject``: a project path; ``\\cd p|``: a plan name;
  an argument with fixed choices: those;
- ``… @src/a|`` in a prompt (typed as is, or after ``\\tell`` or ``\\chat``): a project
  path, to be loaded before the prompt is sent.

Matching is fuzzy (``ui.fuzzy``). Project paths come from the context scanner, so they follow
git's ignore rules exactly as ``load`` does, and are cached for a few seconds; plan names are
asked of the server and cached too. A source that fails (no server, a vanished directory)
offers nothing rather than breaking the prompt.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples

from plancast.client.ui.cli_spec import CliSpec, Command
from plancast.client.ui.fuzzy import Match, fuzzy_filter

PATHS_TTL_S = 10.0
PLANS_TTL_S = 15.0
MAX_SHOWN = 50


class Cached:
    """A value computed by ``fetch`` and kept for ``ttl`` seconds; thread-safe.

    A failed fetch gives an empty list (and is retried on the next use), because completion must
    never raise into the prompt.
    """

    def __init__(
        self,
        fetch: Callable[[], list[str]],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value: list[str] | None = None
        self._at = 0.0

    def get(self) -> list[str]:
        with self._lock:
            if self._value is not None and self._clock() - self._at < self._ttl:
                return self._value
            try:
                value = self._fetch()
            except Exception:  # any failure means "nothing to offer now"
                return []
            self._value, self._at = value, self._clock()
            return value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None

    def warm(self) -> None:
        """Fill the cache in a background thread (the first Tab is then instant)."""
        threading.Thread(target=self.get, name="plancast-complete-warm", daemon=True).start()


def project_paths(root: Path, cwd: Path) -> list[str]:
    """Loadable paths, as typed from ``cwd``: files, and folders ending in ``/``.

    Paths under ``cwd`` come first, relative to it; the rest of the project follows as
    ``../…`` paths, since ``load`` resolves what is typed against the current directory.
    """
    from plancast.client.context.scan import list_project_paths

    files = list_project_paths(root)
    folders: set[str] = set()
    for path in files:
        cut = path.rfind("/")
        while cut > 0:
            folder = path[: cut + 1]
            if folder in folders:
                break
            folders.add(folder)
            cut = path.rfind("/", 0, cut)
    everything = sorted(folders) + files
    real_root, real_cwd = os.path.realpath(root), os.path.realpath(cwd)
    if real_cwd == real_root:
        return everything
    inside = os.path.relpath(real_cwd, real_root).replace(os.sep, "/") + "/"
    if inside.startswith("../"):  # the session runs outside the project: nothing sensible
        return everything
    near = [p[len(inside) :] for p in everything if p.startswith(inside) and p != inside]
    up = "../" * inside.count("/")
    far = [up + p for p in everything if not p.startswith(inside)]
    return near + far


def _display(m: Match, prefix: str = "") -> StyleAndTextTuples:
    marked = set(m.positions)
    out: StyleAndTextTuples = [("", prefix)] if prefix else []
    for i, ch in enumerate(m.text):
        out.append(("class:completion-menu.match" if i in marked else "", ch))
    return out


class ReplCompleter(Completer):
    """Completes a session line; see the module docstring."""

    def __init__(
        self,
        spec: CliSpec,
        session_commands: dict[str, str],
        paths: Callable[[], Sequence[str]],
        plans: Callable[[], Sequence[str]],
    ) -> None:
        self.spec = spec
        self.session_commands = session_commands
        self.paths = paths
        self.plans = plans

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor
        if text.startswith("\\"):
            yield from self._command_line(text[1:])
            return
        word = _current_word(text)
        if word.startswith("@"):
            yield from self._paths(word[1:], len(word) - 1, prefix="@")

    # -- \command lines ----------------------------------------------------------------------

    def _command_line(self, text: str) -> Iterator[Completion]:
        words = text.split()
        if not words or (len(words) == 1 and not text[-1:].isspace()):
            yield from self._command_names(words[0] if words else "")
            return
        command = self.spec.commands.get(words[0])
        if command is None:
            return
        word = _current_word(text)
        before = words[1:-1] if word else words[1:]
        if word.startswith("-"):
            yield from self._options(command, word)
            return
        if before and before[-1].startswith("-"):
            option = command.option(before[-1])
            if option is not None and option.takes_value:
                yield from self._words(option.choices, word)
                return
        positional = command.positional(_positional_index(command, before))
        if positional is None:
            return
        if positional.kind == "text" and word.startswith("@"):  # a prompt: \tell … @path
            yield from self._paths(word[1:], len(word) - 1, prefix="@")
        elif positional.kind == "path":
            yield from self._paths(word, len(word))
        elif positional.kind == "plan":
            yield from self._words(self.plans(), word)
        elif positional.kind == "choice":
            yield from self._words(positional.choices, word)

    def _command_names(self, typed: str) -> Iterator[Completion]:
        helps = {name: c.help for name, c in self.spec.commands.items()}
        helps.update({k: v for k, v in self.session_commands.items() if k not in helps})
        for m in fuzzy_filter(typed, list(helps), limit=MAX_SHOWN):
            yield Completion(
                "\\" + m.text,
                start_position=-len(typed) - 1,
                display=_display(m, "\\"),
                display_meta=helps[m.text],
            )

    def _options(self, command: Command, typed: str) -> Iterator[Completion]:
        helps: dict[str, str] = {}
        for option in command.options:
            for flag in option.flags:
                if flag.startswith("--") or len(option.flags) == 1:
                    helps[flag] = option.help
        for m in fuzzy_filter(typed.lstrip("-"), [f.lstrip("-") for f in helps], MAX_SHOWN):
            flag = "--" + m.text if "--" + m.text in helps else "-" + m.text
            yield Completion(
                flag,
                start_position=-len(typed),
                display=_display(m, flag[: len(flag) - len(m.text)]),
                display_meta=helps[flag],
            )

    def _words(self, choices: Iterable[str], typed: str) -> Iterator[Completion]:
        for m in fuzzy_filter(typed, list(choices), limit=MAX_SHOWN):
            yield Completion(m.text, start_position=-len(typed), display=_display(m))

    def _paths(self, typed: str, replace: int, prefix: str = "") -> Iterator[Completion]:
        for m in fuzzy_filter(typed, self.paths(), limit=MAX_SHOWN):
            yield Completion(
                prefix + m.text,
                start_position=-replace - len(prefix),
                display=_display(m),
                display_meta="folder" if m.text.endswith("/") else "",
            )


def _current_word(text: str) -> str:
    if not text or text[-1].isspace():
        return ""
    return text.split()[-1]


def _positional_index(command: Command, words: list[str]) -> int:
    """How many positional words come before the cursor (option values are skipped)."""
    index = 0
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            option = command.option(word)
            skip = option is not None and option.takes_value
        else:
            index += 1
    return index
