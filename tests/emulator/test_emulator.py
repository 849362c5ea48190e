"""The emulator, driven by the real `openai` and `anthropic` SDKs.

These tests are the evidence behind the fault table in server.py: each asserts the exact exception
class an SDK raises for a fault, and at which point (creating the request or iterating the
stream). If an SDK upgrade changes what it raises, a test here fails before the server's error
mapping silently stops matching.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import anthropic
import httpx2
import openai
import pytest
import pytest_asyncio

from .script import Reply
from .server import Emulator

# One event loop and one set of SDK clients for the module: building an SDK client builds an
# httpx2 client and its TLS context (30-100 ms), which would dominate the suite's run time.
pytestmark = pytest.mark.asyncio(loop_scope="module")

Provider = Literal["openai", "azure", "anthropic"]
PROVIDERS: list[Provider] = ["openai", "azure", "anthropic"]

OPENAI_KEY = "sk-test-openai-0123456789"
AZURE_KEY = "azure-test-key-0123456789"
ANTHROPIC_KEY = "sk-ant-test-0123456789"
AZURE_API_VERSION = "2024-10-21"
MESSAGES = [{"role": "user", "content": "Say hello."}]

# Text that would break a careless SSE writer: blank lines, a fake [DONE], multi-byte characters.
TRICKY_TEXT = "Grüße, 世界! 🎉 naïve café\n\ndata: [DONE]\n\tend"
ASCII_TEXT = "def plan():\n    return 42\n"

# Short enough to keep the suite fast, long enough not to fire on a healthy loopback stream.
SHORT_TIMEOUT = 0.2


def openai_client(emu: Emulator, timeout: float = 5.0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=emu.base_url_openai, api_key=OPENAI_KEY, max_retries=0, timeout=timeout
    )


def azure_client(emu: Emulator, timeout: float = 5.0) -> openai.AsyncAzureOpenAI:
    return openai.AsyncAzureOpenAI(
        azure_endpoint=emu.azure_endpoint,
        api_version=AZURE_API_VERSION,
        api_key=AZURE_KEY,
        max_retries=0,
        timeout=timeout,
    )


def anthropic_client(emu: Emulator, timeout: float = 5.0) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=emu.base_url_anthropic, api_key=ANTHROPIC_KEY, max_retries=0, timeout=timeout
    )


@dataclass
class Clients:
    """The three real SDK clients, built the way the server builds them (max_retries=0)."""

    openai: openai.AsyncOpenAI
    azure: openai.AsyncAzureOpenAI
    anthropic: anthropic.AsyncAnthropic

    def chat(self, provider: Provider, timeout: float | None) -> openai.AsyncOpenAI:
        client = self.azure if provider == "azure" else self.openai
        # with_options shares the underlying httpx2 client: cheap, and closed with the original.
        return client.with_options(timeout=timeout) if timeout else client

    def messages(self, timeout: float | None) -> anthropic.AsyncAnthropic:
        return self.anthropic.with_options(timeout=timeout) if timeout else self.anthropic


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sdk(emulator_server: Emulator) -> AsyncIterator[Clients]:
    async with (
        openai_client(emulator_server) as openai_sdk,
        azure_client(emulator_server) as azure_sdk,
        anthropic_client(emulator_server) as anthropic_sdk,
    ):
        yield Clients(openai_sdk, azure_sdk, anthropic_sdk)


@dataclass
class Run:
    """How far one SDK call got before it ended or raised."""

    created: bool = False
    pieces: list[str] = field(default_factory=list)
    finish: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


SDK_GENERATORS_LEFT_OPEN = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object BoundAsyncStream"
    ":pytest.PytestUnraisableExceptionWarning"
)
"""For the SDK calls that raise mid-stream: httpx's byte iterator under the SDK's stream is
left suspended, and closing it, even in this test's loop (``_finalize_sdk_generators``), can
race the emulator's side of the connection. That is the SDK's and httpx's cleanup, not what
these tests check; any other unraisable exception still fails them."""


async def stream_reply(
    sdk: Clients, provider: Provider, run: Run, timeout: float | None = None
) -> None:
    """Stream one reply through the real SDK, noting each text delta in `run` as it arrives."""
    try:
        await _stream_reply(sdk, provider, run, timeout)
    finally:
        await _finalize_sdk_generators()


async def _finalize_sdk_generators() -> None:
    """Close, in this test's loop, the async generators an SDK left suspended.

    When an SDK raises mid-stream, the generators under its stream (httpx's byte iterator)
    stay suspended even after the response is closed, and asyncio closes them only once the
    collector finds them: later, possibly in another test or after this loop is gone, where
    the close is reported as an unraisable exception. Collecting here finalizes them now.
    """
    gc.collect()
    await asyncio.sleep(0)  # asyncio's finalizer schedules each aclose() as a task
    await asyncio.sleep(0)


async def _stream_reply(
    sdk: Clients, provider: Provider, run: Run, timeout: float | None = None
) -> None:
    if provider == "anthropic":
        events = await sdk.messages(timeout).messages.create(
            model="claude-test", max_tokens=256, messages=MESSAGES, stream=True
        )
        run.created = True
        async with events:  # closes the response even when the SDK raises mid-stream
            async for event in events:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    run.pieces.append(event.delta.text)
                elif event.type == "message_delta":
                    run.finish = event.delta.stop_reason
        return
    chunks = await sdk.chat(provider, timeout).chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True
    )
    run.created = True
    async with chunks:
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                run.pieces.append(chunk.choices[0].delta.content)
            if chunk.choices and chunk.choices[0].finish_reason:
                run.finish = chunk.choices[0].finish_reason


async def complete(sdk: Clients, provider: Provider, timeout: float | None = None) -> str:
    """One non-streaming call through the real SDK; returns the reply text."""
    if provider == "anthropic":
        message = await sdk.messages(timeout).messages.create(
            model="claude-test", max_tokens=256, messages=MESSAGES
        )
        block = message.content[0]
        assert block.type == "text"
        return block.text
    completion = await sdk.chat(provider, timeout).chat.completions.create(
        model="gpt-test", messages=MESSAGES
    )
    return completion.choices[0].message.content or ""


# --- the happy path: streamed text, usage, keys, recording ---------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("text", [ASCII_TEXT, TRICKY_TEXT], ids=["ascii", "unicode"])
@pytest.mark.parametrize("chunk_chars", [1, 2, 5, 64])
async def test_streamed_text_reassembles_exactly(
    sdk: Clients, emulator: Emulator, provider: Provider, text: str, chunk_chars: int
) -> None:
    reply = Reply(text=text, chunk_chars=chunk_chars)
    emulator.push(reply)
    run = Run()
    await stream_reply(sdk, provider, run)
    assert run.text == text
    # One SDK delta per scripted chunk: the SDK kept our boundaries, so parser tests can use them.
    assert run.pieces == reply.pieces()
    assert run.finish == ("end_turn" if provider == "anthropic" else "stop")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_non_stream_reply(sdk: Clients, emulator: Emulator, provider: Provider) -> None:
    emulator.push(Reply(text=TRICKY_TEXT))
    assert await complete(sdk, provider) == TRICKY_TEXT
    assert emulator.last_request.stream is False


async def test_explicit_chunks_set_the_boundaries(sdk: Clients, emulator: Emulator) -> None:
    """A parser test must be able to split exactly where a fence marker could be torn."""
    emulator.push(Reply(chunks=("``", "`py", "thon\n")))
    run = Run()
    await stream_reply(sdk, "openai", run)
    assert run.pieces == ["``", "`py", "thon\n"]


async def test_openai_stream_usage_arrives_when_asked(sdk: Clients, emulator: Emulator) -> None:
    emulator.push(Reply(input_tokens=123, output_tokens=45), Reply())
    client = sdk.openai
    chunks = await client.chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    usages = [chunk.usage async for chunk in chunks if chunk.usage is not None]
    assert len(usages) == 1
    assert (usages[0].prompt_tokens, usages[0].completion_tokens) == (123, 45)
    assert usages[0].total_tokens == 168

    # Without include_usage the real API sends no usage chunk; neither does the emulator.
    chunks = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    assert [chunk.usage async for chunk in chunks if chunk.usage is not None] == []


async def test_openai_stream_helper_and_length_finish(sdk: Clients, emulator: Emulator) -> None:
    """The `.stream()` helper accumulates the reply; a "length" finish makes it raise."""
    emulator.push(Reply(text="abc", input_tokens=7, output_tokens=3), Reply(finish="length"))
    client = sdk.openai
    async with client.chat.completions.stream(
        model="gpt-test", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "abc"
    assert final.usage is not None and final.usage.prompt_tokens == 7

    # Surprise worth knowing: the helper treats a truncated reply as an error.
    with pytest.raises(openai.LengthFinishReasonError):
        async with client.chat.completions.stream(model="gpt-test", messages=MESSAGES) as s:
            await s.get_final_completion()


async def test_openai_non_stream_usage_and_finish(sdk: Clients, emulator: Emulator) -> None:
    emulator.push(Reply(text="cut sho", input_tokens=10, output_tokens=2, finish="length"))
    client = sdk.openai
    completion = await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 2)
    assert completion.model == "gpt-test"


async def test_anthropic_usage_and_stop_reason(sdk: Clients, emulator: Emulator) -> None:
    emulator.push(
        Reply(text="Hi.", input_tokens=321, output_tokens=9),
        Reply(text="Hi", input_tokens=5, output_tokens=1, finish="length"),
    )
    client = sdk.anthropic
    async with client.messages.stream(
        model="claude-test", max_tokens=64, messages=MESSAGES
    ) as stream:
        assert "".join([text async for text in stream.text_stream]) == "Hi."
        final = await stream.get_final_message()
    assert (final.usage.input_tokens, final.usage.output_tokens) == (321, 9)
    assert final.stop_reason == "end_turn"

    message = await client.messages.create(model="claude-test", max_tokens=1, messages=MESSAGES)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 1)
    assert message.stop_reason == "max_tokens"


async def test_default_usage_is_estimated_from_the_request(
    sdk: Clients, emulator: Emulator
) -> None:
    """Without scripted numbers usage still varies with the prompt, so accounting is testable."""
    client = sdk.anthropic
    short = await client.messages.create(
        model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "x"}]
    )
    long = await client.messages.create(
        model="claude-test",
        max_tokens=64,
        system="s" * 400,
        messages=[{"role": "user", "content": "x" * 400}],
    )
    assert short.usage.input_tokens == 1
    assert long.usage.input_tokens == 200
    assert short.content[0].type == "text" and short.content[0].text == "Hello from the emulator."


@pytest.mark.parametrize(
    ("provider", "key", "header"),
    [
        ("openai", OPENAI_KEY, ("authorization", f"Bearer {OPENAI_KEY}")),
        ("azure", AZURE_KEY, ("api-key", AZURE_KEY)),
        # anthropic 2.12 sends Bearer, not x-api-key (older releases sent x-api-key).
        ("anthropic", ANTHROPIC_KEY, ("authorization", f"Bearer {ANTHROPIC_KEY}")),
    ],
)
async def test_key_reaches_the_emulator(
    sdk: Clients, emulator: Emulator, provider: Provider, key: str, header: tuple[str, str]
) -> None:
    await stream_reply(sdk, provider, Run())
    request = emulator.last_request
    assert request.api_key == key
    assert request.headers[header[0]] == header[1]


async def test_requests_are_recorded(sdk: Clients, emulator: Emulator) -> None:
    client = sdk.anthropic
    await client.messages.create(
        model="claude-test",
        max_tokens=77,
        system="You plan.",
        messages=[{"role": "user", "content": "Plan it."}],
    )
    client = sdk.azure
    await client.chat.completions.create(model="my-deployment", messages=MESSAGES, stream=True)

    first, second = emulator.requests
    assert (first.method, first.path, first.provider) == ("POST", "/v1/messages", "anthropic")
    assert first.system == "You plan."
    assert first.max_tokens == 77
    assert first.messages == [{"role": "user", "content": "Plan it."}]
    assert first.model == "claude-test" and first.stream is False
    assert "anthropic-version" in first.headers

    assert second.path == "/openai/deployments/my-deployment/chat/completions"
    assert second.query == {"api-version": AZURE_API_VERSION}
    assert second.stream is True and second.provider == "azure"


async def test_one_queue_in_request_order_then_the_default(
    sdk: Clients, emulator: Emulator
) -> None:
    emulator.push(Reply(text="first"), Reply(text="second"), Reply(text="third"))
    assert emulator.pending == 3
    assert await complete(sdk, "anthropic") == "first"
    assert await complete(sdk, "openai") == "second"
    assert await complete(sdk, "azure") == "third"
    assert await complete(sdk, "openai") == emulator.default_reply.text
    assert emulator.pending == 0
    assert len(emulator.wait_for_requests(4, timeout=1)) == 4


async def test_reset_forgets_replies_and_requests(sdk: Clients, emulator: Emulator) -> None:
    emulator.push(Reply(text="stale"))
    await complete(sdk, "openai")
    emulator.push(Reply(text="never used"))
    emulator.reset()
    assert emulator.pending == 0
    assert emulator.requests == []
    with pytest.raises(LookupError):
        _ = emulator.last_request
    with pytest.raises(TimeoutError):
        emulator.wait_for_requests(1, timeout=0.01)


async def test_invalid_anthropic_request_is_rejected_without_using_a_reply(
    sdk: Clients,
    emulator: Emulator,
) -> None:
    """A system prompt sent as a message (an OpenAI habit) fails as on the real API."""
    emulator.push(Reply(text="kept"))
    client = sdk.anthropic
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model="claude-test",
            max_tokens=10,
            messages=[{"role": "system", "content": "x"}, *MESSAGES],  # type: ignore[list-item]
        )
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "messages.0.role: Input should be 'user' or 'assistant'",
        },
    }
    assert emulator.pending == 1
    assert len(emulator.requests) == 1


async def test_unknown_path_is_a_404_and_recorded(sdk: Clients, emulator: Emulator) -> None:
    client = sdk.openai
    with pytest.raises(openai.NotFoundError):
        await client.embeddings.create(model="e", input="x")
    assert emulator.last_request.path == "/v1/embeddings"
    assert emulator.last_request.provider == "unknown"


# --- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "status", "expected", "error_type"),
    [
        ("openai", 429, openai.RateLimitError, "requests"),
        ("openai", 500, openai.InternalServerError, "server_error"),
        ("openai", 503, openai.InternalServerError, "server_error"),
        ("openai", 529, openai.InternalServerError, "server_error"),
        ("openai", 401, openai.AuthenticationError, "invalid_request_error"),
        ("openai", 400, openai.BadRequestError, "invalid_request_error"),
        ("azure", 429, openai.RateLimitError, "requests"),
        ("azure", 503, openai.InternalServerError, "server_error"),
        ("azure", 401, openai.AuthenticationError, "invalid_request_error"),
        ("anthropic", 429, anthropic.RateLimitError, "rate_limit_error"),
        ("anthropic", 500, anthropic.InternalServerError, "api_error"),
        ("anthropic", 503, anthropic.ServiceUnavailableError, "api_error"),
        ("anthropic", 529, anthropic.OverloadedError, "overloaded_error"),
        ("anthropic", 401, anthropic.AuthenticationError, "authentication_error"),
        ("anthropic", 400, anthropic.BadRequestError, "invalid_request_error"),
    ],
)
async def test_http_error_status(
    sdk: Clients,
    emulator: Emulator,
    provider: Provider,
    status: int,
    expected: type,
    error_type: str,
) -> None:
    emulator.push(Reply(status=status, error_message="scripted failure", retry_after=3))
    run = Run()
    with pytest.raises(expected) as caught:
        await stream_reply(sdk, provider, run)
    error = caught.value
    assert type(error) is expected
    assert not run.created  # raised by create(), before any stream exists
    assert error.status_code == status
    assert error.response.headers["retry-after"] == "3"
    if provider == "anthropic":
        assert error.body == {
            "type": "error",
            "error": {"type": error_type, "message": "scripted failure"},
        }
    else:
        assert error.type == error_type
        assert error.message == f"Error code: {status} - scripted failure"


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("openai", openai.APITimeoutError),
        ("azure", openai.APITimeoutError),
        ("anthropic", anthropic.APITimeoutError),
    ],
)
async def test_silence_before_the_response_times_out_in_create(
    sdk: Clients, emulator: Emulator, provider: Provider, expected: type
) -> None:
    emulator.push(Reply(first_byte_delay=5))
    run = Run()
    with pytest.raises(expected) as caught:
        await stream_reply(sdk, provider, run, timeout=SHORT_TIMEOUT)
    assert type(caught.value) is expected
    assert not run.created


@SDK_GENERATORS_LEFT_OPEN
@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("openai", openai.APITimeoutError),
        ("azure", openai.APITimeoutError),
        # Not wrapped: anthropic's stream iterator lets the transport's exception through.
        ("anthropic", httpx2.ReadTimeout),
    ],
)
@pytest.mark.parametrize("after", [0, 2])
async def test_stall_mid_stream(
    sdk: Clients, emulator: Emulator, provider: Provider, expected: type, after: int
) -> None:
    reply = Reply(text=ASCII_TEXT, chunk_chars=4, stall_after=after, stall_for=5)
    emulator.push(reply)
    run = Run()
    with pytest.raises(expected) as caught:
        await stream_reply(sdk, provider, run, timeout=SHORT_TIMEOUT)
    assert type(caught.value) is expected
    assert run.created
    assert run.pieces == reply.pieces()[:after]


@SDK_GENERATORS_LEFT_OPEN
@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("openai", openai.APIConnectionError),
        ("azure", openai.APIConnectionError),
        ("anthropic", httpx2.RemoteProtocolError),
    ],
)
@pytest.mark.parametrize("after", [0, 3])
async def test_cut_mid_stream(
    sdk: Clients, emulator: Emulator, provider: Provider, expected: type, after: int
) -> None:
    reply = Reply(text=ASCII_TEXT, chunk_chars=4, cut_after=after)
    emulator.push(reply)
    run = Run()
    with pytest.raises(expected) as caught:
        await stream_reply(sdk, provider, run)
    assert type(caught.value) is expected
    # A cut must never look like a clean end: no finish reason, only the text sent before it.
    assert run.created and run.finish is None
    assert run.pieces == reply.pieces()[:after]
    root = caught.value if provider == "anthropic" else caught.value.__cause__
    assert isinstance(root, httpx2.RemoteProtocolError)
    assert "incomplete chunked read" in str(root)


@SDK_GENERATORS_LEFT_OPEN
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_malformed_chunk_raises_a_bare_json_error(
    sdk: Clients, emulator: Emulator, provider: Provider
) -> None:
    reply = Reply(text=ASCII_TEXT, chunk_chars=4, malformed_after=2)
    emulator.push(reply)
    run = Run()
    with pytest.raises(json.JSONDecodeError):
        await stream_reply(sdk, provider, run)
    assert run.created and run.finish is None
    assert run.pieces == reply.pieces()[:2]


@SDK_GENERATORS_LEFT_OPEN
@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("openai", openai.APIError),
        ("azure", openai.APIError),
        ("anthropic", anthropic.APIStatusError),
    ],
)
async def test_error_event_mid_stream(
    sdk: Clients, emulator: Emulator, provider: Provider, expected: type
) -> None:
    reply = Reply(text=ASCII_TEXT, chunk_chars=4, error_event_after=1)
    emulator.push(reply)
    run = Run()
    with pytest.raises(expected) as caught:
        await stream_reply(sdk, provider, run)
    error = caught.value
    assert type(error) is expected  # the base classes: neither SDK picks a subclass here
    assert run.pieces == reply.pieces()[:1]
    if provider == "anthropic":
        assert error.status_code == 200  # the stream's status, not the error's
        assert error.body["error"]["type"] == "overloaded_error"
    else:
        assert not hasattr(error, "status_code")
        assert error.type == "server_error"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_trickle_outlasts_the_read_timeout(
    sdk: Clients, emulator: Emulator, provider: Provider
) -> None:
    """A per-read timeout never fires on a live stream: the server needs its own deadline."""
    reply = Reply(text="01234567", chunk_chars=1, trickle=0.05)
    emulator.push(reply)
    run = Run()
    started = time.monotonic()
    await stream_reply(sdk, provider, run, timeout=SHORT_TIMEOUT)
    assert time.monotonic() - started > 1.5 * SHORT_TIMEOUT
    assert run.text == "01234567"


@pytest.mark.parametrize(
    ("provider", "fault", "expected"),
    [
        ("openai", "stall", openai.APITimeoutError),
        ("anthropic", "stall", anthropic.APITimeoutError),
        ("openai", "cut", openai.APIConnectionError),
        ("azure", "cut", openai.APIConnectionError),
        ("anthropic", "cut", anthropic.APIConnectionError),
        # Unwrapped even without a stream: the SDKs parse the body with plain json.loads.
        ("openai", "malformed", json.JSONDecodeError),
        ("anthropic", "malformed", json.JSONDecodeError),
    ],
)
async def test_non_stream_faults(
    sdk: Clients, emulator: Emulator, provider: Provider, fault: str, expected: type
) -> None:
    faults = {
        "stall": Reply(stall_after=0, stall_for=5),
        "cut": Reply(cut_after=0),
        "malformed": Reply(malformed_after=0),
    }
    emulator.push(faults[fault])
    with pytest.raises(expected) as caught:
        await complete(sdk, provider, timeout=SHORT_TIMEOUT)
    assert type(caught.value) is expected


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_retry_after_is_honoured_at_any_length(
    sdk: Clients, emulator: Emulator, provider: Provider
) -> None:
    """With retries on, both SDKs wait out whatever retry-after says: the server must cap it."""

    async def call() -> str:
        if provider == "anthropic":
            client = sdk.anthropic.with_options(max_retries=2)
            message = await client.messages.create(
                model="claude-test", max_tokens=8, messages=MESSAGES
            )
            return message.content[0].text if message.content[0].type == "text" else ""
        chat = sdk.openai.with_options(max_retries=2)
        completion = await chat.chat.completions.create(model="gpt-test", messages=MESSAGES)
        return completion.choices[0].message.content or ""

    emulator.push(Reply(status=429, retry_after=0.05), Reply(text="after the wait"))
    assert await call() == "after the wait"
    assert len(emulator.requests) == 2

    # Exponential backoff would have retried within 0.5 s; a 100 s retry-after is still pending.
    emulator.push(Reply(status=429, retry_after=100))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call(), timeout=0.7)
    assert len(emulator.requests) == 3


@pytest.mark.parametrize(
    ("provider", "fault", "expected"),
    [
        ("openai", "stall", openai.APITimeoutError),
        ("openai", "cut", openai.APIConnectionError),
        ("anthropic", "stall", httpx2.ReadTimeout),
        ("anthropic", "cut", httpx2.RemoteProtocolError),
    ],
)
async def test_stream_helpers_raise_the_same(
    sdk: Clients, emulator: Emulator, provider: Provider, fault: str, expected: type
) -> None:
    """The `.stream()` helpers add no wrapping of their own: the table holds for them too."""
    if fault == "stall":
        emulator.push(Reply(stall_after=1, stall_for=5))
    else:
        emulator.push(Reply(cut_after=1))
    received: list[str] = []
    with pytest.raises(expected) as caught:
        if provider == "anthropic":
            async with sdk.messages(SHORT_TIMEOUT).messages.stream(
                model="claude-test", max_tokens=64, messages=MESSAGES
            ) as stream:
                async for text in stream.text_stream:
                    received.append(text)
        else:
            async with sdk.chat(provider, SHORT_TIMEOUT).chat.completions.stream(
                model="gpt-test", messages=MESSAGES
            ) as chat_stream:
                async for event in chat_stream:
                    if event.type == "content.delta" and event.delta:
                        received.append(event.delta)
    assert type(caught.value) is expected
    assert received == Reply().pieces()[:1]
