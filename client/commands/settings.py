"""``config``: show and set the client's defaults (``$XDG_CONFIG_HOME/plancast/config.toml``).

    plancast config                 every setting, its value and where the value comes from
    plancast config KEY             one value (plain, for scripts)
    plancast config KEY VALUE       set it in the config file
    plancast config --unset KEY     take it out of the config file
    plancast config --path          the config file's path

The table of settings and their precedence live in ``plancast.client.config``. Needs no server.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from plancast.client.config import SETTINGS

if TYPE_CHECKING:
    from plancast.client.session import Session


def register(sub: Any) -> None:
    p = sub.add_parser(
        "config",
        help="show or set defaults (server, model, confirm thresholds, markdown)",
        description="Show or set the client's defaults. Precedence: flag, then environment "
        "variable, then config file, then default.",
    )
    p.add_argument("key", nargs="?", choices=list(SETTINGS), metavar="KEY", help="a setting")
    p.add_argument("value", nargs="?", help="the value to store in the config file")
    p.add_argument("--unset", action="store_true", help="remove KEY from the config file")
    p.add_argument("--path", action="store_true", help="print the config file's path")
    p.add_argument("--json", action="store_true", help="print the settings as JSON")
    p.set_defaults(func=config)


def _shown(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.config import config_error, config_path

    out = session.output
    if args.path:
        out.line(str(config_path()))
        return 0
    if args.unset or args.value is not None:
        if args.key is None:
            raise config_error("name the setting: `plancast config KEY VALUE`")
        if args.unset and args.value is not None:
            raise config_error("--unset takes a setting, not a value")
        return store_setting(session, args.key, None if args.unset else args.value)
    settings = session.settings
    if args.key is not None:
        if args.json:
            out.json(settings[args.key])
        else:
            out.line(_shown(settings[args.key]))
        return 0
    if args.json:
        out.json(
            {
                name: {
                    "value": settings[name],
                    "source": settings.source(name),
                    "env": setting.env,
                    "default": setting.default,
                    "help": setting.help,
                }
                for name, setting in SETTINGS.items()
            }
        )
        return 0
    width = max(len(name) for name in SETTINGS)
    values = {name: _shown(settings[name]) for name in SETTINGS}
    value_width = max(len(v) for v in values.values())
    for name in SETTINGS:
        source = out.style(f"({settings.source(name)})", "dim")
        out.line(f"{name:<{width}}  {values[name]:<{value_width}}  {source}")
    out.line(out.style(f"config file: {settings.path or config_path()}", "dim"))
    return 0


def store_setting(session: Session, key: str, text: str | None) -> int:
    """Write (or, with ``None``, remove) one setting in the config file, and say so."""
    import os

    from plancast.client.config import (
        config_error,
        config_path,
        read_config_file,
        write_config_file,
    )
    from plancast.shared import PlancastError

    setting = SETTINGS[key]
    path = config_path()
    try:
        values = read_config_file(path)
    except PlancastError as exc:  # a broken file: say how to recover rather than overwrite it
        raise config_error(f"{exc.message}; fix or delete it, then try again") from None
    if text is None:
        if values.pop(key, None) is None:
            session.output.line(f"{key} was not set in {path}")
            return 0
        write_config_file(values, path)
        session.output.line(f"{key} removed from {path}")
        return 0
    try:
        values[key] = setting.parse(text)
    except ValueError as exc:
        raise config_error(f"cannot set {key}: {exc}") from None
    write_config_file(values, path)
    session.output.line(f"{key} = {_shown(values[key])}  ({path})")
    if os.environ.get(setting.env):
        session.output.note(f"note: {setting.env} is set, and takes precedence over the file")
    return 0
