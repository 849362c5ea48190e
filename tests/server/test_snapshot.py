"""Events that are no longer kept: an explicit snapshot instead of a silent gap."""

from __future__ import annotations

from pathlib import Path

from plancast.shared import Attach, Snapshot
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    collect,
    load_settings,
    openai_creds,
    query,
    reply_text,
    running,
    send,
    start_message,
)

REPLY = "A reply that outlives its events."


def test_attaching_after_the_retention_period_gets_a_snapshot(
    data_dir: Path, emulator: Emulator
) -> None:
    emulator.push(Reply(text=REPLY, chunk_chars=5))
    with running(load_settings(data_dir)) as server:
        events = server.run_stream(start_message(server.new_plan(), openai_creds(emulator)))
    stream_id, last = events[0].stream_id, events[-1].seq
    assert reply_text(events) == REPLY
    query(data_dir, "UPDATE streams SET ended_at = ended_at - 40 * 86400")
    with running(load_settings(data_dir, event_retention_days=30)) as server:
        assert query(data_dir, "SELECT count(*) FROM stream_events") == [(0,)]
        for after in (0, 3, last):
            with server.connect() as ws:
                send(ws, Attach(stream_id=stream_id, after=after))
                (snapshot,) = collect(ws, stream_id)
            assert isinstance(snapshot, Snapshot)
            assert (snapshot.seq, snapshot.status, snapshot.reply) == (last, "finished", REPLY)
            assert f"after {after} are no longer kept" in snapshot.reason


def test_recent_streams_keep_their_events(data_dir: Path, emulator: Emulator) -> None:
    emulator.push(Reply(text=REPLY, chunk_chars=5))
    with running(load_settings(data_dir)) as server:
        events = server.run_stream(start_message(server.new_plan(), openai_creds(emulator)))
    kept = query(data_dir, "SELECT count(*) FROM stream_events")[0][0]
    with running(load_settings(data_dir, event_retention_days=30)):
        pass
    assert query(data_dir, "SELECT count(*) FROM stream_events")[0][0] == kept == len(events)
