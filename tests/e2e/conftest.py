"""The real `plancast-server` process and the real `plancast` command, on loopback.

The server runs as a subprocess with its own data folder and port; the provider
emulator runs in the test process and the server's SDKs reach it over loopback. On PostgreSQL
(``tests/pg.py``) it gets an empty database of its own, which it migrates at start as a real
deployment would.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from plancast.shared import ProviderCredentials, StartStream, seal_credentials
from tests import pg
from tests.emulator.server import Emulator

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_server(
    data_dir: Path, log: Path, port: int | None = None, env: dict[str, str] | None = None
) -> LiveServer:
    port = port or free_port()
    env = dict(env if env is not None else os.environ)
    env.update(PLANCAST_DATA_DIR=str(data_dir), PLANCAST_PORT=str(port))
    if pg.POSTGRESQL:  # a database of its own, kept for a restart on the same data folder
        env["PLANCAST_DATABASE_URL"] = pg.database_url(data_dir, migrated=False)
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(BIN / "plancast-server")], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, log, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"plancast-server exited early:\n{log.read_text()}")
        try:
            health = httpx.get(server.url + "/api/v1/health", timeout=0.5).json()
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if health.get("workers_ready"):  # the fork server has imported and warmed the SDKs
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"plancast-server did not become healthy:\n{log.read_text()}")


def sealed_start(
    server: LiveServer, credentials: tuple[ProviderCredentials, ...], **fields: Any
) -> StartStream:
    """A ``start`` message as the real client makes it: keys sealed to a fresh worker."""
    token = (server.data_dir / "local-token").read_text().strip()
    response = httpx.post(
        server.url + "/api/v1/seals",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )
    assert response.status_code == 201, response.text
    seal = response.json()
    sealed = seal_credentials(
        credentials,
        public_key=seal["public_key"],
        seal_id=seal["seal_id"],
        expires_at=seal["expires_at"],
    )
    return StartStream(seal_id=seal["seal_id"], sealed=sealed, **fields)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "data", tmp_path / "server.log")
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Cli:
    """Runs `plancast` as a user would, in a project folder, with a provider configured."""

    project: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "plancast"), *args],
            cwd=cwd or self.project,
            env={**os.environ, **self.env, **(env or {})},
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture
def api_key() -> str:
    return "sk-test-" + secrets.token_hex(24)


@pytest.fixture
def cli(tmp_path: Path, live_server: LiveServer, emulator: Emulator, api_key: str) -> Cli:
    project = tmp_path / "project"
    project.mkdir()
    return Cli(
        project,
        {
            "PLANCAST_SERVER": live_server.url,
            "PLANCAST_DATA_DIR": str(live_server.data_dir),
            "PLANCAST_MODEL": "openai/gpt-4.1",
            "OPENAI_API_KEY": api_key,
            "OPENAI_BASE_URL": emulator.base_url_openai,
        },
    )
