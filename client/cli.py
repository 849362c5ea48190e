"""``plancast``: the command line. With no command, it starts the interactive session.

Imports stay light here: each command loads what it needs when it runs, so that
``plancast --help`` starts fast and the client never loads an LLM SDK.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from plancast.client.commands import changes, context, convo, plans, streams
from plancast.client.ui.output import Output
from plancast.shared import PlancastError

COMMAND_MODULES = (plans, context, streams, changes, convo)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plancast",
        description="Plan code changes with an LLM, review them as diffs, apply them safely. "
        "Run with no command for an interactive session.",
    )
    parser.add_argument(
        "--server", help="server URL (env PLANCAST_SERVER; default http://127.0.0.1:7526)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def run(argv: Sequence[str], output: Output | None = None) -> int:
    """Run one command line; returns the exit code. Errors are printed, never raised."""
    from plancast.client.session import Session

    output = output or Output()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    session = Session(output, server=args.server)
    try:
        if args.command is None:
            from plancast.client.ui.repl import run_repl

            return run_repl(session, parser)
        return int(args.func(session, args))
    except PlancastError as exc:
        output.error(exc.message)
        return EXIT_ERROR
    except KeyboardInterrupt:
        output.note("interrupted")
        return EXIT_INTERRUPTED
    finally:
        session.close()


def main() -> None:
    sys.exit(run(sys.argv[1:]))
