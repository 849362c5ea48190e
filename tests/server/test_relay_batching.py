"""The relay path: ``events`` batches on the socket, events encoded once, cursors woken once.

What must hold whatever the batching: a client that attaches after N receives exactly the events
after N, in order, each once, in frames no larger than the limit; a catch-up larger than one
frame is split; a live stream's events and a replay from the database alike.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import fields

import pytest
from starlette.testclient import WebSocketTestSession

from plancast.server.config import Settings
from plancast.server.store.crypto import unseal
from plancast.server.streams.eventlog import event_from_row, event_row
from plancast.server.streams.live import LiveStream
from plancast.server.web import websocket
from plancast.server.workers.channel import JOIN_CHARS
from plancast.shared import (
    MAX_MESSAGE_BYTES,
    Attach,
    Delta,
    End,
    EventBatch,
    Message,
    Ping,
    Pong,
    Snapshot,
    Status,
    StreamEvent,
    decode_server,
    encode,
    to_dict,
)
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    WAIT,
    Server,
    check_sequence,
    openai_creds,
    recv_text,
    running,
    send,
    start_message,
)

BIG_CHUNK = 100_000  # characters per delta: ten of them fill a frame


class Frames:
    """A client's view of one connection: raw frames, and their events one by one."""

    def __init__(self, ws: WebSocketTestSession) -> None:
        self.ws = ws
        self.frames: list[str] = []
        self.replayed: list[StreamEvent] = []
        self._pending: list[Message] = []

    def next(self, timeout: float = WAIT) -> Message:
        if not self._pending:
            frame = recv_text(self.ws, timeout)
            assert len(frame.encode("utf-8")) <= MAX_MESSAGE_BYTES
            self.frames.append(frame)
            message = decode_server(frame)
            self._pending = list(message.events) if isinstance(message, EventBatch) else [message]
        return self._pending.pop(0)

    def events_until_end(self, stream_id: str) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        while not events or not isinstance(events[-1], End):
            message = self.next()
            assert isinstance(message, StreamEvent), message
            assert message.stream_id == stream_id
            events.append(message)
        return events

    def nothing_after(self, nonce: str = "after-end") -> None:
        assert not self._pending, self._pending
        send(self.ws, Ping(nonce=nonce))
        assert self.next() == Pong(nonce=nonce)

    def batches(self) -> list[EventBatch]:
        return [m for f in self.frames if isinstance(m := decode_server(f), EventBatch)]


def run_stream(server: Server, plan_id: str, emulator: Emulator, reply: Reply) -> list[StreamEvent]:
    emulator.push(reply)
    with server.connect() as ws:
        client = Frames(ws)
        send(ws, start_message(plan_id, openai_creds(emulator), mode="chat"))
        started = client.next()
        assert not isinstance(started, StreamEvent), started
        events = client.events_until_end(started.stream_id)  # type: ignore[attr-defined]
    check_sequence(events)
    return events


def replay(server: Server, stream_id: str, after: int) -> Frames:
    with server.connect() as ws:
        client = Frames(ws)
        send(ws, Attach(stream_id=stream_id, after=after))
        client.replayed = client.events_until_end(stream_id)
        client.nothing_after()
    return client


# -- over the socket --------------------------------------------------------------------------


def test_reattaching_after_n_gets_exactly_the_rest_across_frames_over_the_limit(
    settings: Settings, emulator: Emulator
) -> None:
    # 25 deltas of 100 kB (each over the most a worker joins: never joined): a catch-up from 0
    # needs at least three frames.
    assert BIG_CHUNK > JOIN_CHARS
    reply = Reply(text="a" * (25 * BIG_CHUNK), chunk_chars=BIG_CHUNK)
    resume_points = (0, 1, 9, 10, 11, 23, 24, 25, 26)
    with running(settings) as first:  # from memory
        events = run_stream(first, first.new_plan(), emulator, reply)
        assert sum(isinstance(e, Delta) for e in events) == 25
        stream_id = events[0].stream_id
        for after in resume_points:
            assert replay(first, stream_id, after).replayed == events[after:], after
        whole = replay(first, stream_id, 0)
        assert len(whole.frames) >= 3 and len(whole.batches()) >= 2
    with running(settings) as fresh:  # from the database: a new process never saw the stream
        assert fresh.app.state.streams.registry.get(stream_id, "org_local") is None
        for after in resume_points:
            assert replay(fresh, stream_id, after).replayed == events[after:], after
        whole = replay(fresh, stream_id, 0)
        assert len(whole.frames) >= 3 and len(whole.batches()) >= 2


