"""What the command line accepts, read from the argparse parser: commands, options, arguments.

The REPL's completion and the bash, zsh and fish scripts are all made from this, so that a
command module only has to ``register`` its parser for every completion to know it.

What a positional argument completes to is inferred from its name (``dest``), so that commands
written elsewhere get it for free: ``paths``, ``path``, ``names`` and ``files`` complete project
paths, ``plan`` completes plan names, and an argument with ``choices`` completes those.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

Kind = Literal["path", "plan", "choice", "text"]

PATH_DESTS = frozenset({"paths", "path", "names", "files"})
PLAN_DESTS = frozenset({"plan"})


@dataclass(frozen=True, slots=True)
class Option:
    flags: tuple[str, ...]
    help: str
    takes_value: bool
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Positional:
    dest: str
    kind: Kind
    many: bool
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    options: tuple[Option, ...]
    positionals: tuple[Positional, ...]

    def option(self, flag: str) -> Option | None:
        for option in self.options:
            if flag in option.flags:
                return option
        return None

    def positional(self, index: int) -> Positional | None:
        """The argument at ``index`` among the positional words (the last one may repeat)."""
        for i, positional in enumerate(self.positionals):
            if i == index or (positional.many and i <= index):
                return positional
        return None


@dataclass(frozen=True, slots=True)
class CliSpec:
    options: tuple[Option, ...]
    commands: dict[str, Command]


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    return "" if text == argparse.SUPPRESS else " ".join(text.split())


def _options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    out = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        choices = tuple(str(c) for c in action.choices) if action.choices else ()
        out.append(Option(tuple(action.option_strings), _help(action), action.nargs != 0, choices))
    return tuple(out)


def _positionals(parser: argparse.ArgumentParser) -> tuple[Positional, ...]:
    out = []
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        choices = tuple(str(c) for c in action.choices) if action.choices else ()
        kind: Kind
        if choices:
            kind = "choice"
        elif action.dest in PATH_DESTS:
            kind = "path"
        elif action.dest in PLAN_DESTS:
            kind = "plan"
        else:
            kind = "text"
        many = action.nargs in ("*", "+", argparse.REMAINDER)
        out.append(Positional(action.dest, kind, many, choices))
    return tuple(out)


def read_parser(parser: argparse.ArgumentParser) -> CliSpec:
    """The commands of ``parser`` (a ``plancast`` parser with one level of subcommands)."""
    commands: dict[str, Command] = {}
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: _help(choice) for choice in action._choices_actions}
        for name, sub in action.choices.items():
            commands[name] = Command(name, helps.get(name, ""), _options(sub), _positionals(sub))
    return CliSpec(_options(parser), commands)
