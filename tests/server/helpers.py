"""Helpers for the server tests: the app in-process, its REST client and its stream socket.

The app runs under Starlette's ``TestClient`` (STYLE 20): its lifespan (migrations, the local
principal, the token file) runs on entering the client, and every WebSocket session shares the
client's event loop, so streams keep running in the background while a test thread waits.

Every wait is bounded: ``recv`` gives up after ``WAIT`` instead of hanging the suite when the
server never sends what a test expects.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.testclient import TestClient, WebSocketTestSession

from plancast.server.app import create_app
from plancast.server.config import Settings
from plancast.server.workers.forkserver import ForkServer
from plancast.shared import (
    SUBPROTOCOL,
    Delta,
    End,
    Error,
    EventBatch,
    Message,
    ProviderCredentials,
    Started,
    StartStream,
    StreamEvent,
    decode_server,
    encode,
    seal_credentials,
)
from tests import pg
from tests.emulator.server import Emulator
from tests.pg import database_url

# The server refuses Host names other than loopback ones (web/hosts.py), and the
# test client's WebSocket URLs default to ws://testserver: name the host.
STREAMS_URL = "ws://127.0.0.1/api/v1/streams"
MS = 0.001
"""One millisecond: every timeout here is a multiple of it, so a slow machine can scale them."""

WAIT = 5000 * MS
"""The longest a test waits for something the server should send soon."""

OPENAI_MODEL = "openai/gpt-4.1"
ANTHROPIC_MODEL = "anthropic/claude-emulated"  # the SDK warns on retired names

FILE_REPLY = (
    "I will add a module and fix the readme.\n"
    '<pc:file path="src/app.py">\n'
    "def main():\n"
    "    return 42\n"
    "</pc:file>\n"
    '<pc:edit path="README.md">\n'
    "<pc:find>\n"
    "old line\n"
    "</pc:find>\n"
    "<pc:replace>\n"
    "new line\n"
    "</pc:replace>\n"
    "</pc:edit>\n"
    "Done.\n"
)
"""A reply with one whole-file block and one edit block: two changes in tell mode."""


def new_key(prefix: str = "sk-test-") -> str:
    """A random provider key that can appear nowhere by chance."""
    return prefix + secrets.token_hex(24)


def load_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test server: fast event flushes, a short provider timeout.

    The database is the test backend's for ``data_dir`` (``tests/pg.py``): the SQLite file in it,
    or the PostgreSQL database made for it, the same one again for a restarted server.
    """
    values: dict[str, Any] = {
        "data_dir": str(data_dir),
        "database_url": database_url(data_dir),
        "event_flush_ms": 10,
        "provider_timeout_s": 5.0,
    }
    values.update(overrides)
    return Settings.load(values, environ={})


