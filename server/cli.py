"""``plancast-server``: read the settings, configure logging, serve."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from plancast.server.config import SETTINGS, Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plancast-server",
        description="The plancast server: holds plans and streams model replies to clients. "
        "Each setting can also come from the environment variable shown; a flag wins.",
    )
    for setting in SETTINGS:
        default = "" if setting.default is None else f" Default: {setting.default}."
        parser.add_argument(
            setting.flag,
            dest=setting.name,
            # Paths and booleans are read by Settings.load, which knows "false" from True.
            type=setting.type if setting.type not in (Path, bool) else str,
            default=None,
            metavar=setting.name.upper(),
            help=f"{setting.help}{default} [env {setting.env}]",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load({k: v for k, v in vars(args).items() if v is not None})
    except ValueError as exc:
        sys.exit(f"plancast-server: {exc}")

    from plancast.server import logs, serving
    from plancast.server.app import create_app

    logs.configure(settings.log_level, settings.log_format)
    _drop_keys_from_environment()
    serving.serve(create_app(settings), settings)


def _drop_keys_from_environment() -> None:
    """The server never uses a provider key from its environment: keys come sealed from clients.

    Any key-like variable is removed from ``os.environ`` (so no child inherits it) and named
    in a warning, because the process's initial environment block still holds its value.
    """
    import logging
    import os

    from plancast.server.config import SETTINGS
    from plancast.server.workers.forkserver import clean_environment

    ours = {setting.env for setting in SETTINGS}  # PLANCAST_TLS_KEYFILE is a path, not a key
    kept = clean_environment(os.environ)
    for name in sorted(set(os.environ) - set(kept)):
        del os.environ[name]
        if name in ours:
            continue
        logging.getLogger("plancast.server").warning(
            "%s is set in the server's environment; the server does not use it (clients seal "
            "their keys to each stream's worker). Start the server without it.",
            name,
        )
