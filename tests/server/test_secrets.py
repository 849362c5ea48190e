"""Provider keys are request-scoped (DESIGN invariant 3): used, then found nowhere.

Each test first checks that the key really reached the provider emulator, so that "not found"
means something, then looks for it where it must not be: the database files (WAL included),
every file under the data and home folders, the logs, the messages sent to the client, reprs,
and live objects once the stream is over.
"""

from __future__ import annotations

import gc
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plancast.server import logs
from plancast.server.config import Settings
from plancast.server.llm import calls
from plancast.server.llm.credentials import Credentials, CredentialsWiped
from plancast.server.streams import engine as engine_module
from plancast.shared import (
    End,
    ProviderCredentials,
    StartStream,
    Stop,
    decode_client,
    decode_server,
    encode,
)
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    FILE_REPLY,
    Server,
    anthropic_creds,
    collect,
    expect_error,
    new_key,
    openai_creds,
    recv_text,
    running,
    send,
    start_message,
    start_stream,
    wait_until,
)

PROVIDERS = ["openai", "anthropic"]


def _creds(emulator: Emulator, provider: str, key: str) -> ProviderCredentials:
    return openai_creds(emulator, key) if provider == "openai" else anthropic_creds(emulator, key)


def _forms(key: str) -> list[bytes]:
    """The key as it could sit in a file: UTF-8/ASCII and UTF-16 (both byte orders)."""
    return [key.encode(), key.encode("utf-16-le"), key.encode("utf-16-be")]


def _files_holding(folder: Path, key: str) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(form in data for form in _forms(key)):
                hits.append(str(path.relative_to(folder)))
    return hits


def _run_and_record_frames(
    server: Server, plan_id: str, creds: ProviderCredentials
) -> tuple[str, list[str]]:
    """Run one stream; return its id and every raw frame the client received."""
    frames: list[str] = []
    with server.connect() as ws:
        send(ws, start_message(plan_id, creds))
        while True:
            frames.append(recv_text(ws))
            message = decode_server(frames[-1])
            if isinstance(message, End):
                return message.stream_id, frames


# -- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_key_is_in_no_file(
    settings: Settings, emulator: Emulator, clean_environ: Path, provider: str
) -> None:
    key = new_key("sk-ant-test-" if provider == "anthropic" else "sk-test-")
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=7))
    with running(settings) as server:
        plan_id = server.new_plan()
        stream_id, _ = _run_and_record_frames(server, plan_id, _creds(emulator, provider, key))
        assert server.stream_row(stream_id)["status"] == "finished"
        assert emulator.last_request.api_key == key  # the key was really used
        # While the server runs, the WAL holds the recent writes.
        assert (settings.data_dir / "plancast.db-wal").exists()
        assert _files_holding(settings.data_dir, key) == []
    assert (settings.data_dir / "plancast.db").stat().st_size > 0
    assert _files_holding(settings.data_dir, key) == []
    assert _files_holding(clean_environ, key) == []


def test_the_file_scan_would_find_the_key(tmp_path: Path) -> None:
    key = new_key()
    (tmp_path / "a.bin").write_bytes(b"\x00" + key.encode("utf-16-le") + b"\x00")
    assert _files_holding(tmp_path, key) == ["a.bin"]


# -- what the client is told ----------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 400])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_error_that_quotes_the_key_does_not_pass_it_on(
    server: Server, emulator: Emulator, provider: str, status: int
) -> None:
    key = new_key()
    echo = f"Incorrect API key provided: {key}. Header was 'Authorization: Bearer {key}'."
    emulator.push(Reply(status=status, error_message=echo))
    plan_id = server.new_plan()
    stream_id, frames = _run_and_record_frames(server, plan_id, _creds(emulator, provider, key))
    assert emulator.last_request.api_key == key
    end = decode_server(frames[-1])
    assert isinstance(end, End) and end.status == "failed"
    assert end.error_code in ("provider_auth", "provider_bad_response")
    for frame in frames:
        assert key not in frame
        assert "Incorrect API key" not in frame  # the provider's own text is not repeated
    row = server.stream_row(stream_id)
    assert key not in json.dumps(row)
    assert _files_holding(server.data_dir, key) == []