def test_a_long_catch_up_of_small_events_comes_in_a_few_frames(settings: Settings) -> None:
    # Emitted here rather than by a model: a worker joins the chunks that reach it together,
    # so a reply of 1-character chunks no longer makes one event per character.
    count = websocket.BATCH_EVENTS + 500  # more events than one read takes: two reads at least
    with running(settings) as server:
        live = LiveStream("st_cccccccccccccccc", "org_local", server.new_plan(), "main")
        live.emit(Status, stage="planning")
        for _ in range(count):
            live.emit(Delta, text="x")
        live.emit(End, status="finished")
        server.app.state.streams.registry.add(live)
        events = live.events
        stream_id = live.id
        for after in (0, 1, 777, websocket.BATCH_EVENTS, len(events) - 3):
            assert replay(server, stream_id, after).replayed == events[after:], after
        client = replay(server, stream_id, 0)
        assert 2 <= len(client.frames) <= 4
        assert sum(len(b.events) for b in client.batches()) == len(events)


def test_every_frame_of_a_live_stream_holds_consecutive_events(
    settings: Settings, emulator: Emulator
) -> None:
    emulator.push(Reply(text="y" * 3000, chunk_chars=1))
    with running(settings) as server:
        plan_id = server.new_plan()
        with server.connect() as ws, server.connect() as late:
            client, other = Frames(ws), Frames(late)
            send(ws, start_message(plan_id, openai_creds(emulator), mode="chat"))
            started = client.next()
            stream_id = started.stream_id  # type: ignore[attr-defined]
            events = client.events_until_end(stream_id)
            send(late, Attach(stream_id=stream_id, after=17))
            assert other.events_until_end(stream_id) == events[17:]
            client.nothing_after()
            other.nothing_after()
    check_sequence(events)
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "y" * 3000


def test_a_client_that_reads_only_after_the_end_gets_every_event_once(
    settings: Settings, emulator: Emulator
) -> None:
    emulator.push(Reply(text="z" * 2000, chunk_chars=1))
    with running(settings) as server:
        plan_id = server.new_plan()
        with server.connect() as ws:
            client = Frames(ws)
            send(ws, start_message(plan_id, openai_creds(emulator), mode="chat"))
            stream_id = client.next().stream_id  # type: ignore[attr-defined]
            server.wait_stream_ended(stream_id)  # the stream ran on while nobody read
            events = client.events_until_end(stream_id)
            client.nothing_after()
    check_sequence(events)


def test_the_sse_route_sends_the_encoded_text_of_each_event(
    settings: Settings, emulator: Emulator
) -> None:
    with running(settings) as server:
        plan_id = server.new_plan()
        events = run_stream(server, plan_id, emulator, Reply(text="ünïcode ✓", chunk_chars=2))
        stream_id = events[0].stream_id
        response = server.client.get(f"/api/v1/streams/{stream_id}/events", headers=server.auth)
        data = [
            line[len("data: ") :]
            for line in response.text.splitlines()
            if line.startswith("data: ")
        ]
        assert data == [encode(e) for e in events]


# -- LiveStream -------------------------------------------------------------------------------


def _fresh(event: StreamEvent) -> StreamEvent:
    return type(event)(**{f.name: getattr(event, f.name) for f in fields(event)})


async def test_emit_encodes_once_and_the_text_is_what_encode_gives() -> None:
    live = LiveStream("st_aaaaaaaaaaaaaaaa", "org", "pl", "main")
    event = live.emit(Delta, text="hello ✓")
    cached = encode(event)
    assert encode(event) is cached
    assert cached == encode(_fresh(event))
    # Too large for a frame: emitted and kept all the same; encoding it is refused as before.
    big = live.emit(Delta, text="x" * (MAX_MESSAGE_BYTES + 1))
    assert live.events[-1] is big
    assert event_from_row(**_row_args(event_row(big))) == big


