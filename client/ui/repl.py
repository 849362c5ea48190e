"""The interactive session: type a prompt to tell, or a ``\\command`` to run one.

A first version: it reuses the CLI's commands and the same stream rendering.
"""

from __future__ import annotations

import argparse
import shlex

from plancast.client.session import Session
from plancast.shared import PlancastError

BANNER = (
    "plancast — type what you want changed and press Enter.\n"
    "  \\chat / \\tell switch mode · \\load PATH… · \\diff · \\apply · \\reject\n"
    "  \\help lists every command · Ctrl-D quits"
)


def _ensure_plan(session: Session, parser: argparse.ArgumentParser) -> None:
    """Bind the directory and start a plan when there is none, then show the current plan."""
    from plancast.client.project import find_root

    if find_root(session.cwd) is None or session.binding.plan_id is None:
        _command(session, parser, "new")
        session.__dict__.pop("binding", None)  # re-read the binding `new` just wrote
    _command(session, parser, "current")


def _command(session: Session, parser: argparse.ArgumentParser, *words: str) -> int:
    args = parser.parse_args(list(words))
    return int(args.func(session, args))


def run_repl(session: Session, parser: argparse.ArgumentParser) -> int:
    from prompt_toolkit import PromptSession

    _ensure_plan(session, parser)  # a missing server is reported here, before any prompt
    prompt_session: PromptSession[str] = PromptSession()
    mode = "tell"
    session.output.line(BANNER, "dim")
    while True:
        try:
            line = prompt_session.prompt(f"{mode}> ").strip()
        except KeyboardInterrupt:
            continue
        except EOFError:
            return 0
        if not line:
            continue
        if line.startswith("\\"):
            try:
                words = shlex.split(line[1:])
            except ValueError as exc:  # unbalanced quotes
                session.output.error(f"cannot read that command: {exc}")
                continue
            if words in (["chat"], ["tell"]):
                mode = words[0]
                continue
            if words in (["help"], ["h"]):
                parser.print_help(session.output.out)
                continue
            if words in (["quit"], ["exit"], ["q"]):
                return 0
        else:
            words = [mode, line]
        if not words:
            continue
        try:
            _command(session, parser, *words)
        except SystemExit:  # argparse already printed the usage error
            continue
        except PlancastError as exc:
            session.output.error(exc.message)
        except KeyboardInterrupt:
            session.output.note("interrupted")