@pytest.mark.parametrize(
    "credentials",
    [
        [{"provider": "acme", "api_key": "KEY"}],
        [{"provider": "openai", "api_key": "KEY", "extra": "KEY"}],
        [{"provider": "openai", "api_key": ["KEY"]}],
        [{"provider": "openai", "api_key": "KEY"}, "KEY"],
        "KEY",
    ],
)
def test_a_malformed_start_does_not_echo_the_key(server: Server, credentials: Any) -> None:
    key = new_key()
    frame = {
        "type": "start",
        "request_id": "r1",
        "plan_id": "pl_x",
        "mode": "tell",
        "prompt": "hi",
        "model": "openai/gpt-4.1",
        "credentials": json.loads(json.dumps(credentials).replace("KEY", key)),
    }
    with server.connect() as ws:
        ws.send_text(json.dumps(frame))
        text = recv_text(ws)
    assert json.loads(text)["type"] == "error"
    assert key not in text


def test_credentials_sent_twice_are_refused_without_echo(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    key = new_key()
    start = start_message(plan_id, openai_creds(emulator, key))
    twice = StartStream(
        request_id=start.request_id,
        plan_id=plan_id,
        mode="tell",
        prompt="x",
        model=start.model,
        credentials=start.credentials * 2,
    )
    with server.connect() as ws:
        send(ws, twice)
        error = expect_error(ws)
    assert error.code == "invalid_request"
    assert key not in error.message
    assert emulator.requests == []


# -- reprs ----------------------------------------------------------------------------------


def test_no_repr_shows_the_key(emulator: Emulator) -> None:
    key = new_key()
    creds = openai_creds(emulator, key)
    start = start_message("pl_x", creds)
    holder = Credentials([creds])
    decoded = decode_client(encode(start))
    assert decoded == start  # the key does travel inside ``start`` ...
    for thing in (creds, start, decoded, holder):
        assert key not in repr(thing)  # ... but never shows in a repr
        assert key not in str(thing)
    assert repr(holder) == "<Credentials openai>"
    holder.wipe()
    assert repr(holder) == "<Credentials wiped>"


# -- the holder is wiped --------------------------------------------------------------------


class _Recorded(Credentials):
    """``Credentials`` that remembers every holder the engine makes."""

    __slots__ = ()
    made: list[Credentials] = []

    def __init__(self, items: Any) -> None:
        super().__init__(items)
        _Recorded.made.append(self)


@pytest.fixture
def holders(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Credentials]]:
    _Recorded.made = []
    monkeypatch.setattr(engine_module, "Credentials", _Recorded)
    yield _Recorded.made


@pytest.fixture
def borrowed(monkeypatch: pytest.MonkeyPatch) -> list[Credentials]:
    """Every holder a model call was given, as the engine passed it."""
    seen: list[Credentials] = []
    real = calls.stream_chat

    def spy(request: Any, credentials: Credentials, **kwargs: Any) -> Any:
        seen.append(credentials)
        return real(request, credentials, **kwargs)

    monkeypatch.setattr(calls, "stream_chat", spy)
    return seen


def _assert_wiped(holder: Credentials) -> None:
    assert holder.wiped
    assert holder.providers == ()
    with pytest.raises(CredentialsWiped):
        holder.get("openai")


