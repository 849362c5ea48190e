"""Following a stream over Server-Sent Events, and resuming with Last-Event-ID."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from plancast.shared import End, decode_server, encode
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    Server,
    load_settings,
    openai_creds,
    running,
    start_message,
    start_stream,
)


def read_sse(server: Server, stream_id: str, **headers: str) -> list[dict[str, Any]]:
    """Each SSE message as {id, event, data}, until the stream's end."""
    messages: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with server.client.stream(
        "GET", f"/api/v1/streams/{stream_id}/events", headers=server.auth | headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                continue  # a keep-alive comment
            if not line:
                if current:
                    messages.append(current)
                    if current["event"] == "end":
                        return messages
                current = {}
                continue
            field, _, value = line.partition(": ")
            current[field] = value
    return messages


def test_replays_a_finished_stream_and_resumes_after_last_event_id(
    data_dir: Path, emulator: Emulator
) -> None:
    emulator.push(Reply(text="one two three four five", chunk_chars=4))
    with running(load_settings(data_dir)) as server:
        events = server.run_stream(start_message(server.new_plan(), openai_creds(emulator)))
        stream_id = events[0].stream_id
        sse = read_sse(server, stream_id)
        assert [int(m["id"]) for m in sse] == [e.seq for e in events]
        assert [m["event"] for m in sse] == [e.TYPE for e in events]
        assert [decode_server(m["data"]) for m in sse] == events  # the same frames as the socket
        tail = read_sse(server, stream_id, **{"Last-Event-ID": str(len(events) - 2)})
        assert [int(m["id"]) for m in tail] == [len(events) - 1, len(events)]


def test_follows_a_running_stream_to_its_end(data_dir: Path, emulator: Emulator) -> None:
    text = "slowly arriving words " * 6
    emulator.push(Reply(text=text, chunk_chars=6, trickle=0.02))
    with running(load_settings(data_dir)) as server:
        with server.connect() as ws:
            started = start_stream(ws, start_message(server.new_plan(), openai_creds(emulator)))
            sse = read_sse(server, started.stream_id)
        deltas = [json.loads(m["data"])["text"] for m in sse if m["event"] == "delta"]
        assert "".join(deltas) == text
        assert isinstance(decode_server(sse[-1]["data"]), End)


def test_errors_have_the_one_shape(data_dir: Path) -> None:
    with running(load_settings(data_dir)) as server:
        missing = server.get("/api/v1/streams/st_unknown/events")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        anonymous = server.client.get("/api/v1/streams/st_unknown/events")
        assert anonymous.status_code == 401
        bad = server.get("/api/v1/streams/st_unknown/events", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"


def test_sse_frames_never_carry_credentials(data_dir: Path, emulator: Emulator) -> None:
    creds = openai_creds(emulator)
    with running(load_settings(data_dir)) as server:
        events = server.run_stream(start_message(server.new_plan(), creds))
        raw = json.dumps(read_sse(server, events[0].stream_id))
        assert creds.api_key and creds.api_key not in raw
        assert all(creds.api_key not in encode(e) for e in events)
