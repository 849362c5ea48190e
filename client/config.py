"""Client settings: where the server is, how to authenticate, which model to use.

Precedence, highest first: command-line flag, environment variable, default.
Everything is read lazily and only once per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:7526"
TOKEN_FILE = "local-token"


def data_dir() -> Path:
    """The local server's data folder (shared with ``plancast-server`` in local mode)."""
    explicit = os.environ.get("PLANCAST_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "plancast"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    server: str
    token: str | None

    @classmethod
    def load(cls, server: str | None = None) -> ClientConfig:
        url = (server or os.environ.get("PLANCAST_SERVER") or DEFAULT_SERVER).rstrip("/")
        token = os.environ.get("PLANCAST_TOKEN") or _read_local_token()
        return cls(url, token)

    @property
    def ws_url(self) -> str:
        scheme, rest = self.server.split("://", 1)
        return ("wss://" if scheme == "https" else "ws://") + rest + "/api/v1/streams"


def _read_local_token() -> str | None:
    try:
        return (data_dir() / TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None
