"""Model-call retries: only before any output, honouring a capped retry-after."""

from __future__ import annotations

import time

import pytest

from plancast.server.llm import calls
from plancast.server.llm.credentials import Credentials
from plancast.server.llm.errors import ProviderRateLimited, ProviderUnavailable
from plancast.server.llm.types import ChatMessage, ChatRequest, TextDelta
from plancast.shared import ModelSpec, ProviderCredentials
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

FAST = calls.RetryPolicy(attempts=3, base_delay_s=0.01, max_wait_s=0.05)


def request(provider: str = "openai") -> ChatRequest:
    model = "gpt-4.1" if provider == "openai" else "claude-x"
    return ChatRequest(
        ModelSpec(provider, model), "system", (ChatMessage("user", "hi"),), max_tokens=64
    )


def creds(emulator: Emulator, provider: str = "openai") -> Credentials:
    url = emulator.base_url_openai if provider == "openai" else emulator.base_url_anthropic
    return Credentials([ProviderCredentials(provider, api_key="sk-test-retry", base_url=url)])


async def collect(emulator: Emulator, provider: str = "openai") -> str:
    parts = []
    async for item in calls.stream_chat(
        request(provider), creds(emulator, provider), timeout=5, retry=FAST
    ):
        if isinstance(item, TextDelta):
            parts.append(item.text)
    return "".join(parts)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_rate_limit_then_success_is_retried(emulator: Emulator, provider: str) -> None:
    emulator.push(Reply(status=429, retry_after=0.01), Reply(text="fine after all"))
    assert await collect(emulator, provider) == "fine after all"
    assert len(emulator.requests) == 2


async def test_a_long_retry_after_is_capped(emulator: Emulator) -> None:
    emulator.push(Reply(status=429, retry_after=300), Reply(text="ok"))
    started = time.monotonic()
    assert await collect(emulator) == "ok"
    assert time.monotonic() - started < 5  # capped at max_wait_s, not 300 s


async def test_gives_up_after_the_last_attempt(emulator: Emulator) -> None:
    emulator.push(*[Reply(status=503)] * 3, Reply(text="never reached"))
    with pytest.raises(ProviderUnavailable):
        await collect(emulator)
    assert len(emulator.requests) == 3


async def test_no_retry_once_output_has_started(emulator: Emulator) -> None:
    emulator.push(Reply(text="partial reply text " * 5, chunk_chars=5, cut_after=2))
    emulator.push(Reply(text="a second answer must not be spliced in"))
    with pytest.raises(ProviderUnavailable):
        await collect(emulator)
    assert len(emulator.requests) == 1


async def test_auth_errors_are_not_retried(emulator: Emulator) -> None:
    emulator.push(Reply(status=401), Reply(text="no"))
    with pytest.raises(Exception) as info:
        await collect(emulator)
    assert not isinstance(info.value, ProviderRateLimited)
    assert info.value.code == "provider_auth"  # type: ignore[attr-defined]
    assert len(emulator.requests) == 1
