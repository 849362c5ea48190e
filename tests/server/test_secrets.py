"""Provider keys never reach the server process (DESIGN invariant 3), and are found nowhere.

The client seals a stream's keys to that stream's worker process (``POST /api/v1/seals``); the
server forwards ciphertext, and only the worker, which exits when the stream ends, can open it.
Each test first checks that the key really reached the provider emulator (so the worker held
it and "not found" means something), then looks for it where it must not be: what the server
receives (the ``start`` frame, the message it decodes, its pipe to and from the worker), the
database files (WAL included), every file under the data and home folders, the logs of the
server and of the worker, the messages sent to the client, and reprs. That the worker exits
however its stream ends is tested in test_workers.py.

The app runs in this process, and the test sealed the key here, so the key is in this process's
memory on purpose: nothing here scans memory (the e2e suite scans the real processes').
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from plancast.server import logs
from plancast.server.config import Settings
from plancast.server.llm.credentials import Credentials, CredentialsWiped
from plancast.server.streams.engine import StreamService
from plancast.server.workers.channel import Channel
from plancast.shared import (
    End,
    EventBatch,
    Message,
    ProviderCredentials,
    StartStream,
    decode_client,
    decode_server,
    encode,
)
from tests import pg
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    FILE_REPLY,
    Server,
    anthropic_creds,
    collect,
    expect_error,
    fresh_forkserver,
    load_settings,
    new_key,
    openai_creds,
    recv_text,
    running,
    send,
    start_message,
    text_cells,
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
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # a database's temporary file, gone meanwhile
                continue
            if any(form in data for form in _forms(key)):
                hits.append(str(path.relative_to(folder)))
    return hits


def _database_files_holding(settings: Settings, key: str) -> list[str]:
    """The database's files that hold the key.

    SQLite: the files in the data folder, its WAL included. PostgreSQL: every file of the
    test cluster (its data files, its WAL, its log), after a checkpoint has written every
    changed page out of shared memory.
    """
    if not pg.POSTGRESQL:
        return _files_holding(settings.data_dir, key)
    cluster = pg.cluster()
    cluster.checkpoint()
    return _files_holding(cluster.root, key)


def _cells_holding(settings: Settings, key: str) -> list[str]:
    """The tables of the app's database with a text value holding the key."""
    return [t for t, cells in text_cells(settings.data_dir).items() if any(key in c for c in cells)]


def _run_and_record_frames(
    server: Server, plan_id: str, creds: ProviderCredentials
) -> tuple[str, list[str]]:
    """Run one stream; return its id and every raw frame the client received."""
    frames: list[str] = []
    with server.connect() as ws:
        send(ws, start_message(plan_id, creds))
        while True:
            frames.append(recv_text(ws))
            message = _last_event(decode_server(frames[-1]))
            if isinstance(message, End):
                return message.stream_id, frames


def _last_event(message: Message) -> Message:
    """A frame's last message: an ``events`` batch counts as its last event."""
    return message.events[-1] if isinstance(message, EventBatch) else message


# -- what reaches the server ----------------------------------------------------------------


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """What the server process takes in: each ``start`` it handles, and its pipe traffic.

    ``Channel`` is patched in this process only, so this records the server's end of every
    worker's pipe: what it sends to the worker and what it reads back.
    """
    seen: dict[str, list[Any]] = {"starts": [], "to_worker": [], "from_worker": []}
    real_start, real_send, real_receive = StreamService.start, Channel.send, Channel.receive

    async def start(self: StreamService, principal: Any, request: StartStream) -> Any:
        seen["starts"].append(request)
        return await real_start(self, principal, request)

    def send_(self: Channel, message: dict[str, Any]) -> None:
        seen["to_worker"].append(json.dumps(message))
        real_send(self, message)

    async def receive(self: Channel) -> dict[str, Any]:
        message = await real_receive(self)
        seen["from_worker"].append(json.dumps(message))
        return message

    monkeypatch.setattr(StreamService, "start", start)
    monkeypatch.setattr(Channel, "send", send_)
    monkeypatch.setattr(Channel, "receive", receive)
    return seen


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_server_never_receives_a_plaintext_key(
    server: Server,
    plan_id: str,
    emulator: Emulator,
    received: dict[str, list[Any]],
    provider: str,
) -> None:
    key = new_key()
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=9))
    start = server.seal(start_message(plan_id, _creds(emulator, provider, key)))
    frame = encode(start)
    assert key not in frame  # the start frame carries ciphertext only
    with server.connect() as ws:
        ws.send_text(frame)
        stream_id = json.loads(recv_text(ws))["stream_id"]
        end = collect(ws, stream_id)[-1]
    assert isinstance(end, End) and end.status == "finished"
    assert emulator.last_request.api_key == key  # the worker opened the seal and used the key

    (handled,) = received["starts"]
    assert handled == start
    assert all(key not in str(getattr(handled, f.name)) for f in fields(handled))
    # Not vacuous: the recorder saw the whole exchange with the worker.
    kinds = {json.loads(m)["t"] for m in received["to_worker"] + received["from_worker"]}
    assert {"open", "opened", "chat", "delta", "done"} <= kinds
    opened = [json.loads(m) for m in received["to_worker"] if json.loads(m)["t"] == "open"]
    assert [m["sealed"] for m in opened] == [start.sealed]  # forwarded as it came
    for message in received["to_worker"] + received["from_worker"]:
        assert key not in message


