"""``plancast``: the command line. With no command, it starts the interactive session.

Imports stay light here: each command loads what it needs when it runs, so that
``plancast --help`` starts fast and the client never loads an LLM SDK
(``scripts/bench/cli_startup.py`` measures it).

Settings follow one precedence, highest first: flag, environment, config file, default
(``plancast.client.config``). Two settings are resolved by other modules, and get the config
file's value from here: the default model (``commands.models.resolve_for_stream`` puts ``-m``
first, then the plan's own settings, then this default: ``PLANCAST_MODEL`` or the file); and the
``exported`` ones (``PLANCAST_CONFIRM_TOKENS``), copied into their variable when it is unset.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from plancast.client.commands import (
    account,
    branches,
    changes,
    completion,
    context,
    convo,
    history,
    ignore,
    keys,
    models,
    org,
    plans,
    settings,
    streams,
    usage,
)
from plancast.client.ui.output import Output

COMMAND_MODULES = (
    plans,
    context,
    ignore,
    streams,
    changes,
    history,
    branches,
    convo,
    usage,
    models,
    settings,
    keys,
    account,
    org,
    completion,
)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plancast",
        description="Plan code changes with an LLM, review them as diffs, apply them safely. "
        "Run with no command for an interactive session.",
    )
    parser.add_argument(
        "--server",
        help="server URL (env PLANCAST_SERVER, or `plancast config server URL`; "
        "default http://127.0.0.1:7526)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def run(argv: Sequence[str], output: Output | None = None) -> int:
    """Run one command line; returns the exit code. Errors are printed, never raised."""
    output = output or Output()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)

    from plancast.client.session import Session
    from plancast.shared import PlancastError

    session = Session(output, server=args.server)
    try:
        if getattr(args, "func", None) is not settings.config:  # it must work on a broken file
            import os

            session.settings.export_to(os.environ)
        if hasattr(args, "model"):  # tell, chat, continue: the default, below the plan's own
            args.default_model = session.settings["model"]  # env > config file > None (auto)
        if args.command is None:
            from plancast.client.ui.repl import run_repl

            return run_repl(session, parser)
        return int(args.func(session, args))
    except PlancastError as exc:
        output.close_live()
        output.error(exc.message)
        return EXIT_ERROR
    except KeyboardInterrupt:
        output.close_live()
        output.note("interrupted")
        return EXIT_INTERRUPTED
    finally:
        output.close_live()
        session.close()


def main() -> None:
    # httpx's __init__ imports its own command line (click, rich, pygments: ~90 ms) whenever
    # those are installed, and rich is one of ours. This process never runs httpx's CLI; a
    # ``None`` entry makes that import fail, and httpx falls back as it does without click.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]
    sys.exit(run(sys.argv[1:]))