@pytest.mark.parametrize("ending", ["finished", "failed", "stopped"])
def test_the_streams_holder_is_wiped_when_it_ends(
    server: Server,
    plan_id: str,
    emulator: Emulator,
    holders: list[Credentials],
    borrowed: list[Credentials],
    ending: str,
) -> None:
    replies = {
        "finished": Reply(text="fine"),
        "failed": Reply(status=401),
        "stopped": Reply(text="0123456789" * 4, chunk_chars=4, stall_after=1, stall_for=3.0),
    }
    emulator.push(replies[ending])
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator)))
        if ending == "stopped":
            collect(ws, started.stream_id, until=lambda e: e.TYPE == "delta")
            (holder,) = holders
            assert not holder.wiped  # still in use while the stream runs
            send(ws, Stop(stream_id=started.stream_id))
        end = collect(ws, started.stream_id)[-1]
    assert isinstance(end, End) and end.status == ending
    assert len(holders) == 1 and borrowed == holders  # one holder, the one every call used
    _assert_wiped(holders[0])


def test_holders_of_refused_starts_are_wiped(
    server: Server, plan_id: str, emulator: Emulator, holders: list[Credentials]
) -> None:
    emulator.push(Reply(text="0123456789" * 4, chunk_chars=4, stall_after=1, stall_for=3.0))
    creds = openai_creds(emulator)
    with server.connect() as ws:
        start = start_message(plan_id, creds, request_id="first")
        started = start_stream(ws, start)
        collect(ws, started.stream_id, until=lambda e: e.TYPE == "delta")
        refused = [
            start_message(plan_id, creds, request_id="busy"),  # branch busy
            start_message("pl_unknown", creds, request_id="unknown-plan"),
            start_message(plan_id, None, request_id="no-key"),  # missing key
        ]
        for message in refused:
            send(ws, message)
            expect_error(ws)
        send(ws, start)  # a retried start: the same stream, a second holder, wiped at once
        while json.loads(recv_text(ws))["type"] != "started":
            pass
        assert len(holders) == 5
        assert all(h.wiped for h in holders[1:])
        assert not holders[0].wiped
        send(ws, Stop(stream_id=started.stream_id))
    wait_until(lambda: holders[0].wiped)
    _assert_wiped(holders[0])


def _live_holders_of(key: str) -> list[str]:
    """Live objects that refer to a string or bytes containing ``key`` (not ``key`` itself)."""
    needle = key.encode()
    found = []
    gc.collect()
    for obj in gc.get_objects():
        for ref in gc.get_referents(obj):
            if type(ref) is str and ref is not key and key in ref:
                found.append(repr(obj)[:120])
            elif type(ref) in (bytes, bytearray) and needle in ref:
                found.append(repr(obj)[:120])
    return found


def _stream_with_key(server: Server, plan_id: str, emulator: Emulator, key: str) -> str:
    """Start a stream in a helper frame, so the test itself holds no copy of the key."""
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator, key)))
        collect(ws, started.stream_id)
    assert emulator.last_request.api_key == key
    emulator.reset()  # the provider's copy is not ours to check
    return started.stream_id


