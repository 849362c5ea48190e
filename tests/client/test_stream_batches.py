"""The client's stream socket reads ``events`` batches: each event as if it had its own frame.

A scripted WebSocket server on loopback (websockets' own sync server, in a thread) sends the
frames; ``StreamConnection`` connects to it as it connects to plancast-server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.sync.server import ServerConnection, serve

from plancast.client.api import stream as stream_api
from plancast.client.api.errors import ApiError, ConnectionLost
from plancast.client.api.stream import StreamConnection
from plancast.client.config import ClientConfig
from plancast.shared import (
    MAX_MESSAGE_BYTES,
    SEAL_SUITE,
    SUBPROTOCOL,
    Delta,
    End,
    Error,
    ErrorCode,
    EventBatch,
    Message,
    Pong,
    SealOffer,
    Status,
    StreamEvent,
    encode,
    pack_events,
)

SID = "st_dfan66mbj3a7fcjn"
OTHER = "st_0000000000000000"


@contextmanager
def scripted(frames: list[str]) -> Iterator[ClientConfig]:
    """A server that accepts one connection, sends ``frames`` and waits for the client to go."""

    def handler(ws: ServerConnection) -> None:
        for frame in frames:
            ws.send(frame)
        for _ in ws:  # until the client closes
            pass

    with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        compression=None,
        max_size=MAX_MESSAGE_BYTES,
    ) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.socket.getsockname()[1]
        try:
            yield ClientConfig(f"http://127.0.0.1:{port}", "token")
        finally:
            server.shutdown()
            thread.join(5)


def events_of(frames: list[str], stream_id: str = SID) -> list[StreamEvent]:
    with scripted(frames) as config, StreamConnection(config) as conn:
        return list(conn.events(stream_id))


def stream(count: int, *, text: str = "x", first: int = 1) -> list[StreamEvent]:
    events: list[StreamEvent] = [Status(stream_id=SID, seq=first, stage="planning")]
    events += [Delta(stream_id=SID, seq=first + n, text=text) for n in range(1, count - 1)]
    events.append(End(stream_id=SID, seq=first + count - 1))
    return events


def test_the_events_of_batches_come_one_by_one_and_stop_at_the_end() -> None:
    events = stream(50)
    frames = [
        encode(events[0]),
        encode(EventBatch(stream_id=SID, events=tuple(events[1:20]))),
        encode(events[20]),
        encode(EventBatch(stream_id=SID, events=tuple(events[21:]))),  # the end inside
        encode(Pong(nonce="never read")),
    ]
    assert events_of(frames) == events


def test_frames_near_the_limit_are_read_whole() -> None:
    # A catch-up of ~3 MiB: several batch frames, each close to 1 MiB.
    events = stream(40, text="ü" * 40_000)  # 80 kB of UTF-8 per delta
    frames = list(pack_events(events))
    assert len(frames) >= 3
    assert max(len(f.encode()) for f in frames) > MAX_MESSAGE_BYTES * 0.9
    assert events_of(frames) == events


def test_batches_of_another_stream_are_skipped() -> None:
    mine = stream(6)
    theirs = [Delta(stream_id=OTHER, seq=n, text="no") for n in range(1, 4)]
    frames = [
        encode(EventBatch(stream_id=OTHER, events=tuple(theirs))),
        encode(EventBatch(stream_id=SID, events=tuple(mine[:3]))),
        encode(theirs[0]),
        encode(EventBatch(stream_id=SID, events=tuple(mine[3:]))),
    ]
    assert events_of(frames) == mine


def test_an_error_after_a_batch_still_raises() -> None:
    events = stream(5)[:-1]
    frames = [
        encode(EventBatch(stream_id=SID, events=tuple(events))),
        encode(Error(code=ErrorCode.NOT_FOUND, message="gone", stream_id=SID)),
    ]
    got: list[StreamEvent] = []
    with pytest.raises(ApiError) as caught:
        with scripted(frames) as config, StreamConnection(config) as conn:
            for event in conn.events(SID):
                got.append(event)
    assert caught.value.code == ErrorCode.NOT_FOUND
    assert got == events


def test_receive_hands_over_a_batch_as_one_message() -> None:
    events = stream(4)
    batch = EventBatch(stream_id=SID, events=tuple(events))
    with scripted([encode(batch)]) as config, StreamConnection(config) as conn:
        message: Message = conn.receive(timeout=5)
    assert message == batch


# -- answers to new_seal and start --------------------------------------------------------------


def test_a_seal_is_matched_to_its_request_and_an_error_refuses() -> None:
    offer = SealOffer("r2", "st_n4crwrdtayqrp13w", "key", 1790000060.125, SEAL_SUITE)
    frames = [encode(Pong("x")), encode(offer)]
    with scripted(frames) as config, StreamConnection(config) as conn:
        assert conn.new_seal("r2") == offer  # what came before it is passed over
    refused = [encode(Error(code="busy", message="too many unused seals", request_id="r3"))]
    with scripted(refused) as config, StreamConnection(config) as conn:
        with pytest.raises(ApiError) as info:
            conn.new_seal("r3")
    assert (info.value.code, info.value.message) == (ErrorCode.BUSY, "too many unused seals")


def test_a_server_that_never_answers_is_a_lost_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_api, "ANSWER_TIMEOUT_S", 0.2)
    with scripted([]) as config, StreamConnection(config) as conn:
        started = time.monotonic()
        with pytest.raises(ConnectionLost):
            conn.new_seal("r4")
        assert time.monotonic() - started < 5