def test_the_sealed_text_is_ciphertext_not_an_encoding(server: Server, emulator: Emulator) -> None:
    key = new_key()
    first = server.seal(start_message("pl_x", openai_creds(emulator, key)))
    raw = base64.urlsafe_b64decode(first.sealed + "=" * (-len(first.sealed) % 4))
    assert all(form not in raw for form in _forms(key))
    second = server.seal(start_message("pl_x", openai_creds(emulator, key)))
    assert second.seal_id != first.seal_id
    assert second.sealed != first.sealed  # another worker's key pair, another ciphertext


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
        if not pg.POSTGRESQL:  # while the server runs, the WAL holds the recent writes
            assert (settings.data_dir / "plancast.db-wal").exists()
        assert _cells_holding(settings, key) == []
        assert _database_files_holding(settings, key) == []
        assert _files_holding(settings.data_dir, key) == []
    if not pg.POSTGRESQL:
        assert (settings.data_dir / "plancast.db").stat().st_size > 0
    assert _database_files_holding(settings, key) == []
    assert _files_holding(settings.data_dir, key) == []
    assert _files_holding(clean_environ, key) == []


def test_the_file_scan_would_find_the_key(tmp_path: Path) -> None:
    key = new_key()
    (tmp_path / "a.bin").write_bytes(b"\x00" + key.encode("utf-16-le") + b"\x00")
    assert _files_holding(tmp_path, key) == ["a.bin"]


def test_the_database_scans_would_find_a_stored_value(server: Server) -> None:
    """The scans above are not vacuous: a value the server stores is found by both."""
    stored = new_key("stored-")
    server.new_project(stored)
    assert _cells_holding(server.settings, stored) == ["projects"]
    assert _database_files_holding(server.settings, stored) != []


# -- what the client is told ----------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 400])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_error_that_quotes_the_key_does_not_pass_it_on(
    server: Server,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = new_key()
    echo = f"Incorrect API key provided: {key}. Header was 'Authorization: Bearer {key}'."
    emulator.push(Reply(status=status, error_message=echo))
    plan_id = server.new_plan()
    stream_id, frames = _run_and_record_frames(server, plan_id, _creds(emulator, provider, key))
    assert emulator.last_request.api_key == key
    end = _last_event(decode_server(frames[-1]))
    assert isinstance(end, End) and end.status == "failed"
    assert end.error_code in ("provider_auth", "provider_bad_response")
    # The worker's error text is plancast's own: it does not repeat the provider's.
    assert end.error_message and key not in end.error_message
    for frame in frames:
        assert key not in frame
        assert "Incorrect API key" not in frame  # the provider's own text is not repeated
    row = server.stream_row(stream_id)
    assert row["error_message"] == end.error_message
    assert key not in json.dumps(row)
    assert _files_holding(server.data_dir, key) == []
    assert key not in caplog.text
    assert "Incorrect API key" not in caplog.text


@pytest.mark.parametrize(
    "credentials",
    [
        [{"provider": "openai", "api_key": "KEY"}],
        [{"provider": "acme", "api_key": "KEY"}],
        [{"provider": "openai", "api_key": "KEY", "extra": "KEY"}],
        [{"provider": "openai", "api_key": ["KEY"]}],
        [{"provider": "openai", "api_key": "KEY"}, "KEY"],
        "KEY",
    ],
)
def test_a_start_with_plain_credentials_is_refused_without_echo(
    server: Server, emulator: Emulator, credentials: Any
) -> None:
    key = new_key()
    sealed = server.seal(start_message("pl_x", openai_creds(emulator)))
    frame = {
        **json.loads(encode(sealed)),  # a start that is valid but for its plain credentials
        "credentials": json.loads(json.dumps(credentials).replace("KEY", key)),
    }
    with server.connect() as ws:
        ws.send_text(json.dumps(frame))
        text = recv_text(ws)
    error = decode_server(text)
    assert error.TYPE == "error" and error.code == "bad_message"  # type: ignore[attr-defined]
    assert "plain credentials" in error.message  # type: ignore[attr-defined]
    assert key not in text
    assert emulator.requests == []


