"""Server settings: one table, read once, typed, with a stated precedence.

Precedence, highest first: command-line flag, environment variable, default.
Every setting appears in ``SETTINGS`` with its help text, and ``plancast-server
--help`` is generated from it (a test checks that every setting is listed).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_PORT = 7526  # "plan" on a phone keypad


def default_data_dir() -> Path:
    """Where local mode keeps its database and token: ``$XDG_DATA_HOME/plancast``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "plancast"


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None

    @property
    def env(self) -> str:
        return "PLANCAST_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "host",
        str,
        "127.0.0.1",
        "Address to bind. Loopback by default; see TLS before exposing it.",
    ),
    Setting("port", int, DEFAULT_PORT, "TCP port to listen on.", minimum=0, maximum=65535),
    Setting(
        "data_dir",
        Path,
        None,
        "Folder for the SQLite database and the local access token "
        "(default: $XDG_DATA_HOME/plancast). Created if missing, mode 0700.",
    ),
    Setting(
        "database_url",
        str,
        None,
        "Database URL: sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST/DB "
        "(default: sqlite+aiosqlite:///DATA_DIR/plancast.db).",
    ),
    Setting(
        "log_level",
        str,
        "info",
        "Log level: debug, info, warning or error. Libraries that "
        "could see provider keys never log below warning.",
    ),
    Setting(
        "log_format",
        str,
        "text",
        "Log lines as text (for a terminal) or json: one JSON object a line with time, level, "
        "logger, message and, for lines logged while handling a request, its request_id.",
    ),
    Setting(
        "allowed_origins",
        str,
        "",
        "Comma-separated browser origins allowed to open WebSockets and to post the web pages' "
        "forms besides the server's own (default: none; WebSocket clients that send no Origin "
        "header are allowed).",
    ),
    Setting(
        "forwarded_allow_ips",
        str,
        "127.0.0.1",
        "Addresses of the proxies whose forwarding headers are believed, comma separated, or * "
        "for any: the client's address (for the sign-in limit per address) and https (for "
        "secure cookies) then come from those headers. Set it to the addresses of the load "
        "balancer or Ingress controller in front.",
    ),
    Setting(
        "tls_certfile",
        Path,
        None,
        "PEM certificate chain to serve HTTPS and WSS with, TLS 1.3 only (needs tls_keyfile). "
        "Without it the server speaks plain HTTP: keep it on loopback or behind a TLS proxy.",
    ),
    Setting(
        "tls_keyfile",
        Path,
        None,
        "PEM private key of tls_certfile, unencrypted; keep it readable by the server's user only.",
    ),
    Setting(
        "event_flush_ms",
        int,
        50,
        "How long stream events may wait before they are written to the database in one batch.",
        minimum=1,
    ),
    Setting(
        "event_flush_size",
        int,
        200,
        "How many stream events are written in one batch at most.",
        minimum=1,
    ),
    Setting(
        "provider_timeout_s",
        float,
        120.0,
        "Per-read timeout for model provider calls.",
        minimum=0.001,
    ),
    Setting(
        "first_token_timeout_s",
        float,
        90.0,
        "A stream fails as provider_timeout if the model sends no text for this long after "
        "the call starts.",
        minimum=0.001,
    ),
    Setting(
        "idle_timeout_s",
        float,
        60.0,
        "A stream fails as provider_timeout if the model goes silent for this long mid-reply.",
        minimum=0.001,
    ),
    Setting(
        "stream_deadline_s",
        float,
        1800.0,
        "No stream runs longer than this, even one that keeps trickling; it then fails as "
        "provider_timeout with its partial reply kept.",
        minimum=0.001,
    ),
    Setting(
        "max_streams_per_user",
        int,
        8,
        "How many streams one user may run at once (across plans); more are refused as busy.",
        minimum=1,
    ),
    Setting(
        "idle_workers",
        int,
        2,
        "Model worker processes kept ready, each for one future stream (they hold no key "
        "until a stream's client seals one to them). 0 starts each worker on demand.",
        minimum=0,
        maximum=64,
    ),
    Setting(
        "max_workers",
        int,
        64,
        "The most model worker processes (one per running stream, plus idle ones) at once.",
        minimum=1,
        maximum=4096,
    ),
    Setting(
        "event_retention_days",
        float,
        30.0,
        "Stored stream events are kept this long after a stream ends (0: forever); the "
        "reply itself stays in the plan. Attaching to an older stream gets a snapshot.",
        minimum=0,
    ),
    Setting(
        "provider_attempts",
        int,
        3,
        "How many times a model call is tried when the provider is rate limiting or "
        "unavailable, only before any output; waits follow retry-after, capped at 10 s.",
        minimum=1,
    ),
    Setting(
        "max_request_bytes",
        int,
        32 * 1024 * 1024,
        "Largest REST request body accepted.",
        minimum=1,
    ),
    Setting(
        "shutdown_grace_s",
        float,
        25.0,
        "On SIGTERM or SIGINT, running streams get this long to finish; the rest end as "
        "interrupted, their partial replies kept. No new stream starts meanwhile.",
        minimum=0,
        maximum=3600,
    ),
    Setting(
        "metrics_public",
        bool,
        False,
        "Serve /metrics without the access token, for a Prometheus scraper on a private "
        "network; the metrics carry no ids, prompts or keys.",
    ),
    Setting(
        "stream_lease_s",
        float,
        30.0,
        "A running stream's replica renews its lease in the database every third of this; "
        "when a replica dies, another marks its streams interrupted once their lease expires.",
        minimum=0.5,
    ),
    Setting(
        "master_key",
        str,
        "",
        "The master key that wraps the orgs' data keys (encryption at rest): 32 bytes in "
        "base64, as `plancast-server new-master-key` prints. Prefer master_key_file.",
    ),
    Setting(
        "master_key_file",
        Path,
        None,
        "A file holding the master key (base64). With neither this, master_key nor kms_plugin, "
        "the server makes DATA_DIR/master.key (0600) on first start.",
    ),
    Setting(
        "kms_plugin",
        str,
        "",
        "module:factory of a KMS plugin: factory() returns an object with key_id, wrap(key, "
        "aad) and unwrap(blob, aad), which then wraps the data keys instead of a master key.",
    ),
    Setting(
        "mode",
        str,
        "local",
        "local: one implicit user with the access token in the data folder. team: accounts "
        "(email and password), orgs, roles and invites; needs smtp_host for sign-in codes.",
    ),
    Setting(
        "signup",
        str,
        "invite",
        "Team mode: who may create an account. invite: only with an invite (the first account "
        "of an empty server may always sign up, and owns a new org); open: anyone, each with "
        "an org of their own.",
    ),
    Setting("smtp_host", str, "", "SMTP server for sign-in codes and invites (team mode)."),
    Setting("smtp_port", int, 587, "SMTP port.", minimum=1, maximum=65535),
    Setting(
        "smtp_security",
        str,
        "starttls",
        "starttls (upgrade, required), tls (implicit TLS, usually port 465), or none "
        "(only for an SMTP relay on loopback).",
    ),
    Setting("smtp_username", str, "", "SMTP user name, if the server wants one."),
    Setting(
        "smtp_password_file",
        Path,
        None,
        "A file holding the SMTP password (read once at start; never logged).",
    ),
    Setting("smtp_from", str, "plancast@localhost", "The From address of plancast's emails."),
    Setting(
        "session_idle_days",
        float,
        14.0,
        "A sign-in session unused for this long expires.",
        minimum=0.0001,
    ),
    Setting(
        "session_max_days",
        float,
        90.0,
        "A sign-in session expires this long after sign-in, used or not.",
        minimum=0.0001,
    ),
    Setting(
        "invite_days", float, 7.0, "An invite expires this long after it is sent.", minimum=0.0001
    ),
    Setting(
        "plan_retention_days",
        float,
        0.0,
        "Plans unchanged for this long are deleted with all their rows, at start and then "
        "daily (0: kept forever).",
        minimum=0,
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = Path()
    database_url: str = ""
    log_level: str = "info"
    log_format: str = "text"
    allowed_origins: tuple[str, ...] = ()
    forwarded_allow_ips: str = "127.0.0.1"
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    event_flush_ms: int = 50
    event_flush_size: int = 200
    provider_timeout_s: float = 120.0
    first_token_timeout_s: float = 90.0
    idle_timeout_s: float = 60.0
    stream_deadline_s: float = 1800.0
    max_streams_per_user: int = 8
    idle_workers: int = 2
    max_workers: int = 64
    event_retention_days: float = 30.0
    provider_attempts: int = 3
    max_request_bytes: int = 32 * 1024 * 1024
    shutdown_grace_s: float = 25.0
    metrics_public: bool = False
    stream_lease_s: float = 30.0
    master_key: str = field(default="", repr=False)
    master_key_file: Path | None = None
    kms_plugin: str = ""
    mode: str = "local"
    signup: str = "invite"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password_file: Path | None = None
    smtp_password: str = field(default="", repr=False)  # read from smtp_password_file
    smtp_from: str = "plancast@localhost"
    session_idle_days: float = 14.0
    session_max_days: float = 90.0
    invite_days: float = 7.0
    plan_retention_days: float = 0.0

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Resolve every setting from flags, then the environment, then defaults.

        Raises:
            ValueError: a value cannot be read as its setting's type; the text
                names the setting and where the value came from.
        """
        environ = os.environ if environ is None else environ
        overrides = overrides or {}
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw: Any = overrides.get(setting.name)
            source = setting.flag
            if raw is None and setting.env in environ:
                raw, source = environ[setting.env], setting.env
            if raw is None:
                raw, source = setting.default, "default"
            values[setting.name] = _coerce(setting, raw, source)
        data_dir = values["data_dir"] or default_data_dir()
        values["data_dir"] = Path(data_dir).expanduser().resolve()
        if not values["database_url"]:
            values["database_url"] = f"sqlite+aiosqlite:///{values['data_dir'] / 'plancast.db'}"
        values["allowed_origins"] = tuple(
            o.strip() for o in (values["allowed_origins"] or "").split(",") if o.strip()
        )
        _check_proxies(values["forwarded_allow_ips"])
        if values["log_level"] not in ("debug", "info", "warning", "error"):
            raise ValueError(
                f"log_level must be debug, info, warning or error, not {values['log_level']!r}"
            )
        if values["log_format"] not in ("text", "json"):
            raise ValueError(f"log_format must be text or json, not {values['log_format']!r}")
        for name, allowed in _CHOICES.items():
            if values[name] not in allowed:
                raise ValueError(f"{name} must be {' or '.join(allowed)}, not {values[name]!r}")
        if values["mode"] == "team" and not values["smtp_host"]:
            raise ValueError("team mode sends sign-in codes by email: set smtp_host")
        if values["smtp_password_file"] is not None:
            values["smtp_password"] = _read_secret(values["smtp_password_file"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _check_proxies(listed: str) -> None:
    """Each entry of ``forwarded_allow_ips`` is ``*``, an address or a network.

    uvicorn would take anything else as a name to compare literally, which never matches an
    address: a typo would quietly stop the headers from being believed.
    """
    for entry in (e.strip() for e in listed.split(",")):
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"forwarded_allow_ips: {entry[:60]!r} is not an address, a network or *"
            ) from None


_CHOICES = {
    "mode": ("local", "team"),
    "signup": ("invite", "open"),
    "smtp_security": ("starttls", "tls", "none"),
}


def _read_secret(path: Path) -> str:
    """A secret from a file (a Compose or Kubernetes secret); errors name the file, not it."""
    try:
        return Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


_BOOLEAN_WORDS = {
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}


def _coerce(setting: Setting, raw: Any, source: str) -> Any:
    if raw is None:
        return raw
    value = raw
    if setting.type is bool and not isinstance(raw, bool):
        # bool("false") is True: read the words people write instead.
        word = str(raw).strip().lower()
        if word not in _BOOLEAN_WORDS:
            raise ValueError(
                f"setting {setting.name} ({source}) must be true or false, got {raw!r}"
            )
        return _BOOLEAN_WORDS[word]
    if not isinstance(raw, setting.type):
        try:
            value = setting.type(raw)
        except (TypeError, ValueError):
            raise ValueError(
                f"setting {setting.name} ({source}) must be a {setting.type.__name__}, got {raw!r}"
            ) from None
    low, high = setting.minimum, setting.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"setting {setting.name} ({source}) must be {bounds}, got {raw!r}")
    return value
