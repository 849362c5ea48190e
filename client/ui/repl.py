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


def run_repl(session: Session, parser: argparse.ArgumentParser) -> int:
    from prompt_toolkit import PromptSession

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
            words = shlex.split(line[1:])
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
        try:
            args = parser.parse_args(words)
        except SystemExit:
            continue
        if args.command is None:
            continue
        try:
            args.func(session, args)
        except PlancastError as exc:
            session.output.error(exc.message)
        except KeyboardInterrupt:
            session.output.note("interrupted")