def test_no_live_object_holds_the_key_after_the_stream_and_its_connection(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    key = new_key()
    _stream_with_key(server, plan_id, emulator, key)
    assert _live_holders_of(key) == []


def test_no_live_object_holds_the_key_while_the_connection_stays_open(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    key = new_key()
    with server.connect() as ws:
        send(ws, start_message(plan_id, openai_creds(emulator, key)))  # no copy kept here
        started = recv_text(ws)
        stream_id = json.loads(started)["stream_id"]
        collect(ws, stream_id)
        assert emulator.last_request.api_key == key
        emulator.reset()
        holders = _live_holders_of(key)
    assert holders == []


# -- logs -----------------------------------------------------------------------------------


def _log_text(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
    return "\n".join(parts)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_key_is_in_no_log_record_at_debug(
    server: Server,
    plan_id: str,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
    provider: str,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, libraries included ...
    for name in logs.KEY_CARRIERS:  # ... even if something set their levels before
        caplog.set_level(logging.DEBUG, logger=name)
    key = new_key()
    emulator.push(
        Reply(text=FILE_REPLY, chunk_chars=9),
        Reply(status=401, error_message=f"bad key {key}"),
    )
    creds = _creds(emulator, provider, key)
    _run_and_record_frames(server, plan_id, creds)
    _run_and_record_frames(server, plan_id, creds)
    assert [r.api_key for r in emulator.requests] == [key, key]
    names = {r.name for r in caplog.records}
    # Not vacuous: the server's stream lines and the HTTP clients' debug lines were captured.
    assert "plancast.server.streams" in names
    assert any(n.startswith(("httpx2", "httpcore2", provider)) for n in names), names
    assert key not in caplog.text
    assert key not in _log_text(caplog.records)


@pytest.fixture
def configured_logging() -> Iterator[io.StringIO]:
    """``logs.configure("debug")``, as the entry point runs it, into a buffer; undone after."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in logs.KEY_CARRIERS}
    logs.configure("debug")
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def test_configured_logging_quiets_key_carriers_and_redacts(
    configured_logging: io.StringIO,
) -> None:
    key = new_key()
    for name in logs.KEY_CARRIERS:
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING
    logging.getLogger("httpx2").info("request headers: Authorization: Bearer %s", key)
    logging.getLogger("plancast.server.test").debug("debug lines are kept")
    logging.getLogger("plancast.server.test").info("sent key %s to the provider", key)
    logging.getLogger("plancast.server.test").warning("header x-api-key: %s", key)
    try:
        raise ValueError(f"the SDK said: invalid key {key}")
    except ValueError:
        logging.getLogger("plancast.server.test").exception("call failed")
    output = configured_logging.getvalue()
    assert "debug lines are kept" in output
    assert "call failed" in output and "Traceback" in output and "ValueError" in output
    assert "request headers" not in output  # the carrier's INFO line was dropped
    assert output.count("[redacted]") >= 3
    assert key not in output


def test_configured_logging_during_a_stream_writes_no_key(
    configured_logging: io.StringIO, server: Server, plan_id: str, emulator: Emulator
) -> None:
    key = new_key()
    emulator.push(Reply(text="fine"), Reply(status=401, error_message=f"bad key {key}"))
    creds = openai_creds(emulator, key)
    _run_and_record_frames(server, plan_id, creds)
    _run_and_record_frames(server, plan_id, creds)
    output = configured_logging.getvalue()
    assert "stream st_" in output  # the stream's open and close lines were written
    assert key not in output


@pytest.mark.parametrize(
    "text",
    [
        "sk-{hex}",
        "sk-proj-{hex}",
        "sk-ant-api03-{hex}",
        "Authorization: Bearer {hex}",
        "authorization: bearer {hex}",
        "{{'authorization': 'Bearer {hex}'}}",
        "api_key={hex}",
        '"api_key": "{hex}"',
        "x-api-key: {hex}",
        "api-key: {hex}",
        "token={hex}",
        "password: {hex}",
    ],
)
def test_redact_removes_key_shaped_text(text: str) -> None:
    secret = new_key("")
    line = "before " + text.format(hex=secret) + " after"
    cleaned = logs.redact(line)
    assert secret not in cleaned
    assert "[redacted]" in cleaned
    assert cleaned.startswith("before ") and cleaned.endswith(" after")


@pytest.mark.parametrize(
    "text",
    [
        "stream st_4f0c9x2kq8m1a7bz started plan=pl_abc branch=main",
        "HTTP Request: POST http://127.0.0.1:1234/v1/chat/completions 200",
        "risk-assessment of the task-runner",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert logs.redact(text) == text


def test_the_filter_redacts_arguments_and_tracebacks() -> None:
    key = new_key()
    try:
        raise RuntimeError(f"boom with {key}")
    except RuntimeError as exc:
        record = logging.LogRecord(
            "plancast.server", logging.ERROR, __file__, 1, "failed with %s", (key,), None
        )
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert logs.RedactingFilter().filter(record) is True
    formatted = logging.Formatter().format(record)
    assert key not in formatted
    assert "failed with [redacted]" in formatted
    assert "RuntimeError: boom with [redacted]" in formatted