@dataclass
class Server:
    """A running app and what a client needs to talk to it."""

    client: TestClient
    settings: Settings
    auth: dict[str, str]

    @property
    def app(self) -> Starlette:
        app = self.client.app
        assert isinstance(app, Starlette)
        return app

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    # -- REST -----------------------------------------------------------------------------

    def get(
        self, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self.client.get(path, headers=self.auth | (headers or {}), **kwargs)

    def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self.client.post(path, json=body, headers=self.auth | (headers or {}), **kwargs)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        """A request that must succeed; returns its JSON."""
        response = self.client.request(method, path, json=body, headers=self.auth)
        assert response.status_code in (200, 201), (response.status_code, response.text)
        return response.json()

    def new_project(self, name: str = "demo") -> str:
        return str(self.ok("POST", "/api/v1/projects", {"name": name})["id"])

    def new_plan(self, project_id: str | None = None, name: str | None = None) -> str:
        project_id = project_id or self.new_project()
        body = {} if name is None else {"name": name}
        return str(self.ok("POST", f"/api/v1/projects/{project_id}/plans", body)["id"])

    def convo(self, plan_id: str) -> list[dict[str, Any]]:
        return list(self.ok("GET", f"/api/v1/plans/{plan_id}/convo")["messages"])

    def changes(self, plan_id: str, status: str = "pending") -> list[dict[str, Any]]:
        return list(self.ok("GET", f"/api/v1/plans/{plan_id}/changes?status={status}")["changes"])

    def streams(self, plan_id: str) -> list[dict[str, Any]]:
        return list(self.ok("GET", f"/api/v1/plans/{plan_id}/streams")["streams"])

    def stream_row(self, stream_id: str) -> dict[str, Any]:
        return dict(self.ok("GET", f"/api/v1/streams/{stream_id}"))

    def wait_stream_ended(self, stream_id: str, timeout: float = WAIT) -> dict[str, Any]:
        """Poll the stream's row until it is no longer running."""
        row: dict[str, Any] = {}

        def ended() -> bool:
            nonlocal row
            row = self.stream_row(stream_id)
            return row["status"] != "running"

        wait_until(ended, timeout)
        return row

    # -- WebSocket ------------------------------------------------------------------------

    def connect(
        self, headers: dict[str, str] | None = None, subprotocols: list[str] | None = None
    ) -> WebSocketTestSession:
        ws = self.client.websocket_connect(
            STREAMS_URL,
            subprotocols=[SUBPROTOCOL] if subprotocols is None else subprotocols,
            headers=self.auth if headers is None else headers,
        )
        ws.plancast_server = self  # type: ignore[attr-defined]  # for send(ws, StartRequest)
        return ws

    def new_seal(self) -> dict[str, Any]:
        """``POST /api/v1/seals``: one worker's public key, good for one start."""
        return dict(self.ok("POST", "/api/v1/seals"))

    def seal(self, start: StartRequest, seal: dict[str, Any] | None = None) -> StartStream:
        """``start`` as a client sends it: its credentials sealed to ``seal`` (else a new one)."""
        seal = seal or self.new_seal()
        sealed = seal_credentials(
            start.credentials,
            public_key=seal["public_key"],
            seal_id=seal["seal_id"],
            expires_at=seal["expires_at"],
        )
        return StartStream(seal_id=seal["seal_id"], sealed=sealed, **start.fields)

    def worker_pids(self) -> list[int]:
        """The live worker processes: idle, reserved by a seal, or running a stream."""
        return list(self.app.state.workers.pids())

    def run_stream(self, start: StartRequest, timeout: float = WAIT) -> list[StreamEvent]:
        """Start a stream on a fresh connection and collect its events up to ``end``."""
        with self.connect() as ws:
            started = start_stream(ws, start)
            return collect(ws, started.stream_id, timeout=timeout)


@contextmanager
def running(settings: Settings) -> Iterator[Server]:
    """Build the app and run it (lifespan included) until the block exits."""
    app = create_app(settings)
    # A loopback base URL: the server refuses other Host names (HostCheck).
    with TestClient(app, base_url="http://127.0.0.1") as client:
        auth = {}
        if settings.mode == "local":  # team mode has no local token: tests sign in
            token = (settings.data_dir / "local-token").read_text().strip()
            auth = {"Authorization": f"Bearer {token}"}
        yield Server(client, settings, auth)


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(10 * MS)


# -- the stream protocol --------------------------------------------------------------------


def send(ws: WebSocketTestSession, message: Message | StartRequest) -> None:
    """Send one message; a ``StartRequest`` is sealed first, through the ws's server."""
    if isinstance(message, StartRequest):
        message = ws.plancast_server.seal(message)  # type: ignore[attr-defined]
    ws.send_text(encode(message))


def recv_text(ws: WebSocketTestSession, timeout: float = WAIT) -> str:
    """The next text frame, or ``TimeoutError``; a close raises ``WebSocketDisconnect``.

    ``WebSocketTestSession.receive`` blocks forever, so this waits on the session's own
    queue inside its event loop with a deadline (private attributes of the test client).
    """

    async def receive() -> Any:
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()

    message = ws.portal.call(receive)
    ws._raise_on_close(message)
    return str(message["text"])


def recv(ws: WebSocketTestSession, timeout: float = WAIT) -> Message:
    """The next message; the events of an ``events`` batch come one by one, in order."""
    pending: list[Message] = ws.__dict__.setdefault("plancast_pending", [])
    if not pending:
        message = decode_server(recv_text(ws, timeout))
        if not isinstance(message, EventBatch):
            return message
        pending.extend(message.events)
    return pending.pop(0)


def expect_error(ws: WebSocketTestSession, timeout: float = WAIT) -> Error:
    message = recv(ws, timeout)
    assert isinstance(message, Error), message
    return message


def start_stream(ws: WebSocketTestSession, start: StartRequest) -> Started:
    send(ws, start)
    message = recv(ws)
    assert isinstance(message, Started), message
    assert message.request_id == start.request_id
    return message


def collect(
    ws: WebSocketTestSession,
    stream_id: str,
    *,
    until: Callable[[StreamEvent], bool] | None = None,
    timeout: float = WAIT,
) -> list[StreamEvent]:
    """Events of one stream, in arrival order, up to ``end`` (or up to ``until``)."""
    events: list[StreamEvent] = []
    deadline = time.monotonic() + timeout
    while True:
        message = recv(ws, max(deadline - time.monotonic(), 0.0))
        assert isinstance(message, StreamEvent), message
        assert message.stream_id == stream_id
        events.append(message)
        if isinstance(message, End) or (until is not None and until(message)):
            return events


def check_sequence(events: list[StreamEvent], first: int = 1) -> End:
    """Numbered ``first``..N with no gap or duplicate, ending with exactly one ``end``."""
    assert [e.seq for e in events] == list(range(first, first + len(events)))
    ends = [e for e in events if isinstance(e, End)]
    assert len(ends) == 1 and events[-1] is ends[0], events
    return ends[0]


def reply_text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


def openai_creds(emulator: Emulator, key: str | None = None) -> ProviderCredentials:
    return ProviderCredentials(
        "openai", api_key=key or new_key(), base_url=emulator.base_url_openai
    )


def anthropic_creds(emulator: Emulator, key: str | None = None) -> ProviderCredentials:
    return ProviderCredentials(
        "anthropic", api_key=key or new_key("sk-ant-test-"), base_url=emulator.base_url_anthropic
    )


def start_message(
    plan_id: str,
    credentials: ProviderCredentials | None,
    *,
    mode: str = "tell",
    prompt: str = "Add a main function.",
    model: str | None = None,
    request_id: str | None = None,
    branch: str = "main",
    fallback_model: str | None = None,
    extra_credentials: tuple[ProviderCredentials, ...] = (),
) -> StartRequest:
    if model is None:
        provider = credentials.provider if credentials else "openai"
        model = ANTHROPIC_MODEL if provider == "anthropic" else OPENAI_MODEL
    return StartRequest(
        fields={
            "request_id": request_id or uuid.uuid4().hex,
            "plan_id": plan_id,
            "mode": mode,
            "prompt": prompt,
            "model": model,
            "branch": branch,
            "fallback_model": fallback_model,
        },
        credentials=((credentials,) if credentials else ()) + extra_credentials,
    )


@dataclass(frozen=True)
class StartRequest:
    """A stream start as a test writes it: the ``start`` fields and plain credentials.

    ``send`` seals the credentials to a fresh worker (``POST /api/v1/seals``) just
    before sending, as the real client does; a seal is good for one start.
    """

    fields: dict[str, Any]
    credentials: tuple[ProviderCredentials, ...] = ()

    @property
    def request_id(self) -> str:
        return str(self.fields["request_id"])

    @property
    def plan_id(self) -> str:
        return str(self.fields["plan_id"])

    def with_fields(self, **changes: Any) -> StartRequest:
        """The same start with some ``start`` fields changed (``dataclasses.replace`` style)."""
        return replace(self, fields=self.fields | changes)

    def with_credentials(self, *credentials: ProviderCredentials) -> StartRequest:
        """The same start, sealing ``credentials`` instead."""
        return replace(self, credentials=credentials)


# -- worker processes -----------------------------------------------------------------------


def process_gone(pid: int) -> bool:
    """No process ``pid`` (workers are reaped by the kernel, so no zombie lingers in /proc)."""
    return not Path(f"/proc/{pid}").exists()


def wait_process_gone(pid: int, timeout: float = WAIT) -> None:
    wait_until(lambda: process_gone(pid), timeout)


@contextmanager
def fresh_forkserver(stderr: Path) -> Iterator[ForkServer]:
    """A fork server of the test's own, started now, for the apps built inside the block.

    The process normally shares one fork server, started by whichever test came first; this one
    sees today's environment, and its stderr (so every worker's log) goes to the file
    ``stderr``. The shared one is back afterwards.
    """
    saved = ForkServer._shared
    fd = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    saved_stderr = os.dup(2)
    try:
        os.dup2(fd, 2)  # inherited by the fork server (Popen), so by every worker it forks
        with ForkServer._shared_lock:
            forkserver = ForkServer._shared = ForkServer()
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(fd)
    try:
        yield forkserver
    finally:
        forkserver.close()
        with ForkServer._shared_lock:
            ForkServer._shared = saved


# -- the database, read directly ------------------------------------------------------------


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run ``sql`` (``?`` placeholders) on the app's database directly, as an operator would.

    SQLite through the standard library; PostgreSQL through asyncpg, outside the app's pool.
    A statement that writes is committed before this returns.
    """
    if pg.POSTGRESQL:
        return pg.query(data_dir, sql, *params)
    with closing(sqlite3.connect(data_dir / "plancast.db", timeout=10)) as db, db:
        return list(db.execute(sql, params))


def text_cells(data_dir: Path) -> dict[str, list[str]]:
    """Every text value of every table of the app's database, as an operator would read it."""
    if pg.POSTGRESQL:
        listing = (
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
    else:
        listing = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return {
        table: [
            value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
            for row in query(data_dir, f'SELECT * FROM "{table}"')
            for value in row
            if isinstance(value, (str, bytes))
        ]
        for (table,) in query(data_dir, listing)
    }
