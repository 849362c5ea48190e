"""Chaos: streams of thousands of events while clients attach, drop and reattach at random.

The real ``plancast-server`` process runs several streams at once, each a reply of thousands of
small deltas from the provider emulator. Many protocol-level clients (the ``websockets`` asyncio
client, nothing of plancast's own client) attach to them, drop their connection at random points
(a clean close, or the transport torn down with no close frame) and reattach with ``after`` = the
last ``seq`` they saw. Every client must end with exactly the stream's events: seq 1..N with no
gap and no duplicate, exactly one ``end``, and the deltas joined in order equal to the scripted
reply (DESIGN invariant 1; docs/protocol.md, "Sequence numbers and attaching").

The random choices come from one seeded RNG, so a failure names the seed and the client; the
interleaving with the server is still real concurrency.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from plancast.shared import (
    MAX_MESSAGE_BYTES,
    SUBPROTOCOL,
    Attach,
    ChangeEvent,
    Delta,
    End,
    Error,
    EventBatch,
    Message,
    Ping,
    Pong,
    ProviderCredentials,
    Started,
    Status,
    StreamEvent,
    decode_server,
    encode,
)
from tests.e2e.conftest import LiveServer, sealed_start
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

SEED = 20261107
MS = 0.001
RECV_TIMEOUT = 10_000 * MS
"""The longest a client waits for the next frame of a stream that is still running."""
TEST_DEADLINE = 45_000 * MS
"""The whole scenario, streams included, must be over by then."""

STREAMS = 4
WATCHERS_PER_STREAM = 5
DROPS_PER_WATCHER = 3
DROP_WITHIN = 300
"""A watcher drops its connection after 0..DROP_WITHIN events; three drops fit in one stream,
even when its worker joined most of its chunks (it joins those that reach it together, as a
busy machine makes them do): the check below says so if they did not."""
CHUNK_CHARS = 3
LINES = 320
TRICKLE = 1 * MS


def scripted_text(k: int) -> str:
    """~10k characters, every position distinct, with one file block so changes are numbered too."""
    lines = [f"s{k} l{i:03d}: " + " ".join(f"w{i}.{j}" for j in range(3)) for i in range(LINES)]
    block = [f'<pc:file path="chaos/s{k}.txt">', f"stream {k}", "</pc:file>"]
    middle = LINES // 2
    return "\n".join(lines[:middle] + block + lines[middle:]) + "\n"


def scripted_reply(k: int, trickle: float = TRICKLE) -> Reply:
    return Reply(text=scripted_text(k), chunk_chars=CHUNK_CHARS, trickle=trickle)


# -- a bare protocol client ------------------------------------------------------------------


def ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/api/v1/streams"


def token(server: LiveServer) -> str:
    return (server.data_dir / "local-token").read_text().strip()


@asynccontextmanager
async def open_socket(server: LiveServer) -> AsyncIterator[ClientConnection]:
    async with connect(
        ws_url(server),
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers={"Authorization": f"Bearer {token(server)}"},
        compression=None,
        max_size=MAX_MESSAGE_BYTES,
        open_timeout=RECV_TIMEOUT,
        # Read frames off the socket even when the test is not asking for them: otherwise a
        # client that stops reading mid-stream cannot see the server's close frame behind the
        # queued events, and a clean close waits out the whole close_timeout.
        max_queue=None,
    ) as ws:
        yield ws


_PENDING: weakref.WeakKeyDictionary[ClientConnection, list[Message]] = weakref.WeakKeyDictionary()
"""The rest of the last ``events`` batch, per connection. Keyed by the connection itself, not
its ``id()``: a new connection may reuse a dropped one's address, and must not inherit what
was left unread on it."""


async def receive(ws: ClientConnection) -> Message:
    """The next message; the events of an ``events`` batch come one by one, in order."""
    pending = _PENDING.setdefault(ws, [])
    if not pending:
        message = decode_server(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
        if not isinstance(message, EventBatch):
            return message
        pending.extend(message.events)
    return pending.pop(0)


async def ping_is_next(ws: ClientConnection, nonce: str) -> None:
    """Nothing else is queued: the next frame after a ping is its pong (so no second ``end``)."""
    await ws.send(encode(Ping(nonce=nonce)))
    message = await receive(ws)
    assert message == Pong(nonce=nonce), f"expected only the pong, got {message!r}"


# -- the scenario ----------------------------------------------------------------------------


@dataclass
class Watcher:
    """One client of one stream: everything it received, over all its connections, in order."""

    name: str
    stream_id: str
    rng: random.Random
    events: list[StreamEvent] = field(default_factory=list, repr=False)
    connections: int = 0
    drops: int = 0
    # (wall-clock time, after) of each attach: comparable with the server's ended_at.
    attaches: list[tuple[float, int]] = field(default_factory=list)

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0

    @property
    def done(self) -> bool:
        return bool(self.events) and isinstance(self.events[-1], End)


async def watch(server: LiveServer, w: Watcher, *, start_within: float, drops: int) -> None:
    """Attach, drop ``drops`` times at random, reattach after the last seq, until ``end``."""
    await asyncio.sleep(w.rng.uniform(0, start_within))
    while not w.done:
        w.connections += 1
        assert w.connections <= drops + 1, f"{w.name}: needed more connections than planned"
        drop_after = w.rng.randint(0, DROP_WITHIN) if w.drops < drops else None
        abrupt = w.rng.random() < 0.5
        after = w.last_seq
        w.attaches.append((time.time(), after))
        async with open_socket(server) as ws:
            await ws.send(encode(Attach(stream_id=w.stream_id, after=after)))
            received = 0
            while not w.done:
                if drop_after is not None and received >= drop_after:
                    w.drops += 1
                    if abrupt:  # a network drop: no close frame, the server finds out by itself
                        assert ws.transport is not None
                        ws.transport.abort()
                    break
                message = await receive(ws)
                assert isinstance(message, StreamEvent), f"{w.name}: {message!r}"
                assert message.stream_id == w.stream_id, f"{w.name}: {message!r}"
                assert message.seq == w.last_seq + 1, (
                    f"{w.name} (seed {SEED}): seq {message.seq} after {w.last_seq} on connection "
                    f"{w.connections}, which attached with after={after}"
                )
                w.events.append(message)
                received += 1
            if w.done:
                await ping_is_next(ws, f"{w.name}-after-end")
        await asyncio.sleep(w.rng.uniform(0, 30 * MS))


async def start_streams(
    server: LiveServer, emulator: Emulator, plan_ids: list[str], trickle: float = TRICKLE
) -> dict[str, str]:
    """Start one stream per plan on one connection, then hang up; returns stream id -> text.

    Which scripted reply a stream gets depends on the order its model call reaches the
    emulator, so the mapping is read back from the requests (each plan has its own prompt).
    """
    replies = [scripted_reply(k, trickle) for k in range(len(plan_ids))]
    emulator.push(*replies)
    creds = ProviderCredentials(
        "openai", api_key="sk-chaos-" + uuid.uuid4().hex, base_url=emulator.base_url_openai
    )
    by_request = {
        start.request_id: start
        for start in (
            sealed_start(
                server,
                (creds,),
                request_id=f"chaos-{n}-{uuid.uuid4().hex[:8]}",
                plan_id=plan_id,
                mode="tell",
                prompt=f"chaos prompt for {plan_id}",
                model="openai/gpt-4.1",
            )
            for n, plan_id in enumerate(plan_ids)
        )
    }
    prompt_of: dict[str, str] = {}
    async with open_socket(server) as ws:
        for start in by_request.values():
            await ws.send(encode(start))
        while len(prompt_of) < len(by_request):
            message = await receive(ws)
            assert not isinstance(message, Error), message
            if isinstance(message, Started):
                prompt_of[message.stream_id] = by_request[message.request_id].prompt
    # Hung up: from here on the streams run with nobody watching until a watcher attaches.
    requests = await asyncio.to_thread(emulator.wait_for_requests, len(plan_ids), 10.0)
    text_of_prompt = {
        request.messages[-1]["content"]: reply.text
        for request, reply in zip(requests, replies, strict=True)
    }
    return {stream_id: text_of_prompt[prompt] for stream_id, prompt in prompt_of.items()}


async def new_plans(server: LiveServer, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token(server)}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as rest:
        project = (await rest.post("/api/v1/projects", json={"name": "chaos"})).json()["id"]
        plans = []
        for n in range(count):
            response = await rest.post(f"/api/v1/projects/{project}/plans", json={"name": f"p{n}"})
            assert response.status_code == 201, response.text
            plans.append(response.json()["id"])
        return plans


async def wait_ended(server: LiveServer, stream_ids: list[str]) -> dict[str, dict[str, object]]:
    """Poll the stream rows until none is running; returns the rows."""
    headers = {"Authorization": f"Bearer {token(server)}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as rest:
        while True:
            rows = {s: (await rest.get(f"/api/v1/streams/{s}")).json() for s in stream_ids}
            if all(row["status"] != "running" for row in rows.values()):
                return rows
            await asyncio.sleep(50 * MS)


async def convo_replies(server: LiveServer, plan_ids: list[str]) -> dict[str, str]:
    """stream id -> the assistant reply the server saved for it."""
    headers = {"Authorization": f"Bearer {token(server)}"}
    saved: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as rest:
        for plan_id in plan_ids:
            messages = (await rest.get(f"/api/v1/plans/{plan_id}/convo")).json()["messages"]
            for m in messages:
                if m["role"] == "assistant":
                    assert m["status"] == "complete", m["status"]
                    saved[m["stream_id"]] = m["content"]
    return saved


def check_complete(w: Watcher, text: str) -> End:
    """What every client must end with: 1..N, one end as the last event, the exact reply."""
    seqs = [e.seq for e in w.events]
    assert seqs == list(range(1, len(seqs) + 1)), f"{w.name}: gap or duplicate"
    ends = [e for e in w.events if isinstance(e, End)]
    assert len(ends) == 1 and w.events[-1] is ends[0], f"{w.name}: {len(ends)} end events"
    assert ends[0].status == "finished", ends[0]
    reply = "".join(e.text for e in w.events if isinstance(e, Delta))
    if reply != text:
        at = next((i for i, (a, b) in enumerate(zip(reply, text, strict=False)) if a != b), None)
        at = min(len(reply), len(text)) if at is None else at
        raise AssertionError(
            f"{w.name} (seed {SEED}): reply differs from the script at character {at} "
            f"(got {len(reply)} characters, expected {len(text)})"
        )
    assert isinstance(w.events[0], Status) and w.events[0].stage == "planning"
    assert sum(isinstance(e, ChangeEvent) for e in w.events) == ends[0].changes == 1
    return ends[0]


async def test_clients_that_drop_and_reattach_at_random_reconstruct_every_stream(
    live_server: LiveServer, emulator: Emulator
) -> None:
    rng = random.Random(SEED)
    async with asyncio.timeout(TEST_DEADLINE):
        plan_ids = await new_plans(live_server, STREAMS)
        texts = await start_streams(live_server, emulator, plan_ids)
        watchers = [
            Watcher(f"s{i}w{j}", stream_id, random.Random(rng.getrandbits(64)))
            for i, stream_id in enumerate(texts)
            for j in range(WATCHERS_PER_STREAM)
        ]
        async with asyncio.TaskGroup() as group:
            for w in watchers:
                group.create_task(watch(live_server, w, start_within=1.0, drops=DROPS_PER_WATCHER))
        rows = await wait_ended(live_server, list(texts))
        saved = await convo_replies(live_server, plan_ids)

    assert len(scripted_reply(0).pieces()) > 3000, "each stream should be thousands of events"
    for w in watchers:
        end = check_complete(w, texts[w.stream_id])
        assert end.seq > DROPS_PER_WATCHER * DROP_WITHIN, f"{w.stream_id}: too few events"
        assert w.drops == DROPS_PER_WATCHER, w.name
        assert rows[w.stream_id]["status"] == "finished"
        assert rows[w.stream_id]["last_seq"] == end.seq
    # Every client of a stream got the very same events (change ids included).
    for stream_id in texts:
        same = [w.events for w in watchers if w.stream_id == stream_id]
        assert all(events == same[0] for events in same[1:]), stream_id
    # The server kept the same reply as everyone reconstructed.
    assert saved == texts
    # The chaos really happened while the streams ran: every stream had clients resume
    # after a drop (after > 0) before the server recorded its end.
    for stream_id in texts:
        ended_at = rows[stream_id]["ended_at"]
        assert isinstance(ended_at, float)
        live_resumes = [
            after
            for w in watchers
            if w.stream_id == stream_id
            for when, after in w.attaches[1:]
            if after > 0 and when < ended_at
        ]
        assert len(live_resumes) >= WATCHERS_PER_STREAM, (stream_id, live_resumes)


async def test_a_client_that_first_attaches_after_the_end_gets_everything(
    live_server: LiveServer, emulator: Emulator
) -> None:
    rng = random.Random(SEED + 1)
    async with asyncio.timeout(TEST_DEADLINE):
        plan_ids = await new_plans(live_server, 2)
        texts = await start_streams(live_server, emulator, plan_ids, trickle=0.0)
        # Nobody watches: the streams must still run to their end.
        rows = await wait_ended(live_server, list(texts))
        assert {row["status"] for row in rows.values()} == {"finished"}

        # One connection attaches to both ended streams at once: frames interleave.
        late = {s: Watcher(f"late-{s}", s, rng) for s in texts}
        async with open_socket(live_server) as ws:
            for stream_id in texts:
                await ws.send(encode(Attach(stream_id=stream_id, after=0)))
            while not all(w.done for w in late.values()):
                message = await receive(ws)
                assert isinstance(message, StreamEvent), message
                w = late[message.stream_id]
                assert message.seq == w.last_seq + 1, (w.name, message.seq, w.last_seq)
                w.events.append(message)
            await ping_is_next(ws, "late-after-both-ends")

        # A resume point anywhere in an ended stream gives exactly the rest.
        async with open_socket(live_server) as ws:
            for stream_id, w in late.items():
                for after in sorted(rng.sample(range(1, w.last_seq), 5)):
                    await ws.send(encode(Attach(stream_id=stream_id, after=after)))
                    rest: list[StreamEvent] = []
                    while not rest or not isinstance(rest[-1], End):
                        message = await receive(ws)
                        assert isinstance(message, StreamEvent), message
                        rest.append(message)
                    assert rest == w.events[after:], (stream_id, after)
                    await ping_is_next(ws, f"{stream_id}-{after}")

        # And clients dropping and reattaching over the ended streams, concurrently.
        droppers = [
            Watcher(f"drop-{i}-{s}", s, random.Random(rng.getrandbits(64)))
            for s in texts
            for i in range(3)
        ]
        async with asyncio.TaskGroup() as group:
            for w in droppers:
                group.create_task(watch(live_server, w, start_within=0.1, drops=DROPS_PER_WATCHER))

    for w in [*late.values(), *droppers]:
        end = check_complete(w, texts[w.stream_id])
        assert rows[w.stream_id]["last_seq"] == end.seq
        assert w.events == late[w.stream_id].events, w.name
