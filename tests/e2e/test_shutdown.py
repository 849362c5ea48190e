"""SIGTERM with a stream running: the real ``plancast-server`` shuts down gracefully.

What must hold (issue 9, "Graceful shutdown"; docs/architecture.md, "Operating"): the server
stops taking connections at once (a watching client gets close code 1012), lets the running
stream go on for ``shutdown_grace_s``, and exits with status 0. A stream that ends within the
grace period is saved as ``finished`` with its whole reply; one that does not is cancelled and
saved as ``interrupted`` with its partial reply, which is in the conversation after a restart.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from plancast.shared import (
    MAX_MESSAGE_BYTES,
    SUBPROTOCOL,
    Delta,
    EventBatch,
    Message,
    ProviderCredentials,
    Started,
    StreamEvent,
    decode_server,
    encode,
)
from tests.e2e.conftest import LiveServer, sealed_start, start_server
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import query

pytestmark = pytest.mark.e2e

WAIT = 10.0
EXIT_SLACK_S = 5.0
"""How long the process may take past the grace period: closing sockets, saving the
interrupted stream, stopping the workers."""

TEXT = "".join(
    f"Line {n:03d} of a reply that trickles in while the server stops.\n" for n in range(60)
)
CHUNK_CHARS = 8  # ~480 chunks


def auth(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {(server.data_dir / 'local-token').read_text().strip()}"}


def get(server: LiveServer, path: str) -> Any:
    response = httpx.get(server.url + path, headers=auth(server), timeout=WAIT)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def new_plan(server: LiveServer) -> str:
    with httpx.Client(base_url=server.url, headers=auth(server), timeout=WAIT) as rest:
        project = rest.post("/api/v1/projects", json={"name": "shutdown"}).json()["id"]
        response = rest.post(f"/api/v1/projects/{project}/plans", json={"name": "stopping"})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def open_socket(server: LiveServer) -> ClientConnection:
    return connect(
        server.url.replace("http://", "ws://") + "/api/v1/streams",
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers=auth(server),
        compression=None,
        max_size=MAX_MESSAGE_BYTES,
        open_timeout=WAIT,
    )


def messages(ws: ClientConnection) -> Iterator[Message]:
    """Every message until the server closes the socket; an ``events`` batch one by one."""
    while True:
        try:
            message = decode_server(ws.recv(timeout=WAIT))
        except ConnectionClosed:
            return
        yield from message.events if isinstance(message, EventBatch) else [message]


def run_until_signal(
    server: LiveServer,
    emulator: Emulator,
    plan_id: str,
    deltas: int,
    sig: signal.Signals = signal.SIGTERM,
) -> tuple[str, str, int | None, float]:
    """Start a stream, watch ``deltas`` deltas, send ``sig``: (stream id, text seen, close
    code, when the signal was sent)."""
    credentials = ProviderCredentials(
        "openai", api_key="sk-stop-" + uuid.uuid4().hex, base_url=emulator.base_url_openai
    )
    start = sealed_start(
        server,
        (credentials,),
        request_id=uuid.uuid4().hex,
        plan_id=plan_id,
        mode="chat",
        prompt="Explain it slowly.",
        model="openai/gpt-4.1",
    )
    seen: list[str] = []
    with open_socket(server) as ws:
        ws.send(encode(start))
        stream = messages(ws)
        started = next(stream)
        assert isinstance(started, Started), started
        signalled = 0.0
        for message in stream:
            assert isinstance(message, StreamEvent), message
            if isinstance(message, Delta):
                seen.append(message.text)
            if len(seen) == deltas and not signalled:
                server.process.send_signal(sig)
                signalled = time.monotonic()
        assert signalled, "the stream ended before the signal was sent"
        assert ws.close_code is not None
        return started.stream_id, "".join(seen), ws.close_code, signalled


def exited_within(server: LiveServer, since: float, limit_s: float) -> float:
    returncode = server.process.wait(limit_s + 10)  # fail on the assertion below, not here
    took = time.monotonic() - since
    tail = server.log.read_text()[-3000:]
    assert returncode == 0, tail
    assert took < limit_s, f"exited {took:.1f} s after SIGTERM, more than {limit_s} s\n{tail}"
    return took


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    """Every server process the test starts; each is stopped at the end, whatever happened."""
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[LiveServer], data_dir: Path, log: Path, grace_s: float) -> LiveServer:
    env = dict(os.environ, PLANCAST_SHUTDOWN_GRACE_S=str(grace_s))
    server = start_server(data_dir, log, env=env)
    servers.append(server)
    return server


def test_a_stream_running_at_sigterm_finishes_within_the_grace_period(
    tmp_path: Path, emulator: Emulator, servers: list[LiveServer]
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    grace_s = 30.0
    server = start(servers, data_dir, log, grace_s)
    plan_id = new_plan(server)
    emulator.push(Reply(text=TEXT, chunk_chars=CHUNK_CHARS, trickle=0.005))  # ~2.5 s

    stream_id, seen, close_code, signalled = run_until_signal(server, emulator, plan_id, 20)
    assert close_code == 1012  # "service restart": the socket went, the stream did not
    took = exited_within(server, signalled, grace_s)
    assert took < grace_s / 2, "the server waited out the grace period for a finished stream"
    text = log.read_text()
    assert "shutting down: waiting up to" in text
    assert "interrupting" not in text

    again = start(servers, data_dir, log, grace_s)
    row = get(again, f"/api/v1/streams/{stream_id}")
    assert (row["status"], row["error_code"]) == ("finished", None)
    reply = get(again, f"/api/v1/plans/{plan_id}/convo")["messages"][-1]
    assert (reply["role"], reply["status"], reply["content"]) == ("assistant", "complete", TEXT)
    assert TEXT.startswith(seen) and len(seen) < len(TEXT)


def test_a_stream_outliving_the_grace_period_is_interrupted_and_kept(
    tmp_path: Path, emulator: Emulator, servers: list[LiveServer]
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    grace_s = 1.0
    server = start(servers, data_dir, log, grace_s)
    plan_id = new_plan(server)
    emulator.push(Reply(text=TEXT, chunk_chars=CHUNK_CHARS, trickle=0.05))  # ~24 s

    stream_id, seen, close_code, signalled = run_until_signal(server, emulator, plan_id, 5)
    assert close_code == 1012
    exited_within(server, signalled, grace_s + EXIT_SLACK_S)
    assert "shutting down: interrupting 1 stream(s) still running" in log.read_text()

    again = start(servers, data_dir, log, grace_s)
    row = get(again, f"/api/v1/streams/{stream_id}")
    assert row["status"] == "interrupted"
    messages_ = get(again, f"/api/v1/plans/{plan_id}/convo")["messages"]
    assert [(m["role"], m["status"]) for m in messages_] == [
        ("user", "complete"),
        ("assistant", "partial"),
    ]
    partial = messages_[1]["content"]
    assert TEXT.startswith(partial) and partial.startswith(seen)
    # It went on streaming during the grace period, after the socket had closed.
    assert len(seen) < len(partial) < len(TEXT)


def test_a_second_signal_interrupts_the_streams_at_once(
    tmp_path: Path, emulator: Emulator, servers: list[LiveServer]
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    server = start(servers, data_dir, log, grace_s=60.0)
    plan_id = new_plan(server)
    emulator.push(Reply(text=TEXT, chunk_chars=CHUNK_CHARS, trickle=0.05))  # ~24 s

    # Ctrl-C, then Ctrl-C again once the drain has begun: no waiting out the 60 s.
    stream_id, seen, _, _ = run_until_signal(server, emulator, plan_id, 5, signal.SIGINT)
    deadline = time.monotonic() + WAIT
    while "shutting down: waiting up to" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    server.process.send_signal(signal.SIGINT)
    exited_within(server, time.monotonic(), EXIT_SLACK_S)
    assert "shutting down: interrupting 1 stream(s) still running" in log.read_text()
    assert query(data_dir, "SELECT status FROM streams WHERE id = ?", stream_id) == [
        ("interrupted",)
    ]