def test_a_key_sent_in_place_of_the_sealed_text_is_refused_without_echo(
    server: Server, plan_id: str, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = new_key()
    start = server.seal(start_message(plan_id, openai_creds(emulator)))
    with server.connect() as ws:
        ws.send_text(encode(replace(start, sealed=key)))
        text = recv_text(ws)
    error = decode_server(text)
    assert error.code == "bad_seal"  # type: ignore[attr-defined]
    assert key not in text
    assert key not in caplog.text
    assert server.streams(plan_id) == []
    assert _files_holding(server.data_dir, key) == []
    assert emulator.requests == []


def test_credentials_sent_twice_are_refused_without_echo(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    key = new_key()
    creds = openai_creds(emulator, key)
    twice = start_message(plan_id, creds, extra_credentials=(creds,))
    with server.connect() as ws:
        send(ws, twice)
        error = expect_error(ws)
    assert (error.code, error.request_id) == ("invalid_request", twice.request_id)
    assert "openai" in error.message and "twice" in error.message
    assert key not in error.message
    assert server.streams(plan_id) == []
    assert emulator.requests == []


# -- reprs ----------------------------------------------------------------------------------


def test_no_repr_shows_the_key(server: Server, emulator: Emulator) -> None:
    key = new_key()
    creds = openai_creds(emulator, key)
    start = server.seal(start_message("pl_x", creds))
    holder = Credentials([creds])  # what the worker keeps the opened keys in
    decoded = decode_client(encode(start))
    assert decoded == start
    assert key not in encode(start)  # the key travels sealed ...
    for thing in (creds, start, decoded, holder):
        assert key not in repr(thing)  # ... and shows in no repr
        assert key not in str(thing)
    assert start.sealed not in repr(start)  # nor does the sealed text
    assert repr(holder) == "<Credentials openai>"
    holder.wipe()
    assert repr(holder) == "<Credentials wiped>"


def test_the_workers_holder_keeps_nothing_once_wiped(emulator: Emulator) -> None:
    # The worker wipes its holder when it leaves, before the process itself goes.
    holder = Credentials([openai_creds(emulator), anthropic_creds(emulator)])
    assert holder.providers == ("openai", "anthropic") and not holder.wiped
    holder.wipe()
    assert holder.wiped and holder.providers == ()
    with pytest.raises(CredentialsWiped):
        holder.get("openai")
    with pytest.raises(CredentialsWiped):
        holder.require("anthropic")
    holder.wipe()  # idempotent
    assert holder.wiped


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
def test_the_servers_log_records_hold_no_key_even_at_debug(
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
    # Not vacuous: the server's stream lines and the HTTP client's debug lines were captured ...
    assert "plancast.server.streams" in names
    assert any(n.startswith(("httpx", "httpcore")) for n in names), names
    # ... and none is about the provider: the server process made no model call, its worker did.
    assert not [r for r in caplog.records if emulator.base_url in r.getMessage()]
    assert not [n for n in names if n.split(".")[0] in ("openai", "anthropic")]
    assert key not in caplog.text
    assert key not in _log_text(caplog.records)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_workers_log_holds_no_key(
    data_dir: Path, emulator: Emulator, tmp_path: Path, provider: str
) -> None:
    key = new_key()
    echo = f"Incorrect API key provided: {key}. Header was 'Authorization: Bearer {key}'."
    emulator.push(
        Reply(status=429, retry_after=0.01, error_message=echo),  # retried, and the worker logs it
        Reply(text=FILE_REPLY, chunk_chars=9),
        Reply(status=401, error_message=echo),
        Reply(status=400, error_message=echo),
    )
    log = tmp_path / "workers.log"
    with fresh_forkserver(log) as forkserver, running(load_settings(data_dir)) as server:
        # Every worker is forked by this fork server and writes its log to its stderr: the file.
        assert os.readlink(f"/proc/{forkserver.process.pid}/fd/2") == str(log)
        plan_id = server.new_plan()
        creds = _creds(emulator, provider, key)
        ends = []
        for _ in range(3):
            _, frames = _run_and_record_frames(server, plan_id, creds)
            ends.append(_last_event(decode_server(frames[-1])))
    assert [e.status for e in ends] == ["finished", "failed", "failed"]  # type: ignore[attr-defined]
    assert [r.api_key for r in emulator.requests] == [key] * 4
    text = log.read_bytes()
    assert b"call failed (provider_rate_limited); retry 1" in text  # not vacuous
    assert all(form not in text for form in _forms(key))
    assert b"Incorrect API key" not in text


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
