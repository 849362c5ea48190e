"""A fallback model replaces one that fails before replying, and only then."""

from __future__ import annotations

from pathlib import Path

from plancast.shared import Delta, End, Status
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    anthropic_creds,
    expect_error,
    load_settings,
    openai_creds,
    reply_text,
    running,
    send,
    start_message,
)


def test_falls_back_to_another_provider_when_the_model_fails_first(
    data_dir: Path, emulator: Emulator
) -> None:
    emulator.push(Reply(status=401), Reply(text="answer from the fallback"))
    with running(load_settings(data_dir, provider_attempts=1)) as server:
        start = start_message(
            server.new_plan(),
            openai_creds(emulator),
            extra_credentials=(anthropic_creds(emulator),),
            fallback_model="anthropic/claude-sonnet-5-5",
        )
        # Two providers and two model calls in one worker: a wider bound than WAIT.
        events = server.run_stream(start, timeout=30)
    end = events[-1]
    assert isinstance(end, End) and end.status == "finished"
    assert reply_text(events) == "answer from the fallback"
    notes = [e.detail for e in events if isinstance(e, Status) and e.stage == "fallback"]
    assert notes == ["openai/gpt-4.1 failed (provider_auth); trying anthropic/claude-sonnet-5-5"]
    assert [r.provider for r in emulator.requests] == ["openai", "anthropic"]


def test_no_fallback_once_text_has_streamed(data_dir: Path, emulator: Emulator) -> None:
    emulator.push(Reply(text="half of an answer " * 4, chunk_chars=6, cut_after=2))
    emulator.push(Reply(text="must not be spliced in"))
    with running(load_settings(data_dir, provider_attempts=1)) as server:
        start = start_message(server.new_plan(), openai_creds(emulator))
        events = server.run_stream(start.with_fields(fallback_model="openai/gpt-5.5"))
    end = events[-1]
    assert isinstance(end, End) and end.status == "failed"
    assert "spliced" not in "".join(e.text for e in events if isinstance(e, Delta))
    assert len(emulator.requests) == 1


def test_a_fallback_without_its_key_is_refused_before_any_work(
    data_dir: Path, emulator: Emulator
) -> None:
    with running(load_settings(data_dir)) as server:
        start = start_message(server.new_plan(), openai_creds(emulator))
        with server.connect() as ws:
            send(ws, start.with_fields(fallback_model="anthropic/claude-sonnet-5-5"))
            error = expect_error(ws)
        assert error.code == "missing_credentials" and "ANTHROPIC_API_KEY" in error.message
        assert error.request_id == start.request_id
        assert server.streams(start.plan_id) == []
        assert emulator.requests == []
