"""Recovery: a stream its process left ``running`` is marked interrupted on the next start.

A replica that dies mid-stream leaves exactly what the engine had written by then: the stream
row (running), the prompt in the conversation, and the delta events flushed so far. The test
writes that state with the domain's own functions, then starts a server on the database.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.config import Settings
from plancast.server.domain import convo, plans, projects, versions
from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.server.llm import prompts
from plancast.server.store.database import create_engine
from plancast.server.store.schema import stream_events, streams
from plancast.server.streams import records
from plancast.server.streams.eventlog import event_row
from plancast.shared import Attach, Delta, End, Status, Stop, StreamEvent
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.pg import database_url
from tests.server.helpers import (
    check_sequence,
    collect,
    load_settings,
    openai_creds,
    query,
    reply_text,
    running,
    send,
    start_message,
    start_stream,
)

STREAM_ID = "st_orphan"
PROMPT = "Write the two modules."
DELTAS = [
    "Here is a.py.\n",
    '<pc:file path="a.py">\n',
    "x = 1\n",
    "</pc:file>\n",
    '<pc:file path="b.py">\n',
    "y = ",  # the replica died here: b.py's block never closed
]


async def _expire_lease(conn: AsyncConnection, stream_id: str) -> None:
    """Let the dead replica's lease run out, as it has by the time another server starts.

    SQLite takes every running stream for an orphan (one server owns the file); PostgreSQL,
    where replicas share the database, only those whose lease has expired.
    """
    await conn.execute(
        streams.update().where(streams.c.id == stream_id).values(lease_expires_at=time.time() - 1)
    )


async def _leave_running_stream(data_dir: Path, plan_id: str) -> list[StreamEvent]:
    """Write what a replica that died mid-stream leaves behind."""
    engine = create_engine(database_url(data_dir))
    events: list[StreamEvent] = [
        Status(stream_id=STREAM_ID, seq=1, stage="planning", detail="openai/gpt-4.1")
    ]
    events += [Delta(stream_id=STREAM_ID, seq=n, text=t) for n, t in enumerate(DELTAS, 2)]
    try:
        async with engine.begin() as conn:
            await records.insert_running(
                conn,
                stream_id=STREAM_ID,
                org_id=LOCAL_ORG_ID,
                plan_id=plan_id,
                branch="main",
                mode="tell",
                model="openai/gpt-4.1",
                request_id="req-orphan",
                owner="rep_dead",
            )
            await _expire_lease(conn, STREAM_ID)
            message = await convo.insert_message(
                conn,
                LOCAL_ORG_ID,
                plan_id,
                role="user",
                mode="tell",
                content=PROMPT,
                stream_id=STREAM_ID,
            )
            await versions.commit(
                conn,
                LOCAL_ORG_ID,
                plan_id,
                "main",
                "prompt",
                PROMPT,
                lambda s: replace(s, messages=(*s.messages, message.id)),
            )
            await conn.execute(stream_events.insert(), [event_row(e) for e in events])
    finally:
        await engine.dispose()
    return events


@pytest.fixture
def orphan(settings: Settings) -> tuple[str, list[StreamEvent]]:
    """A plan whose stream was left running by a dead replica: (plan id, its events)."""
    with running(settings) as first:
        plan_id = first.new_plan()
    return plan_id, asyncio.run(_leave_running_stream(settings.data_dir, plan_id))


def test_a_stream_left_running_is_interrupted_on_the_next_start(
    settings: Settings, orphan: tuple[str, list[StreamEvent]]
) -> None:
    plan_id, events = orphan
    with running(settings) as server:
        row = server.stream_row(STREAM_ID)
        assert row["status"] == "interrupted"
        assert row["last_seq"] == len(events) + 1
        assert row["ended_at"] is not None and "partial reply" in row["error_message"]

        # Its partial reply is in the conversation, after the prompt.
        messages = server.convo(plan_id)
        assert [(m["role"], m["status"], m["content"]) for m in messages] == [
            ("user", "complete", PROMPT),
            ("assistant", "partial", "".join(DELTAS)),
        ]
        # The complete block became a pending change; the cut one did not.
        pending = server.changes(plan_id)
        assert [(c["path"], c["op"]["op"]) for c in pending] == [("a.py", "write")]
        assert pending[0]["op"]["content"] == "x = 1\n"

        # Its End is stored: attaching replays the events and the end, and nothing else.
        with server.connect() as ws:
            send(ws, Attach(stream_id=STREAM_ID, after=0))
            replayed = collect(ws, STREAM_ID)
            send(ws, Attach(stream_id=STREAM_ID, after=len(events)))
            (end,) = collect(ws, STREAM_ID)
    assert replayed[:-1] == events
    assert replayed[-1] == end
    check_sequence(replayed)
    assert isinstance(end, End)
    assert (end.status, end.error_code, end.changes) == ("interrupted", None, 1)
    stored = query(
        settings.data_dir,
        "SELECT seq, type FROM stream_events WHERE stream_id = ? AND type = 'end'",
        STREAM_ID,
    )
    assert stored == [(len(events) + 1, "end")]


def test_continue_works_after_an_interrupted_stream(
    settings: Settings, orphan: tuple[str, list[StreamEvent]], emulator: Emulator
) -> None:
    plan_id, _ = orphan
    emulator.push(Reply(text="2\n</pc:file>\nDone."))
    with running(settings) as server:
        start = start_message(plan_id, openai_creds(emulator), mode="continue", prompt="")
        events = server.run_stream(start)
        end = check_sequence(events)
        assert end.status == "finished"
        assert reply_text(events) == "2\n</pc:file>\nDone."
        messages = server.convo(plan_id)
        assert [(m["role"], m["mode"], m["status"]) for m in messages] == [
            ("user", "tell", "complete"),
            ("assistant", "tell", "partial"),
            ("assistant", "continue", "complete"),
        ]
    assert emulator.last_request.messages[1:] == [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": "".join(DELTAS)},
        {"role": "user", "content": prompts.CONTINUE_PROMPT},
    ]


def test_recovery_happens_once(settings: Settings, orphan: tuple[str, list[StreamEvent]]) -> None:
    plan_id, events = orphan
    with running(settings):
        pass
    with running(settings) as again:
        assert again.stream_row(STREAM_ID)["status"] == "interrupted"
        assert [m["role"] for m in again.convo(plan_id)] == ["user", "assistant"]
        assert len(again.changes(plan_id)) == 1
    count = query(
        settings.data_dir, "SELECT count(*) FROM stream_events WHERE stream_id = ?", STREAM_ID
    )
    assert count == [(len(events) + 1,)]


def test_recovery_leaves_ended_streams_alone(settings: Settings, emulator: Emulator) -> None:
    with running(settings) as first:
        plan_id = first.new_plan()
        events = first.run_stream(start_message(plan_id, openai_creds(emulator)))
        before = first.stream_row(events[0].stream_id)
        convo_before = first.convo(plan_id)
    with running(settings) as second:
        assert second.stream_row(events[0].stream_id) == before
        assert second.convo(plan_id) == convo_before


def test_an_orphan_with_no_output_is_interrupted_with_no_reply(settings: Settings) -> None:
    with running(settings) as first:
        plan_id = first.new_plan()

    async def leave() -> None:
        engine = create_engine(database_url(settings.data_dir))
        try:
            async with engine.begin() as conn:
                await records.insert_running(
                    conn,
                    stream_id="st_silent",
                    org_id=LOCAL_ORG_ID,
                    plan_id=plan_id,
                    branch="main",
                    mode="chat",
                    model="openai/gpt-4.1",
                    request_id="req-silent",
                    owner="rep_dead",
                )
                await _expire_lease(conn, "st_silent")
        finally:
            await engine.dispose()

    asyncio.run(leave())
    with running(settings) as server:
        assert server.stream_row("st_silent")["status"] == "interrupted"
        assert server.convo(plan_id) == []
        with server.connect() as ws:
            send(ws, Attach(stream_id="st_silent", after=0))
            (end,) = collect(ws, "st_silent")
        assert isinstance(end, End) and (end.seq, end.status) == (1, "interrupted")


# -- shutting down with streams running -----------------------------------------------------


def _start_and_shut_down(settings: Settings, emulator: Emulator) -> tuple[str, str]:
    """Start a stream that stalls after two chunks, then stop the server under it at once."""
    emulator.push(Reply(text="0123456789" * 4, chunk_chars=4, stall_after=2, stall_for=3.0))
    with running(replace(settings, shutdown_grace_s=0.0)) as server:  # no grace: see test_managed
        plan_id = server.new_plan()
        with server.connect() as ws:
            started = start_stream(ws, start_message(plan_id, openai_creds(emulator)))
            # Ends with: the worker may join chunks that reach it together into one delta.
            collect(ws, started.stream_id, until=lambda e: reply_text([e]).endswith("4567"))
    return plan_id, started.stream_id


def test_shutdown_ends_running_streams_and_keeps_their_partial_reply(
    settings: Settings, emulator: Emulator
) -> None:
    plan_id, stream_id = _start_and_shut_down(settings, emulator)
    with running(settings) as server:
        row = server.stream_row(stream_id)
        assert row["status"] != "running" and row["ended_at"] is not None
        assert server.convo(plan_id)[-1]["content"] == "01234567"
        assert server.convo(plan_id)[-1]["status"] == "partial"
        with server.connect() as ws:
            send(ws, Attach(stream_id=stream_id, after=0))
            events = collect(ws, stream_id)
        check_sequence(events)
        assert reply_text(events) == "01234567"
        # The branch is free: continue starts at once.
        emulator.reset()
        start = start_message(plan_id, openai_creds(emulator), mode="continue", prompt="")
        assert check_sequence(server.run_stream(start)).status == "finished"


def test_shutdown_marks_running_streams_interrupted(settings: Settings, emulator: Emulator) -> None:
    _, stream_id = _start_and_shut_down(settings, emulator)
    with running(settings) as server:
        row = server.stream_row(stream_id)
        assert (row["status"], row["error_code"]) == ("interrupted", None)
        with server.connect() as ws:
            send(ws, Attach(stream_id=stream_id, after=0))
            end = collect(ws, stream_id)[-1]
        assert isinstance(end, End) and end.status == "interrupted"


def test_a_running_streams_lease_is_renewed(
    data_dir: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "LEASE_S", 0.45)
    emulator.push(Reply(text="0123456789" * 4, chunk_chars=4, stall_after=1, stall_for=3.0))
    with running(load_settings(data_dir)) as server:
        plan_id = server.new_plan()
        with server.connect() as ws:
            started = start_stream(ws, start_message(plan_id, openai_creds(emulator)))
            collect(ws, started.stream_id, until=lambda e: isinstance(e, Delta))
            time.sleep(1.0)  # more than two lease periods
            sql = "SELECT lease_owner, lease_expires_at FROM streams WHERE id = ?"
            ((owner, expires),) = query(data_dir, sql, started.stream_id)
            assert owner is not None and expires > time.time()
            send(ws, Stop(stream_id=started.stream_id))
            collect(ws, started.stream_id)
        assert query(data_dir, sql, started.stream_id) == [(None, None)]


async def test_for_replicas_only_expired_leases_are_orphans(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, LOCAL_ORG_ID, "leases")
        plan_ids = [(await plans.create_plan(conn, LOCAL_ORG_ID, project.id, None)).id]
        plan_ids.append((await plans.create_plan(conn, LOCAL_ORG_ID, project.id, None)).id)
        pairs = (("st_alive", plan_ids[0], "rep_a"), ("st_dead", plan_ids[1], "rep_b"))
        for stream_id, plan_id, owner in pairs:
            await records.insert_running(
                conn,
                stream_id=stream_id,
                org_id=LOCAL_ORG_ID,
                plan_id=plan_id,
                branch="main",
                mode="tell",
                model="openai/gpt-4.1",
                request_id=f"req-{stream_id}",
                owner=owner,
            )
        await conn.execute(
            streams.update().where(streams.c.id == "st_dead").values(lease_expires_at=0.0)
        )
        # A replica renews only its own streams.
        await records.renew_leases(conn, ["st_alive", "st_dead"], "rep_a")
        assert await records.orphaned(conn, only_expired=True) == [("st_dead", LOCAL_ORG_ID)]
        assert sorted(await records.orphaned(conn, only_expired=False)) == [
            ("st_alive", LOCAL_ORG_ID),
            ("st_dead", LOCAL_ORG_ID),
        ]
