"""Client settings: where the server is, which model to use, how the session behaves.

Rules:

1. Every setting is one row of ``SETTINGS`` (name, environment variable, default, help).
   ``plancast config`` lists exactly these, and the README's table is checked against them.
2. Precedence, highest first: command-line flag, environment variable, config file, default.
   ``plancast config`` shows where each value came from, so a surprising value can be traced.
3. The config file is ``$XDG_CONFIG_HOME/plancast/config.toml`` (``~/.config/...`` when the
   variable is unset or not absolute, as the XDG spec asks). It is read once per process with
   ``tomllib`` and fails loudly: a bad value or an unknown key is an error naming the file, not
   a silent default. It is written whole, atomically, with mode 0600 (it may one day hold a
   server token, and a half-written file must never be read).
4. A setting that another module reads straight from its environment variable
   (``confirm_tokens``: ``PLANCAST_CONFIRM_TOKENS``, read by ``load``) is marked ``exported``:
   the CLI copies the config file's value into the variable when the variable is unset
   (``Settings.export_to``), so the file reaches that module and the precedence still holds.
5. Session state (the REPL's history) lives under ``$XDG_STATE_HOME/plancast``, folders 0700 and
   files 0600: a history holds everything the user typed.
6. Sign-ins to team servers (``plancast signin``) are kept in ``sessions.json`` next to the
   config file, one per server URL, written like it (whole, atomically, 0600). The token sent
   is, highest first: ``PLANCAST_TOKEN``, the sign-in kept for the server URL, the local
   server's token file. A session token is never put in the config file or printed.

Nothing here imports ``plancast.shared`` or ``dataclasses`` at module level: ``plancast --help``
imports this module (for ``config``'s choices) and must stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from plancast.shared import PlancastError

DEFAULT_SERVER = "http://127.0.0.1:7526"
TOKEN_FILE = "local-token"
CONFIG_FILE = "config.toml"
SESSIONS_FILE = "sessions.json"
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def config_error(message: str) -> PlancastError:
    """A user-facing settings error (``invalid_request``); built lazily to keep imports light."""
    from plancast.shared import ErrorCode, PlancastError

    return PlancastError(message, code=ErrorCode.INVALID_REQUEST)


# -- values -----------------------------------------------------------------------------------


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _parse_count(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("must be a whole number") from None
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _parse_server(text: str) -> str:
    url = text.strip().rstrip("/")
    scheme, sep, host = url.partition("://")
    if scheme not in ("http", "https") or not sep or not host:
        raise ValueError("must be an http:// or https:// URL")
    return url


def _parse_model(text: str) -> str:
    from plancast.shared import ModelSpec, PlancastError

    try:
        return str(ModelSpec.parse(text))
    except PlancastError as exc:
        raise ValueError(exc.message) from None


def _parse_pack(text: str) -> str:
    name = text.strip()
    if not 0 < len(name) <= 64 or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError("a pack name is 1 to 64 letters, digits, '-' or '_'")
    return name


class Setting(NamedTuple):
    """One setting: its name (in the file and in ``plancast config``), its variable, its default.

    ``parse`` turns text from the environment or the command line into the typed value and
    raises ``ValueError`` with a short reason when it cannot.
    """

    name: str
    env: str
    default: str | int | bool | None
    kind: type
    parse: Callable[[str], Any]
    help: str
    exported: bool = False

    def coerce(self, value: object) -> Any:
        """Check a value read from the TOML file, which is already typed."""
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            raise ValueError("must be true or false")
        if self.kind is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return self.parse(str(value))
            raise ValueError("must be a whole number")
        if isinstance(value, str):
            return self.parse(value)
        raise ValueError("must be a string")


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "server",
            "PLANCAST_SERVER",
            DEFAULT_SERVER,
            str,
            _parse_server,
            "URL of the plancast server",
        ),
        Setting(
            "model",
            "PLANCAST_MODEL",
            None,
            str,
            _parse_model,
            "provider/model that plans which set no model plan with "
            "(unset: the first provider configured in the environment)",
        ),
        Setting(
            "pack",
            "PLANCAST_PACK",
            None,
            str,
            _parse_pack,
            "model pack for plans that set none: openai, anthropic, azure, ollama, or one "
            "defined in model-packs.toml (`plancast models packs`)",
        ),
        Setting(
            "confirm_tokens",
            "PLANCAST_CONFIRM_TOKENS",
            100_000,
            int,
            _parse_count,
            "load and update ask before uploading more tokens than this",
            exported=True,
        ),
        Setting(
            "confirm_apply_files",
            "PLANCAST_CONFIRM_APPLY_FILES",
            5,
            int,
            _parse_count,
            "the session's apply menu asks before writing more files than this (0: always ask)",
        ),
        Setting(
            "markdown",
            "PLANCAST_MARKDOWN",
            True,
            bool,
            _parse_bool,
            "render replies as markdown in a terminal (never when piped or with NO_COLOR)",
        ),
    )
}


# -- locations --------------------------------------------------------------------------------


def _xdg(variable: str, fallback: tuple[str, ...]) -> Path:
    value = os.environ.get(variable, "")
    # The XDG spec: a relative path in these variables is invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home().joinpath(*fallback)


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", (".config",)) / "plancast"


def config_path() -> Path:
    """Where ``plancast config`` reads and writes (``PLANCAST_CONFIG`` overrides it)."""
    explicit = os.environ.get("PLANCAST_CONFIG")
    return Path(explicit).expanduser() if explicit else config_dir() / CONFIG_FILE


def state_dir() -> Path:
    """Per-user state that is not configuration: the session's history."""
    return _xdg("XDG_STATE_HOME", (".local", "state")) / "plancast"


