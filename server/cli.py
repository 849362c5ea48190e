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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve (what plancast-server does with no command)")
    commands.add_parser("new-master-key", help="print a new random master key (base64)")
    rotate = commands.add_parser(
        "rotate-master-key", help="re-wrap every org's data key under a new master key"
    )
    rotate.add_argument("--new-key-file", type=Path, required=True, metavar="FILE")
    backup = commands.add_parser(
        "backup", help="write the database to an encrypted file (without the data keys)"
    )
    backup.add_argument("path", type=Path, metavar="FILE")
    restore = commands.add_parser(
        "restore", help="replace the database's contents with a backup's (all of them)"
    )
    restore.add_argument("path", type=Path, metavar="FILE")
    restore.add_argument("--yes", action="store_true", help="do not ask first")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load({k: v for k, v in vars(args).items() if v is not None})
    except ValueError as exc:
        sys.exit(f"plancast-server: {exc}")

    if args.command not in (None, "serve"):
        sys.exit(_maintain(args, settings))

    from plancast.server import logs, serving
    from plancast.server.app import create_app

    logs.configure(settings.log_level, settings.log_format)
    _drop_keys_from_environment()
    serving.serve(create_app(settings), settings)


def _maintain(args: argparse.Namespace, settings: Settings) -> int:
    """The commands other than serving; returns the exit status."""
    import asyncio

    from plancast.server import maintenance

    try:
        if args.command == "new-master-key":
            sys.stdout.write(maintenance.new_master_key() + "\n")
        elif args.command == "rotate-master-key":
            sys.stdout.write(
                asyncio.run(maintenance.rotate_master_key(settings, args.new_key_file)) + "\n"
            )
        elif args.command == "backup":
            rows = asyncio.run(maintenance.run_backup(settings, args.path))
            sys.stdout.write(
                f"wrote {rows} rows to {args.path} (encrypted; the data keys are not in it)\n"
            )
        elif args.command == "restore":
            if not args.yes:
                answer = input(f"Replace everything in the database with {args.path}? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    sys.stdout.write("nothing restored\n")
                    return 1
            rows = asyncio.run(maintenance.run_restore(settings, args.path))
            sys.stdout.write(f"restored {rows} rows from {args.path}\n")
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"plancast-server {args.command}: {exc}\n")
        return 1
    return 0


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
