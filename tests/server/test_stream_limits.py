"""No stream hangs forever, and no user runs more streams than the server allows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plancast.server.llm.errors import ProviderTimeout
from plancast.server.llm.types import ModelOutput, TextDelta, Usage
from plancast.server.streams.deadlines import StreamLimits, within_limits
from plancast.shared import End, Error
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    collect,
    load_settings,
    openai_creds,
    recv,
    running,
    send,
    start_message,
    start_stream,
)


async def scripted(*steps: tuple[float, ModelOutput]) -> AsyncIterator[ModelOutput]:
    for delay, item in steps:
        await asyncio.sleep(delay)
        yield item


async def drain(source: AsyncIterator[ModelOutput], limits: StreamLimits) -> list[ModelOutput]:
    return [item async for item in within_limits(source, limits)]


LIMITS = StreamLimits(first_token_s=0.2, idle_s=0.2, deadline_s=1.0)


async def test_a_prompt_reply_passes_through_unchanged() -> None:
    items = [(0.0, TextDelta("a")), (0.01, TextDelta("b")), (0.0, Usage(3, 2))]
    assert await drain(scripted(*items), LIMITS) == [item for _, item in items]


async def test_no_first_token_in_time() -> None:
    with pytest.raises(ProviderTimeout, match="no text within 0.2 s"):
        await drain(scripted((0.5, TextDelta("late"))), LIMITS)


async def test_silence_mid_reply() -> None:
    with pytest.raises(ProviderTimeout, match="silent for 0.2 s mid-reply"):
        await drain(scripted((0.0, TextDelta("a")), (0.5, TextDelta("b"))), LIMITS)


async def test_a_trickle_cannot_outlive_the_deadline() -> None:
    trickle = [(0.1, TextDelta(".")) for _ in range(30)]  # never idle, 3 s in all
    got: list[ModelOutput] = []
    with pytest.raises(ProviderTimeout, match="1 s deadline"):
        async for item in within_limits(scripted(*trickle), LIMITS):
            got.append(item)
    assert 5 <= len(got) < 30


async def test_the_source_is_closed_when_a_limit_fires() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncIterator[ModelOutput]:
        try:
            await asyncio.sleep(5)
            yield TextDelta("never")
        finally:
            closed.set()

    with pytest.raises(ProviderTimeout):
        await drain(source(), LIMITS)
    assert closed.is_set()


async def test_chunks_move_one_timer_instead_of_arming_one_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        armed.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    items = [(0.0, TextDelta("x")) for _ in range(2000)]
    assert len(await drain(scripted(*items), LIMITS)) == 2000
    assert len(armed) <= 2  # the first-token wait, then the shorter idle one: never per chunk


async def test_the_idle_limit_still_fires_after_many_quick_chunks() -> None:
    quick = [(0.0, TextDelta(".")) for _ in range(50)]
    with pytest.raises(ProviderTimeout, match="silent for 0.2 s mid-reply"):
        await drain(scripted(*quick, (0.1, TextDelta("a")), (0.5, TextDelta("b"))), LIMITS)


async def test_time_spent_handling_an_item_is_not_the_models_silence() -> None:
    got: list[ModelOutput] = []
    async for item in within_limits(scripted((0.0, TextDelta("a")), (0.0, Usage(1, 1))), LIMITS):
        got.append(item)
        await asyncio.sleep(0.4)  # the consumer is slow: twice the idle limit, per item
    assert got == [TextDelta("a"), Usage(1, 1)]


async def test_a_stop_during_a_wait_is_a_cancellation_not_a_timeout() -> None:
    started = asyncio.Event()

    async def source() -> AsyncIterator[ModelOutput]:
        started.set()
        await asyncio.sleep(5)
        yield TextDelta("never")

    task = asyncio.create_task(drain(source(), LIMITS))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_stop_as_the_limit_fires_stays_a_stop() -> None:
    """The stream's task is cancelled by a stop in the same turn of the loop as the limit."""
    started = asyncio.Event()

    async def source() -> AsyncIterator[ModelOutput]:
        started.set()
        await asyncio.sleep(5)
        yield TextDelta("never")

    task = asyncio.create_task(drain(source(), LIMITS))
    await started.wait()
    loop = asyncio.get_running_loop()
    loop.call_at(loop.time() + 0.01, task.cancel)  # the stop
    time.sleep(
        LIMITS.first_token_s + 0.1
    )  # hold the loop: the stop and the limit come due together
    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_stalled_provider_ends_the_stream_with_its_partial_reply(
    data_dir: Path, emulator: Emulator
) -> None:
    emulator.push(
        Reply(text="partial text then silence", chunk_chars=4, stall_after=2, stall_for=3)
    )
    settings = load_settings(data_dir, idle_timeout_s=0.3, provider_timeout_s=30.0)
    with running(settings) as server:
        plan_id = server.new_plan()
        with server.connect() as ws:
            started = start_stream(ws, start_message(plan_id, openai_creds(emulator)))
            events = collect(ws, started.stream_id)
        end = events[-1]
        assert isinstance(end, End)
        assert (end.status, end.error_code) == ("failed", "provider_timeout")
        assert "silent for 0.3 s" in (end.error_message or "")
        (_, reply) = server.convo(plan_id)
        assert reply["status"] == "partial" and reply["content"] == "partial "


def test_one_user_cannot_run_more_streams_than_allowed(data_dir: Path, emulator: Emulator) -> None:
    emulator.push(Reply(text="slow " * 40, chunk_chars=5, trickle=0.05))
    with running(load_settings(data_dir, max_streams_per_user=1)) as server:
        first, second = server.new_plan(), server.new_plan()
        creds = openai_creds(emulator)
        with server.connect() as ws:
            running_one = start_stream(ws, start_message(first, creds))
            send(ws, start_message(second, creds))
            error = recv(ws)
            while not isinstance(error, Error):  # the first stream's events come meanwhile
                error = recv(ws)
            assert error.code == "busy"
            assert "plancast ps" in error.message
            collect(ws, running_one.stream_id)
        emulator.push(Reply(text="now there is room"))
        events = server.run_stream(start_message(second, creds))
        assert isinstance(events[-1], End) and events[-1].status == "finished"
