"""Two server replicas on one PostgreSQL database (issue 8, part 4; DESIGN invariant 2).

Each test runs two apps, each with its own engine, worker pool and LISTEN connection, on one
database, as two replicas behind a load balancer would. What must hold:

- a stream started through one replica is followed through the other with no gap and no
  duplicate, from the start or from the middle, and stopped through it;
- a second start on the same branch, through the other replica, is busy;
- a stream whose replica died is marked interrupted by the other once its lease expires,
  and a follower on the other replica sees it end so.

These run on PostgreSQL whatever ``PLANCAST_TEST_DB`` says (replicas need it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.server.store.database import create_engine
from plancast.server.store.schema import stream_events, streams
from plancast.server.streams import records
from plancast.server.streams.eventlog import event_row
from plancast.shared import Attach, Delta, Error, Status, Stop
from tests import pg
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    Server,
    check_sequence,
    collect,
    load_settings,
    openai_creds,
    recv,
    reply_text,
    running,
    send,
    start_message,
    start_stream,
)

LEASE_S = 1.5
TEXT = "".join(f"line {n:03d} of the reply\n" for n in range(80))


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    settings = load_settings(folder, database_url=pg.postgres_url(folder), stream_lease_s=LEASE_S)
    try:
        with running(settings) as a, running(settings) as b:
            yield a, b
    finally:
        pg.forget(folder)


def test_a_stream_is_followed_through_the_other_replica_without_gap(
    replicas: tuple[Server, Server], emulator: Emulator
) -> None:
    a, b = replicas
    plan_id = a.new_plan()
    emulator.push(Reply(text=TEXT, chunk_chars=9, trickle=0.01))
    with a.connect() as on_a:
        started = start_stream(on_a, start_message(plan_id, openai_creds(emulator)))
        with b.connect() as from_start, b.connect() as from_middle:
            send(from_start, Attach(stream_id=started.stream_id, after=0))
            first = collect(from_start, started.stream_id, until=lambda e: e.seq >= 12)
            # Live, not after the fact: the other replica's follower has these events while
            # the stream still runs.
            assert b.stream_row(started.stream_id)["status"] == "running"
            send(from_middle, Attach(stream_id=started.stream_id, after=first[-1].seq))
            rest = collect(from_start, started.stream_id)
            middle = collect(from_middle, started.stream_id)
        local = collect(on_a, started.stream_id)
    whole = first + rest
    end = check_sequence(whole)
    assert end.status == "finished"
    assert reply_text(whole) == TEXT == reply_text(local)
    assert [e.seq for e in whole] == [e.seq for e in local]
    check_sequence(middle, first=first[-1].seq + 1)
    assert whole[len(first) :] == middle


def test_a_stream_is_stopped_through_the_other_replica_and_its_branch_is_busy(
    replicas: tuple[Server, Server], emulator: Emulator
) -> None:
    a, b = replicas
    plan_id = a.new_plan()
    emulator.push(Reply(text=TEXT, chunk_chars=4, trickle=0.05))
    with a.connect() as on_a:
        started = start_stream(on_a, start_message(plan_id, openai_creds(emulator)))
        collect(on_a, started.stream_id, until=lambda e: isinstance(e, Delta))
        with b.connect() as on_b:
            send(on_b, b.seal(start_message(plan_id, openai_creds(emulator))))
            refused = recv(on_b)
            assert isinstance(refused, Error) and refused.code == "busy"
            assert refused.stream_id == started.stream_id
            send(on_b, Attach(stream_id=started.stream_id, after=0))
            send(on_b, Stop(stream_id=started.stream_id))
            events = collect(on_b, started.stream_id)
    end = check_sequence(events)
    assert end.status == "stopped"
    assert 0 < len(reply_text(events)) < len(TEXT)
    assert b.stream_row(started.stream_id)["status"] == "stopped"


async def _leave_running_stream(url: str, plan_id: str) -> str:
    """What a replica that died mid-stream leaves: a running row, a lease, some events."""
    stream_id = "st_deadreplica01"
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await records.insert_running(
                conn,
                stream_id=stream_id,
                org_id=LOCAL_ORG_ID,
                plan_id=plan_id,
                branch="main",
                mode="chat",
                model="openai/gpt-4.1",
                request_id="req-dead-replica",
                owner="rep_dead",
                lease_s=LEASE_S,
            )
            events = [Status(stream_id=stream_id, seq=1, stage="planning", detail="x")]
            events += [Delta(stream_id=stream_id, seq=2, text="half a re")]
            await conn.execute(stream_events.insert(), [event_row(e) for e in events])
    finally:
        await engine.dispose()
    return stream_id


def test_a_dead_replicas_stream_is_interrupted_when_its_lease_expires(
    replicas: tuple[Server, Server],
) -> None:
    a, b = replicas
    plan_id = a.new_plan()
    url = a.settings.database_url
    stream_id = asyncio.run(_leave_running_stream(url, plan_id))
    started = time.monotonic()
    with b.connect() as on_b:
        send(on_b, Attach(stream_id=stream_id, after=0))
        events = collect(on_b, stream_id, timeout=10 * LEASE_S)
    end = check_sequence(events)
    assert end.status == "interrupted"
    assert reply_text(events) == "half a re"
    assert time.monotonic() - started < 6 * LEASE_S
    assert b.convo(plan_id)[-1]["content"] == "half a re"
    # Exactly one End: both replicas looked for orphans, one closed it.
    assert [type(e).__name__ for e in events].count("End") == 1


def test_only_expired_leases_are_taken(replicas: tuple[Server, Server]) -> None:
    """A live replica's stream (its lease renewed) is never closed by the other."""
    a, _b = replicas
    plan_id = a.new_plan()
    url = a.settings.database_url
    stream_id = asyncio.run(_leave_running_stream(url, plan_id))

    async def keep_alive() -> None:
        engine = create_engine(url)
        try:
            for _ in range(8):
                async with engine.begin() as conn:
                    await conn.execute(
                        update(streams)
                        .where(streams.c.id == stream_id)
                        .values(lease_expires_at=time.time() + LEASE_S)
                    )
                await asyncio.sleep(LEASE_S / 3)
        finally:
            await engine.dispose()

    asyncio.run(keep_alive())
    assert a.stream_row(stream_id)["status"] == "running"