def data_dir() -> Path:
    """The local server's data folder (shared with ``plancast-server`` in local mode).

    Computed exactly as ``plancast.server.config.default_data_dir`` does, relative
    ``XDG_DATA_HOME`` included: the client finds the server's token there, so the two must agree.
    """
    explicit = os.environ.get("PLANCAST_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "plancast"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed; the last level is made 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only.

    The temporary file is created 0600 before any byte is written, so the content is never
    readable by others, not even for a moment; the rename replaces the old file whole.
    """
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        if hasattr(os, "fchmod"):  # not on Windows, where the mode means little
            os.fchmod(fd, PRIVATE_FILE_MODE)  # in case a stale temp file had other bits
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise


# -- the config file --------------------------------------------------------------------------

_HEADER = (
    "# plancast client settings. `plancast config` shows them with their sources and sets them;\n"
    "# it rewrites this file whole (comments other than this one are not kept).\n"
)


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    """The typed values in the config file; ``{}`` when there is none.

    Raises:
        PlancastError: ``invalid_request`` for bad TOML, an unknown key or a bad value,
            naming the file.
    """
    import tomllib

    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise config_error(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise config_error(f"{path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in data.items():
        setting = SETTINGS.get(key)
        if setting is None:
            known = ", ".join(SETTINGS)
            raise config_error(f"{path}: unknown setting {key!r} (known: {known})")
        try:
            values[key] = setting.coerce(value)
        except ValueError as exc:
            raise config_error(f"{path}: {key}: {exc}") from None
    return values


def toml_value(value: str | int | bool) -> str:
    """One TOML value. Strings are basic strings with every control character escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    out = ['"']
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dump_config(values: Mapping[str, str | int | bool]) -> str:
    """The config file's text for ``values``, keys in the table's order."""
    lines = [_HEADER]
    for name in SETTINGS:
        if name in values:
            lines.append(f"{name} = {toml_value(values[name])}\n")
    return "".join(lines)


def write_config_file(values: Mapping[str, str | int | bool], path: Path | None = None) -> Path:
    path = path or config_path()
    write_private(path, dump_config(values))
    return path


# -- resolution -------------------------------------------------------------------------------


class Settings:
    """Every setting resolved once: flag, then environment, then config file, then default.

    Read once per process and never changed afterwards, so that every part of a command sees
    the same values.
    """

    __slots__ = ("_sources", "_values", "path")

    def __init__(
        self,
        flags: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        file_values: Mapping[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        flags = flags or {}
        file_values = file_values or {}
        self.path = path
        self._values: dict[str, Any] = {}
        self._sources: dict[str, str] = {}
        for name, setting in SETTINGS.items():
            if flags.get(name) is not None:
                value, source = flags[name], "flag"
            elif env.get(setting.env):
                try:
                    value = setting.parse(env[setting.env])
                except ValueError as exc:
                    raise config_error(f"{setting.env}: {exc}") from None
                source = f"env {setting.env}"
            elif name in file_values:
                value, source = file_values[name], "config file"
            else:
                value, source = setting.default, "default"
            self._values[name] = value
            self._sources[name] = source

    @classmethod
    def load(
        cls, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        path = config_path()
        return cls(flags, environ, read_config_file(path), path)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def source(self, name: str) -> str:
        return self._sources[name]

    def export_to(self, environ: Any) -> None:
        """Copy config-file values of ``exported`` settings into their unset variables."""
        for name, setting in SETTINGS.items():
            if setting.exported and self._sources[name] == "config file":
                environ.setdefault(setting.env, _text(self._values[name]))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- sign-ins to team servers (rule 6) --------------------------------------------------------


class SignIn(NamedTuple):
    """A session a team server issued to this client: its token, and whose it is."""

    token: str
    email: str
    user_id: str | None = None
    session_id: str | None = None


def sessions_path() -> Path:
    return config_dir() / SESSIONS_FILE


def server_key(url: str) -> str:
    """``url`` as sign-ins are filed under: no trailing slash, scheme and host in lower case."""
    scheme, sep, rest = url.strip().rstrip("/").partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}{sep}{host.lower()}{slash}{path}"


def _read_signins(path: Path) -> dict[str, dict[str, Any]]:
    """Every kept sign-in by server key; ``{}`` when there is no file.

    Raises:
        PlancastError: ``invalid_request`` for a file that cannot be read or is not ours,
            naming it: a damaged file is deleted by hand, never guessed at.
    """
    import json

    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise config_error(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        data = None
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("token"), str) for v in servers.values()
    ):
        raise config_error(f"{path} is damaged: delete it, then sign in again")
    return servers


def stored_signin(server: str) -> SignIn | None:
    """The sign-in kept for ``server``, or ``None``."""
    entry = _read_signins(sessions_path()).get(server_key(server))
    if entry is None:
        return None
    return SignIn(
        entry["token"],
        str(entry.get("email") or ""),
        entry.get("user_id"),
        entry.get("session_id"),
    )


def store_signin(server: str, signin: SignIn) -> Path:
    """Keep ``signin`` for ``server``, replacing the one kept before, if any."""
    path = sessions_path()
    servers = _read_signins(path)
    servers[server_key(server)] = signin._asdict()
    _write_signins(path, servers)
    return path


def forget_signin(server: str) -> bool:
    """Drop the sign-in kept for ``server``; whether there was one."""
    path = sessions_path()
    servers = _read_signins(path)
    if servers.pop(server_key(server), None) is None:
        return False
    _write_signins(path, servers)
    return True


def _write_signins(path: Path, servers: Mapping[str, Any]) -> None:
    import json

    write_private(path, json.dumps({"servers": servers}, indent=2, sort_keys=True) + "\n")


# -- what the API client needs ----------------------------------------------------------------


TOKEN_FROM_ENV = "env PLANCAST_TOKEN"
TOKEN_FROM_SIGNIN = "sign-in"
TOKEN_FROM_FILE = "local token file"


class ClientConfig(NamedTuple):
    server: str
    token: str | None
    source: str | None = None  # where the token came from, for `plancast whoami`
    signin: SignIn | None = None  # the kept sign-in whose token this is, if it is one

    @classmethod
    def load(cls, server: str | None = None, settings: Settings | None = None) -> ClientConfig:
        """The server URL (flag > env > config file > default) and the token to send.

        The token is ``PLANCAST_TOKEN``, else the sign-in kept for this server URL, else the
        local server's token file (rule 6); it is never copied into the config file.
        """
        if settings is None:
            settings = Settings.load({"server": server})
        url = str(server or settings["server"]).rstrip("/")
        if token := os.environ.get("PLANCAST_TOKEN"):
            return cls(url, token, TOKEN_FROM_ENV)
        if signin := stored_signin(url):
            return cls(url, signin.token, TOKEN_FROM_SIGNIN, signin)
        token = _read_local_token()
        return cls(url, token, TOKEN_FROM_FILE if token else None)

    @property
    def ws_url(self) -> str:
        scheme, rest = self.server.split("://", 1)
        return ("wss://" if scheme == "https" else "ws://") + rest + "/api/v1/streams"


def _read_local_token() -> str | None:
    try:
        return (data_dir() / TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None
