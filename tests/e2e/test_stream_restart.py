"""The server process dies mid-stream (SIGKILL) and starts again on the same data folder.

What must hold afterwards (issue 3, "Durability"; docs/architecture.md, "When a stream does not
finish"): the stream is marked ``interrupted``; its partial reply, at least everything older
than one flush interval, is in the conversation; a client that attaches gets the stored events
and an ``interrupted`` ``end``, whatever ``after`` it sends; ``continue`` on the plan finishes;
and SQLite's own integrity check passes.
"""

from __future__ import annotations

import signal
import sqlite3
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from plancast.shared import (
    MAX_MESSAGE_BYTES,
    SUBPROTOCOL,
    Attach,
    ChangeEvent,
    Delta,
    End,
    EventBatch,
    Message,
    Ping,
    Pong,
    ProviderCredentials,
    Started,
    StartStream,
    StreamEvent,
    decode_server,
    encode,
)
from tests import pg
from tests.e2e.conftest import LiveServer, sealed_start, start_server
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

MS = 0.001
WAIT = 10_000 * MS
FLUSHED = 300 * MS
"""Comfortably more than the default event flush interval (50 ms): older events are stored."""

PROMPT = "Write the modules, then explain them at length."
BLOCK = '<pc:file path="kept.py">\nKEPT = True\n</pc:file>\n'
TEXT = (
    "First the module that must survive.\n"
    + BLOCK
    + "".join(f"Line {i:03d} of a long explanation that trickles in.\n" for i in range(120))
)
CHUNK_CHARS = 4
TRICKLE = 5 * MS  # ~1600 chunks: ~8 s of stream, killed after ~1.5 s
KILL_AFTER_DELTAS = 250


def ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/api/v1/streams"


