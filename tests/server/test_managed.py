"""``ManagedStreamService``: no start during shutdown, draining, and one outcome per stream.

``drain`` runs here in the app's own event loop, as the lifespan runs it at shutdown, while a
stream is running; ``tests/e2e/test_shutdown.py`` does the same to a real server with SIGTERM.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from plancast.server.streams.managed import SHUTTING_DOWN, StreamOutcome
from plancast.shared import Delta, NewSeal
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    OPENAI_MODEL,
    Server,
    check_sequence,
    collect,
    expect_error,
    openai_creds,
    query,
    reply_text,
    send,
    start_message,
    start_stream,
    wait_until,
)

SLOW_TEXT = "".join(f"line {n:03d} of a reply that takes a while\n" for n in range(60))


def slow(trickle: float) -> Reply:
    return Reply(text=SLOW_TEXT, chunk_chars=8, trickle=trickle)


def drain(server: Server, grace_s: float) -> int:
    """``drain`` in the app's event loop, as the lifespan calls it; returns its count."""
    portal = server.client.portal
    assert portal is not None
    left: int = portal.call(server.app.state.streams.drain, grace_s)
    return left


def test_a_start_while_shutting_down_is_refused_as_busy(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    seal = server.new_seal()  # taken just before the shutdown began
    server.app.state.streams.closing = True  # what drain() sets first
    with server.connect() as ws:
        late = start_message(plan_id, openai_creds(emulator), request_id="late")
        send(ws, server.seal(late, seal))
        error = expect_error(ws)
    assert (error.code, error.request_id, error.stream_id) == ("busy", "late", None)
    assert error.message == SHUTTING_DOWN
    assert server.streams(plan_id) == []  # nothing was recorded
    assert emulator.requests == []


def test_no_seal_is_given_while_shutting_down(server: Server) -> None:
    server.app.state.streams.closing = True
    response = server.post("/api/v1/seals")
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "busy", "message": SHUTTING_DOWN}
    assert server.app.state.workers._reserved == {}  # no worker was set aside for it
    with server.connect() as ws:  # nor on the stream socket
        send(ws, NewSeal(request_id="late"))
        error = expect_error(ws)
    assert (error.code, error.request_id, error.message) == ("busy", "late", SHUTTING_DOWN)
    assert server.app.state.workers._reserved == {}


def test_drain_lets_a_stream_finish_within_the_grace_period(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(slow(trickle=0.002))  # ~0.5 s in all
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator), mode="chat"))
        collect(ws, started.stream_id, until=lambda e: isinstance(e, Delta))
        assert drain(server, grace_s=20.0) == 0
        events = collect(ws, started.stream_id)
    assert events[-1].status == "finished"  # type: ignore[attr-defined]
    assert server.stream_row(started.stream_id)["status"] == "finished"
    assert server.convo(plan_id)[-1]["content"] == SLOW_TEXT


def test_drain_waits_for_a_stream_still_saving_after_its_end(
    server: Server, plan_id: str, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that saw ``end`` must find it stored: the process may not go before it is."""
    eventlog = server.app.state.streams._eventlog
    real_flush = eventlog.flush

    async def slow_end_flush() -> None:
        if any(row["type"] == "end" for row in eventlog._pending):
            await asyncio.sleep(0.5)  # the write of the end, later than the end went out
        await real_flush()

    monkeypatch.setattr(eventlog, "flush", slow_end_flush)
    emulator.push(Reply(text="short\n"))
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator), mode="chat"))
        end = check_sequence(collect(ws, started.stream_id))
        assert drain(server, grace_s=20.0) == 0
    stored = query(
        server.data_dir,
        "SELECT seq, type FROM stream_events WHERE stream_id = ? ORDER BY seq DESC LIMIT 1",
        started.stream_id,
    )
    assert stored == [(end.seq, "end")]


def test_drain_interrupts_what_outlives_the_grace_period(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(slow(trickle=0.05))  # ~20 s in all
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator), mode="chat"))
        seen = collect(ws, started.stream_id, until=lambda e: isinstance(e, Delta))
        assert drain(server, grace_s=0.3) == 1
        events = seen + collect(ws, started.stream_id)
    end = check_sequence(events)
    assert end.status == "interrupted"
    row = server.stream_row(started.stream_id)
    assert row["status"] == "interrupted"
    (reply,) = [m for m in server.convo(plan_id) if m["role"] == "assistant"]
    assert reply["status"] == "partial"
    assert reply["content"] == reply_text(events)
    assert 0 < len(reply["content"]) < len(SLOW_TEXT)


def test_hurry_ends_the_grace_period_at_once(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(slow(trickle=0.05))  # ~20 s in all
    portal = server.client.portal
    assert portal is not None
    service = server.app.state.streams
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator), mode="chat"))
        collect(ws, started.stream_id, until=lambda e: isinstance(e, Delta))
        draining = portal.start_task_soon(service.drain, 60.0)
        wait_until(lambda: service.closing)
        time.sleep(0.2)
        assert not draining.done()  # waiting for the stream, as the grace period allows
        hurried = time.monotonic()
        service.hurry()  # what a second stop signal does
        assert draining.result(timeout=5) == 1
        assert time.monotonic() - hurried < 2
        assert collect(ws, started.stream_id)[-1].status == "interrupted"  # type: ignore[attr-defined]


def test_each_stream_has_one_outcome_even_when_its_start_is_retried(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    outcomes: list[StreamOutcome] = []
    server.app.state.streams.outcome_listeners.append(outcomes.append)
    emulator.push(slow(trickle=0.002))
    start = start_message(plan_id, openai_creds(emulator), mode="chat", request_id="twice")
    with server.connect() as ws:
        first = start_stream(ws, start)
        seen = collect(ws, first.stream_id, until=lambda e: isinstance(e, Delta))
        with server.connect() as again:  # a retry while it runs: the same stream
            assert start_stream(again, start).stream_id == first.stream_id
        end = check_sequence(seen + collect(ws, first.stream_id))
    with server.connect() as ws:  # and after the end
        assert start_stream(ws, start).stream_id == first.stream_id
    wait_until(lambda: len(outcomes) >= 1)
    time.sleep(0.05)  # a second outcome, were there one, would come with the first
    assert outcomes == [StreamOutcome("finished", None, end.seq, OPENAI_MODEL)]
    assert server.app.state.streams.watched() == []


def test_a_failing_listener_does_not_stop_the_others(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    got: list[Any] = []

    def broken(_outcome: StreamOutcome) -> None:
        raise RuntimeError("a listener's bug")

    server.app.state.streams.outcome_listeners[:0] = [broken]
    server.app.state.streams.outcome_listeners.append(got.append)
    emulator.push(
        Reply(status=429, error_message="slow down"), Reply(status=429), Reply(status=429)
    )
    events = server.run_stream(start_message(plan_id, openai_creds(emulator), mode="chat"))
    assert check_sequence(events).error_code == "provider_rate_limited"
    wait_until(lambda: len(got) == 1)
    assert got[0].status == "failed" and got[0].error_code == "provider_rate_limited"