def _row_args(row: dict[str, object]) -> dict[str, object]:
    return {
        "stream_id": row["stream_id"],
        "seq": row["seq"],
        "kind": row["type"],
        "data": unseal(str(row["data"]), "stream_events.data"),  # stored encrypted
    }


async def test_a_watcher_reads_what_is_ready_as_one_slice_and_wakes_once_per_emit() -> None:
    live = LiveStream("st_aaaaaaaaaaaaaaaa", "org", "pl", "main")
    for n in range(5):
        live.emit(Delta, text=str(n))
    slices: list[list[int]] = []

    async def watch() -> None:
        async for batch in live.follow_slices(2):
            slices.append([e.seq for e in batch])

    task = asyncio.create_task(watch())
    await asyncio.sleep(0)
    assert slices == [[3, 4, 5]]
    live.emit(Delta, text="a")
    live.emit(Delta, text="b")  # before the watcher runs: one wake, one slice
    await asyncio.sleep(0)
    assert slices == [[3, 4, 5], [6, 7]]
    live.emit(End)
    await asyncio.wait_for(task, WAIT)
    assert slices == [[3, 4, 5], [6, 7], [8]]


async def test_an_after_beyond_every_seq_ends_with_the_stream_and_gets_nothing() -> None:
    live = LiveStream("st_aaaaaaaaaaaaaaaa", "org", "pl", "main")
    live.emit(Status, stage="planning")
    got: list[StreamEvent] = []

    async def watch() -> None:
        async for event in live.follow(10**9):
            got.append(event)

    task = asyncio.create_task(watch())
    await asyncio.sleep(0)
    live.emit(Delta, text="a")
    live.emit(End)
    await asyncio.wait_for(task, WAIT)
    assert got == []
    past = [e async for e in live.follow(10**9)]  # once ended: the end again
    assert past == [live.events[-1]]


async def test_watchers_that_wait_share_one_flag_and_all_wake() -> None:
    live = LiveStream("st_aaaaaaaaaaaaaaaa", "org", "pl", "main")
    got: dict[int, list[int]] = {n: [] for n in range(3)}

    async def watch(n: int) -> None:
        async for event in live.follow(0):
            got[n].append(event.seq)

    tasks = [asyncio.create_task(watch(n)) for n in range(3)]
    await asyncio.sleep(0)
    for text in "abc":
        live.emit(Delta, text=text)
        await asyncio.sleep(0)
    live.emit(End)
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
    assert got == {n: [1, 2, 3, 4] for n in range(3)}


# -- the event log ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        Status(stream_id="st_aaaaaaaaaaaaaaaa", seq=1, stage="planning", detail="openai/x"),
        Delta(stream_id="st_aaaaaaaaaaaaaaaa", seq=2, text='"quoted"\n\\ ✓ \u2028'),
        End(stream_id="st_aaaaaaaaaaaaaaaa", seq=3, status="stopped", error_message="é"),
        Snapshot(stream_id="st_aaaaaaaaaaaaaaaa", seq=3, reply="r", reason="gone"),
    ],
    ids=lambda e: e.TYPE,
)
def test_stored_rows_keep_their_format_and_rebuild_the_same_frame(event: StreamEvent) -> None:
    row = event_row(event)
    data = to_dict(event)
    for key in ("type", "stream_id", "seq"):
        del data[key]
    assert str(row["data"]).startswith("pce1:")  # stored encrypted (store/crypto.py)
    assert row | {"data": unseal(str(row["data"]), "stream_events.data")} == {
        "stream_id": event.stream_id,
        "seq": event.seq,
        "type": event.TYPE,
        "data": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
    }
    rebuilt = event_from_row(**_row_args(row))
    assert rebuilt == event
    assert encode(rebuilt) == encode(_fresh(event))