def auth(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {(server.data_dir / 'local-token').read_text().strip()}"}


def open_socket(server: LiveServer) -> ClientConnection:
    return connect(
        ws_url(server),
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers=auth(server),
        compression=None,
        max_size=MAX_MESSAGE_BYTES,
        open_timeout=WAIT,
        max_queue=None,
    )


_PENDING: weakref.WeakKeyDictionary[ClientConnection, list[Message]] = weakref.WeakKeyDictionary()
"""The rest of the last ``events`` batch, per connection (keyed by the connection, not its
``id()``, which a later connection may reuse)."""


def receive(ws: ClientConnection) -> Message:
    """The next message; the events of an ``events`` batch come one by one, in order."""
    pending = _PENDING.setdefault(ws, [])
    if not pending:
        message = decode_server(ws.recv(timeout=WAIT))
        if not isinstance(message, EventBatch):
            return message
        pending.extend(message.events)
    return pending.pop(0)


def events_until_end(ws: ClientConnection, stream_id: str) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    while not events or not isinstance(events[-1], End):
        message = receive(ws)
        assert isinstance(message, StreamEvent) and message.stream_id == stream_id, message
        events.append(message)
    ws.send(encode(Ping(nonce="after-end")))
    assert receive(ws) == Pong(nonce="after-end"), "something came after the end"
    return events


def get(server: LiveServer, path: str) -> Any:
    response = httpx.get(server.url + path, headers=auth(server), timeout=WAIT)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def new_plan(server: LiveServer) -> str:
    with httpx.Client(base_url=server.url, headers=auth(server), timeout=WAIT) as rest:
        project = rest.post("/api/v1/projects", json={"name": "restart"}).json()["id"]
        response = rest.post(f"/api/v1/projects/{project}/plans", json={})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def start(
    server: LiveServer, emulator: Emulator, plan_id: str, mode: str, prompt: str
) -> StartStream:
    creds = ProviderCredentials(
        "openai", api_key="sk-restart-" + uuid.uuid4().hex, base_url=emulator.base_url_openai
    )
    return sealed_start(
        server,
        (creds,),
        request_id=uuid.uuid4().hex,
        plan_id=plan_id,
        mode=mode,
        prompt=prompt,
        model="openai/gpt-4.1",
    )


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[LiveServer]]:
    """Every server process the test starts; each is stopped at the end, whatever happened."""
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def test_a_stream_killed_with_its_server_is_interrupted_kept_and_continuable(
    tmp_path: Path, emulator: Emulator, servers: list[LiveServer]
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    first = start_server(data_dir, log)
    servers.append(first)
    plan_id = new_plan(first)
    reply = Reply(text=TEXT, chunk_chars=CHUNK_CHARS, trickle=TRICKLE)
    assert len(reply.pieces()) * TRICKLE > 5  # the stream would run for seconds yet
    emulator.push(reply)

    # -- run the stream, watch part of it, then kill the server without warning --------------
    seen: list[StreamEvent] = []
    with open_socket(first) as ws:
        request = start(first, emulator, plan_id, "tell", PROMPT)
        ws.send(encode(request))
        started = receive(ws)
        assert isinstance(started, Started), started
        stream_id = started.stream_id
        while sum(isinstance(e, Delta) for e in seen) < KILL_AFTER_DELTAS:
            message = receive(ws)
            assert isinstance(message, StreamEvent), message
            assert not isinstance(message, End), "the stream ended before the kill"
            seen.append(message)
        flushed_text = "".join(e.text for e in seen if isinstance(e, Delta))
        time.sleep(FLUSHED)
        first.process.kill()
        first.process.wait(WAIT)
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    live_changes = [e for e in seen if isinstance(e, ChangeEvent)]
    assert [(c.path, c.op) for c in live_changes] == [("kept.py", "write")]

    # -- the same data folder, a new process: recovery runs at start -----------------------
    if pg.POSTGRESQL:
        # Replicas share a PostgreSQL database, so a server starting there takes over only
        # the streams whose lease ran out (30 s after the kill): as if that time had passed.
        pg.query(data_dir, "UPDATE streams SET lease_expires_at = 0 WHERE status = 'running'")
    second = start_server(data_dir, log)
    servers.append(second)
    row = get(second, f"/api/v1/streams/{stream_id}")
    assert row["status"] == "interrupted", row
    assert row["ended_at"] is not None

    messages = get(second, f"/api/v1/plans/{plan_id}/convo")["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "partial"),
    ]
    assert messages[0]["content"] == PROMPT
    partial = messages[1]["content"]
    assert messages[1]["stream_id"] == stream_id
    assert TEXT.startswith(partial), "the kept reply is not a prefix of what the model sent"
    assert partial.startswith(flushed_text), (
        f"events older than a flush interval were lost: kept {len(partial)} characters, "
        f"the client had seen {len(flushed_text)} {FLUSHED}s before the kill"
    )
    assert len(partial) < len(TEXT)

    # The complete block became a pending change, with the id clients saw live.
    pending = get(second, f"/api/v1/plans/{plan_id}/changes")["changes"]
    assert [(c["id"], c["path"], c["status"]) for c in pending] == [
        (live_changes[0].change_id, "kept.py", "pending")
    ]

    # -- attaching after the restart --------------------------------------------------------
    with open_socket(second) as ws:
        ws.send(encode(Attach(stream_id=stream_id, after=0)))
        stored = events_until_end(ws, stream_id)
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
        end = stored[-1]
        assert isinstance(end, End)
        assert (end.status, end.seq, end.changes) == ("interrupted", row["last_seq"], 1)
        assert "".join(e.text for e in stored if isinstance(e, Delta)) == partial
        # What was stored is what clients saw live, event for event (the end may take the
        # seq of an event that was lost, docs/protocol.md rule 6).
        common = min(len(seen), len(stored) - 1)
        assert stored[:common] == seen[:common]

        # The client that was watching resumes from its last seq, and still learns the end.
        ws.send(encode(Attach(stream_id=stream_id, after=seen[-1].seq)))
        resumed = events_until_end(ws, stream_id)
        assert resumed[-1] == end
        assert resumed[:-1] == stored[seen[-1].seq : -1]

    # -- continue picks up from the partial reply -------------------------------------------
    emulator.push(Reply(text="And the rest.\n", chunk_chars=5))
    with open_socket(second) as ws:
        ws.send(encode(start(second, emulator, plan_id, "continue", "")))
        started = receive(ws)
        assert isinstance(started, Started), started
        events = events_until_end(ws, started.stream_id)
    end = events[-1]
    assert isinstance(end, End) and end.status == "finished", end
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "And the rest.\n"
    sent = emulator.last_request.messages
    assert {"role": "assistant", "content": partial} in sent, "continue did not send the partial"
    messages = get(second, f"/api/v1/plans/{plan_id}/convo")["messages"]
    assert [(m["role"], m["status"], m["content"]) for m in messages[1:]] == [
        ("assistant", "partial", partial),
        ("assistant", "complete", "And the rest.\n"),
    ]
    assert get(second, f"/api/v1/streams/{started.stream_id}")["status"] == "finished"

    # -- nothing is corrupted ----------------------------------------------------------------
    second.stop()  # SIGTERM; uvicorn re-raises it once its shutdown is complete
    assert second.process.returncode in (0, -signal.SIGTERM), log.read_text()[-2000:]
    assert log.read_text().count("Application shutdown complete") == 1  # the first was killed
    if pg.POSTGRESQL:  # PostgreSQL's WAL replay after a crash is its own; read the rows
        statuses = pg.query(data_dir, "SELECT status FROM streams ORDER BY started_at")
        indexes = {name for (name,) in pg.query(data_dir, "SELECT indexname FROM pg_indexes")}
    else:
        with closing(sqlite3.connect(data_dir / "plancast.db")) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
            statuses = db.execute("SELECT status FROM streams ORDER BY started_at").fetchall()
            indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert statuses == [("interrupted",), ("finished",)]
    # One running stream per branch: the index that enforces it survived the crash.
    assert "uq_streams_running_branch" in indexes
