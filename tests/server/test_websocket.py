"""The stream socket: handshake, typed errors for bad frames, and streams end to end.

The model is the provider emulator, reached by the real SDKs over loopback; everything else
runs in-process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from plancast.server.config import Settings
from plancast.server.domain.principal import Principal, Role
from plancast.server.errors import NotFound
from plancast.server.llm import prompts
from plancast.shared import (
    MAX_MESSAGE_BYTES,
    SEAL_SUITE,
    SUBPROTOCOL,
    Attach,
    ChangeEvent,
    Delta,
    End,
    NewSeal,
    Ping,
    Pong,
    ProviderCredentials,
    SealOffer,
    Started,
    StartStream,
    Status,
    Stop,
    StreamEvent,
    seal_credentials,
)
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    FILE_REPLY,
    Server,
    anthropic_creds,
    check_sequence,
    collect,
    expect_error,
    load_settings,
    new_key,
    openai_creds,
    query,
    recv,
    reply_text,
    running,
    send,
    start_message,
    start_stream,
    wait_process_gone,
    wait_until,
)

TEXT = "Grüße! Here is the plan, step by step: one, two, three. ✓\n"
SLOW = 0.03  # seconds between chunks of a reply that must still be running when we act


def ping_pong(ws: WebSocketTestSession, nonce: str = "still-there") -> None:
    """The connection still works: a ping gets its pong."""
    send(ws, Ping(nonce=nonce))
    message = recv(ws)
    assert message == Pong(nonce=nonce)


def slow_reply(chunks: int = 12, text: str | None = None) -> Reply:
    text = text or "".join(f"part{n:02d} " for n in range(chunks))
    return Reply(text=text, chunk_chars=len(text) // chunks, trickle=SLOW)


def stalled_reply(before: int = 2, stall_for: float = 2.0) -> Reply:
    """Sends ``before`` chunks, then nothing for ``stall_for`` seconds."""
    return Reply(text="0123456789" * 4, chunk_chars=4, stall_after=before, stall_for=stall_for)


# -- the handshake --------------------------------------------------------------------------


@pytest.mark.parametrize("protocols", [[], ["plancast.v0"], ["chat", "superchat"]])
def test_without_the_subprotocol_the_socket_is_closed_4400(
    server: Server, protocols: list[str]
) -> None:
    with server.connect(subprotocols=protocols) as ws:
        with pytest.raises(WebSocketDisconnect) as caught:
            recv(ws)
    assert caught.value.code == 4400
    assert SUBPROTOCOL in caught.value.reason


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic abc"}]
)
def test_without_the_token_the_socket_is_closed_4401(
    server: Server, headers: dict[str, str]
) -> None:
    with server.connect(headers=headers) as ws:
        assert ws.accepted_subprotocol == SUBPROTOCOL
        with pytest.raises(WebSocketDisconnect) as caught:
            recv(ws)
    assert caught.value.code == 4401
    assert "wrong-token" not in caught.value.reason


def test_the_subprotocol_is_agreed(server: Server) -> None:
    with server.connect(subprotocols=["other", SUBPROTOCOL]) as ws:
        assert ws.accepted_subprotocol == SUBPROTOCOL
        ping_pong(ws)


def assert_refused_origin(server: Server, origin: str) -> None:
    """Accepted, then closed with 4403, so that the client can tell why."""
    with server.connect(headers=server.auth | {"Origin": origin}) as ws:
        with pytest.raises(WebSocketDisconnect) as caught:
            recv(ws)
    assert caught.value.code == 4403


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:7526"])
def test_a_browser_origin_is_refused_by_default(server: Server, origin: str) -> None:
    assert_refused_origin(server, origin)


def test_an_allowed_origin_works_and_others_are_still_refused(data_dir: Path) -> None:
    settings = load_settings(data_dir, allowed_origins="https://ui.example, https://b.example")
    with running(settings) as server:
        for origin in ("https://ui.example", "https://b.example"):
            with server.connect(headers=server.auth | {"Origin": origin}) as ws:
                ping_pong(ws)
        assert_refused_origin(server, "https://ui.example.evil")
        assert_refused_origin(server, "http://ui.example")


def test_an_allowed_origin_still_needs_the_token(data_dir: Path) -> None:
    with running(load_settings(data_dir, allowed_origins="https://ui.example")) as server:
        with server.connect(headers={"Origin": "https://ui.example"}) as ws:
            with pytest.raises(WebSocketDisconnect) as caught:
                recv(ws)
        assert caught.value.code == 4401


# -- malformed frames -----------------------------------------------------------------------


def _start_dict(**changes: Any) -> str:
    data: dict[str, Any] = {
        "type": "start",
        "request_id": "req-1",
        "plan_id": "pl_x",
        "mode": "tell",
        "prompt": "hello",
        "model": "openai/gpt-4.1",
        "seal_id": "st_unknownseal0000",
        "sealed": "c2VhbGVk",
    }
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...})


BAD_FRAMES: dict[str, tuple[str | bytes, str]] = {
    "not-json": ("this is not json", "bad_message"),
    "truncated-json": ('{"type": "ping", "nonce": ', "bad_message"),
    "array": ("[]", "bad_message"),
    "string": ('"ping"', "bad_message"),
    "no-type": ('{"nonce": "x"}', "bad_message"),
    "type-not-a-string": ('{"type": 5}', "bad_message"),
    "unknown-type": ('{"type": "launch"}', "unknown_message"),
    "server-message-type": ('{"type": "pong", "nonce": ""}', "unknown_message"),
    "missing-field": ('{"type": "attach"}', "bad_message"),
    "wrong-field-type": ('{"type": "attach", "stream_id": 5}', "bad_message"),
    "bool-for-int": ('{"type": "attach", "stream_id": "st_x", "after": true}', "bad_message"),
    "negative-after": ('{"type": "attach", "stream_id": "st_x", "after": -1}', "bad_message"),
    "bad-id": ('{"type": "stop", "stream_id": "../../etc"}', "bad_message"),
    "unknown-field": ('{"type": "ping", "nonce": "a", "extra": 1}', "bad_message"),
    "start-missing-model": (_start_dict(model=...), "bad_message"),
    "start-bad-mode": (_start_dict(mode="build"), "bad_message"),
    "start-empty-prompt": (_start_dict(prompt="  "), "bad_message"),
    "start-missing-seal-id": (_start_dict(seal_id=...), "bad_message"),
    "start-missing-sealed": (_start_dict(sealed=...), "bad_message"),
    "start-empty-sealed": (_start_dict(sealed=""), "bad_message"),
    "start-sealed-not-a-string": (_start_dict(sealed=["c2VhbGVk"]), "bad_message"),
    "start-bad-seal-id": (_start_dict(seal_id="../st_x"), "bad_message"),
    # Plain credentials are refused whatever their shape: keys travel sealed only.
    "start-plain-credentials": (
        _start_dict(credentials=[{"provider": "openai", "api_key": "k"}]),
        "bad_message",
    ),
    "start-plain-credentials-not-a-list": (_start_dict(credentials="sk-abc"), "bad_message"),
    "start-plain-credentials-empty": (_start_dict(credentials=[]), "bad_message"),
    "start-unknown-seal": (_start_dict(), "bad_seal"),
    "oversize": ("x" * (MAX_MESSAGE_BYTES + 1), "message_too_large"),
    "oversize-valid-json": (
        json.dumps({"type": "ping", "nonce": "n" * MAX_MESSAGE_BYTES}),
        "message_too_large",
    ),
    "binary-not-utf8": (b"\xff\xfe\xfd", "bad_message"),
    "binary-json-not-object": (b"[1]", "bad_message"),
}


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_a_malformed_frame_gets_a_typed_error_and_the_connection_goes_on(
    server: Server, frame: str | bytes, code: str
) -> None:
    with server.connect() as ws:
        if isinstance(frame, bytes):
            ws.send_bytes(frame)
        else:
            ws.send_text(frame)
        error = expect_error(ws)
        assert error.code == code
        assert error.message
        ping_pong(ws)
        # And once more: one bad frame does not poison the next.
        ws.send_text('{"type": "nope"}')
        assert expect_error(ws).code == "unknown_message"
        ping_pong(ws, "again")


def test_a_binary_frame_with_a_valid_message_is_accepted(server: Server) -> None:
    with server.connect() as ws:
        ws.send_bytes(b'{"type": "ping", "nonce": "bin"}')
        assert recv(ws) == Pong(nonce="bin")


def test_a_deeply_nested_frame_is_a_bad_message(server: Server) -> None:
    with server.connect() as ws:
        ws.send_text("[" * 100_000)
        error = expect_error(ws)
        ping_pong(ws)
        assert error.code == "bad_message"


def test_start_with_an_unknown_plan_or_branch_is_not_found(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    with server.connect() as ws:
        for start in (
            start_message("pl_unknown", openai_creds(emulator), request_id="r-plan"),
            start_message(plan_id, openai_creds(emulator), request_id="r-branch", branch="dev"),
        ):
            send(ws, start)
            error = expect_error(ws)
            assert (error.code, error.request_id) == ("not_found", start.request_id)
    assert emulator.requests == []
    assert server.streams(plan_id) == []


@pytest.mark.parametrize("model", ["gpt-4.1", "acme/model", "openai/"])
def test_start_with_a_bad_model_name_is_invalid(
    server: Server, plan_id: str, emulator: Emulator, model: str
) -> None:
    with server.connect() as ws:
        send(ws, start_message(plan_id, openai_creds(emulator), model=model, request_id="r-m"))
        error = expect_error(ws)
        assert (error.code, error.request_id) == ("invalid_request", "r-m")
    assert server.streams(plan_id) == []


def test_attach_to_an_unknown_stream_is_not_found(server: Server) -> None:
    with server.connect() as ws:
        send(ws, Attach(stream_id="st_nope"))
        error = expect_error(ws)
        assert (error.code, error.stream_id) == ("not_found", "st_nope")
        ping_pong(ws)


def test_stop_of_an_unknown_stream_is_not_found(server: Server) -> None:
    with server.connect() as ws:
        send(ws, Stop(stream_id="st_nope"))
        error = expect_error(ws)
        assert (error.code, error.stream_id) == ("not_found", "st_nope")
        ping_pong(ws)


# -- a stream from start to end -------------------------------------------------------------


def test_a_stream_numbers_its_events_and_ends_once(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(text=TEXT, chunk_chars=5))
    with server.connect() as ws:
        start = start_message(plan_id, openai_creds(emulator), prompt="Plan it, please.")
        started = start_stream(ws, start)
        assert (started.plan_id, started.branch) == (plan_id, "main")
        events = collect(ws, started.stream_id)
        ping_pong(ws)  # nothing else was queued after the end

    end = check_sequence(events)
    assert (end.status, end.error_code, end.error_message, end.changes) == (
        "finished",
        None,
        None,
        0,
    )
    assert events[0] == Status(
        stream_id=started.stream_id, seq=1, stage="planning", detail="openai/gpt-4.1"
    )
    assert reply_text(events) == TEXT
    # The worker may join chunks that reach it together, never split or reorder one: every
    # delta ends where a chunk of the reply ends.
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert deltas and all(deltas)
    assert set(accumulate(map(len, deltas))) <= set(
        accumulate(map(len, Reply(text=TEXT, chunk_chars=5).pieces()))
    )

    request = emulator.last_request
    assert request.path == "/v1/chat/completions" and request.model == "gpt-4.1"
    assert request.messages[0]["role"] == "system"
    assert request.messages[-1] == {"role": "user", "content": "Plan it, please."}

    row = server.stream_row(started.stream_id)
    assert (row["status"], row["last_seq"], row["request_id"]) == (
        "finished",
        end.seq,
        start.request_id,
    )
    stored = query(
        server.data_dir,
        "SELECT seq, type FROM stream_events WHERE stream_id = ? ORDER BY seq",
        started.stream_id,
    )
    assert stored == [(e.seq, e.TYPE) for e in events]
    messages = server.convo(plan_id)
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        ("user", "Plan it, please.", "complete"),
        ("assistant", TEXT, "complete"),
    ]


def test_a_seal_asked_for_on_the_socket_starts_the_stream_on_it(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    """``new_seal``, then ``start`` on the same connection: the flow the client uses, which
    needs no second request that a load balancer could send to another replica."""
    emulator.push(Reply(text=TEXT, chunk_chars=5))
    start = start_message(plan_id, openai_creds(emulator), prompt="Sealed on the socket.")
    with server.connect() as ws:
        send(ws, NewSeal(request_id=start.request_id))
        offer = recv(ws)
        assert isinstance(offer, SealOffer), offer
        assert (offer.request_id, offer.suite) == (start.request_id, SEAL_SUITE)
        assert offer.seal_id.startswith("st_")
        assert 0 < offer.expires_at - time.time() <= 60.001  # rounded to the millisecond
        seal = {"seal_id": offer.seal_id, "public_key": offer.public_key}
        started = start_stream(ws, server.seal(start, seal | {"expires_at": offer.expires_at}))
        assert started.stream_id == offer.seal_id  # the seal's id is the stream's
        end = check_sequence(collect(ws, started.stream_id))
        assert end.status == "finished"
        # A seal serves one start: the same seal again is refused, and a new one works.
        again = start.with_fields(request_id="another-request")
        send(ws, server.seal(again, seal | {"expires_at": offer.expires_at}))
        assert expect_error(ws).code == "bad_seal"
        send(ws, NewSeal(request_id="one-more"))
        second = recv(ws)
        assert isinstance(second, SealOffer) and second.seal_id != offer.seal_id
    assert emulator.last_request.messages[-1]["content"] == "Sealed on the socket."


def test_a_seal_no_start_used_goes_with_its_socket(server: Server) -> None:
    reserved = server.app.state.workers._reserved
    with server.connect() as ws:
        send(ws, NewSeal(request_id="never-started"))
        offer = recv(ws)
        assert isinstance(offer, SealOffer)
        pid = reserved[offer.seal_id].worker.pid
    # Closed without a start: its worker is not kept for the rest of the seal's minute.
    wait_until(lambda: offer.seal_id not in reserved)
    wait_process_gone(pid, timeout=5.0)


def test_a_seal_offer_needs_a_valid_request_id(server: Server) -> None:
    with server.connect() as ws:
        ws.send_text(json.dumps({"type": "new_seal", "request_id": "not an id!"}))
        error = expect_error(ws)
        assert error.code == "bad_message" and "request_id" in error.message
        ping_pong(ws)  # the connection carries on
    assert server.app.state.workers._reserved == {}  # no worker was set aside for it


def test_file_blocks_become_change_events_and_pending_changes(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=7))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator)))
    end = check_sequence(events)
    changes = [e for e in events if isinstance(e, ChangeEvent)]
    assert [(c.path, c.op, c.status) for c in changes] == [
        ("src/app.py", "write", "pending"),
        ("README.md", "edit", "pending"),
    ]
    building = [e.detail for e in events if isinstance(e, Status) and e.stage == "building"]
    assert building == ["src/app.py", "README.md"]
    assert (end.status, end.changes) == ("finished", 2)
    assert reply_text(events) == FILE_REPLY

    pending = server.changes(plan_id)
    assert [c["id"] for c in pending] == [c.change_id for c in changes]
    assert pending[0]["op"] == {
        "op": "write",
        "path": "src/app.py",
        "content": "def main():\n    return 42\n",
    }
    assert pending[1]["op"] == {
        "op": "edit",
        "path": "README.md",
        "find": "old line\n",
        "replace": "new line\n",
    }
    # The reply and its changes joined the plan in one version, after the prompt's.
    kinds = [v["kind"] for v in server.ok("GET", f"/api/v1/plans/{plan_id}/versions")["versions"]]
    assert kinds == ["create", "prompt", "reply"]


def test_an_unsafe_path_in_a_reply_is_a_problem_not_a_change(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    text = 'Sneaky:\n<pc:file path="../outside.py">\nboom\n</pc:file>\nThat was all.\n'
    emulator.push(Reply(text=text, chunk_chars=9))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator)))
    end = check_sequence(events)
    assert (end.status, end.changes) == ("finished", 0)
    assert not [e for e in events if isinstance(e, ChangeEvent)]
    problems = [e for e in events if isinstance(e, Status) and e.stage == "problem"]
    assert problems and "boom" not in problems[0].detail
    assert server.changes(plan_id) == []


def test_chat_mode_makes_no_changes_even_from_file_blocks(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=11))
    start = start_message(plan_id, openai_creds(emulator), mode="chat", prompt="Just talk.")
    events = server.run_stream(start)
    end = check_sequence(events)
    assert (end.status, end.changes) == ("finished", 0)
    assert not [e for e in events if isinstance(e, ChangeEvent)]
    assert reply_text(events) == FILE_REPLY
    assert server.changes(plan_id, "all") == []
    assert emulator.last_request.messages[0]["content"].startswith(prompts.CHAT)
    assert [(m["role"], m["mode"]) for m in server.convo(plan_id)] == [
        ("user", "chat"),
        ("assistant", "chat"),
    ]


def test_the_model_gets_the_context_and_the_conversation(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    server.ok(
        "POST",
        f"/api/v1/plans/{plan_id}/context",
        {"items": [{"kind": "file", "name": "src/lib.py", "content": "VALUE = 7\n"}]},
    )
    emulator.push(Reply(text="First answer."), Reply(text="Second answer."))
    creds = openai_creds(emulator)
    server.run_stream(start_message(plan_id, creds, prompt="First question?"))
    server.run_stream(start_message(plan_id, creds, prompt="Second question?"))
    system, *turns = emulator.last_request.messages
    assert system["role"] == "system"
    assert (
        '<pc:context kind="file" name="src/lib.py">\nVALUE = 7\n</pc:context>'
        in (system["content"])
    )
    assert turns == [
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Second question?"},
    ]


def test_anthropic_streams_too(server: Server, plan_id: str, emulator: Emulator) -> None:
    key = new_key("sk-ant-test-")
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=6))
    events = server.run_stream(start_message(plan_id, anthropic_creds(emulator, key)))
    end = check_sequence(events)
    assert (end.status, end.changes) == ("finished", 2)
    assert reply_text(events) == FILE_REPLY
    request = emulator.last_request
    assert (request.provider, request.path, request.api_key) == ("anthropic", "/v1/messages", key)
    assert request.model == "claude-emulated"
    assert request.body["system"].startswith(prompts.TELL)
    assert request.messages == [{"role": "user", "content": "Add a main function."}]
    assert len(server.changes(plan_id)) == 2


def test_the_default_anthropic_model_is_not_one_the_sdk_calls_deprecated() -> None:
    from anthropic.resources.messages.messages import DEPRECATED_MODELS

    from plancast.shared import DEFAULT_MODELS

    assert DEFAULT_MODELS["anthropic"].split("/", 1)[1] not in DEPRECATED_MODELS


def test_an_openai_compatible_server_needs_no_key(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    creds = ProviderCredentials("openai", base_url=emulator.base_url_openai)
    events = server.run_stream(start_message(plan_id, creds))
    assert check_sequence(events).status == "finished"


# -- one stream per branch, idempotent starts -----------------------------------------------


def test_a_second_start_on_a_busy_branch_names_the_running_stream(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(stalled_reply(before=1, stall_for=3.0), Reply(text="after"))
    creds = openai_creds(emulator)
    with server.connect() as ws:
        first = start_stream(ws, start_message(plan_id, creds))
        collect(ws, first.stream_id, until=lambda e: isinstance(e, Delta))
        with server.connect() as other:
            send(other, start_message(plan_id, creds, request_id="second"))
            error = expect_error(other)
            assert (error.code, error.request_id) == ("busy", "second")
            assert error.stream_id == first.stream_id
            assert first.stream_id in error.message
        send(ws, Stop(stream_id=first.stream_id))
        assert collect(ws, first.stream_id)[-1].status == "stopped"  # type: ignore[attr-defined]
        assert [s["id"] for s in server.streams(plan_id)] == [first.stream_id]
        # Once it has ended, the branch takes a new stream.
        again = start_stream(ws, start_message(plan_id, creds, request_id="third"))
        assert check_sequence(collect(ws, again.stream_id)).status == "finished"


def test_the_same_request_id_twice_is_the_same_stream(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(slow_reply())
    start = start_message(plan_id, openai_creds(emulator), request_id="retried-start")
    with server.connect() as ws:
        first = start_stream(ws, start)
        collect(ws, first.stream_id, until=lambda e: isinstance(e, Delta))
        send(ws, start)  # a retry while it runs: not busy, the same stream
        message = recv(ws)
        while isinstance(message, StreamEvent):  # events the first follower had queued
            message = recv(ws)
        assert isinstance(message, Started) and message.stream_id == first.stream_id
        # The retry follows from the start: the whole stream, once, in order.
        events = collect(ws, first.stream_id)
        assert check_sequence(events).status == "finished"
        # And after the end, the same request id still names the same stream.
        assert start_stream(ws, start).stream_id == first.stream_id
    assert len(emulator.requests) == 1
    assert [s["id"] for s in server.streams(plan_id)] == [first.stream_id]
    assert [m["role"] for m in server.convo(plan_id)] == ["user", "assistant"]


def test_a_request_id_cannot_be_reused_for_another_plan(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    creds = openai_creds(emulator)
    server.run_stream(start_message(plan_id, creds, request_id="once"))
    other_plan = server.new_plan()
    with server.connect() as ws:
        send(ws, start_message(other_plan, creds, request_id="once"))
        error = expect_error(ws)
        assert (error.code, error.request_id) == ("invalid_request", "once")
    assert server.streams(other_plan) == []


# -- attaching ------------------------------------------------------------------------------


def test_attach_after_n_on_a_live_stream_gets_exactly_the_rest(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(slow_reply())
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator)))
        head = collect(ws, started.stream_id, until=lambda e: e.seq == 4)
        with server.connect() as late:
            send(late, Attach(stream_id=started.stream_id, after=4))
            tail = collect(late, started.stream_id)
        everything = head + collect(ws, started.stream_id)
    check_sequence(everything)
    assert tail == everything[4:]
    check_sequence(tail, first=5)


def test_two_clients_attached_at_once_see_the_same_events(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(slow_reply(text=FILE_REPLY, chunks=10))
    with server.connect() as ws, server.connect() as watcher:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator)))
        send(watcher, Attach(stream_id=started.stream_id, after=0))
        seen_by_watcher = collect(watcher, started.stream_id)
        seen_by_starter = collect(ws, started.stream_id)
    assert seen_by_watcher == seen_by_starter
    assert check_sequence(seen_by_starter).changes == 2


def test_attach_to_a_finished_stream_replays_it_from_memory(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=9))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator)))
    stream_id = events[0].stream_id
    with server.connect() as ws:
        for after in (0, 3, len(events) - 1):
            send(ws, Attach(stream_id=stream_id, after=after))
            assert collect(ws, stream_id) == events[after:]


def test_attach_to_a_finished_stream_replays_it_from_the_database(
    settings: Settings, emulator: Emulator
) -> None:
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=9))
    with running(settings) as first:
        plan_id = first.new_plan()
        events = first.run_stream(start_message(plan_id, openai_creds(emulator)))
    stream_id = events[0].stream_id
    with running(settings) as fresh:  # a new process: its registry has never seen the stream
        assert fresh.app.state.streams.registry.get(stream_id, "org_local") is None
        with fresh.connect() as ws:
            for after in (0, 5, len(events) - 1):
                send(ws, Attach(stream_id=stream_id, after=after))
                replayed = collect(ws, stream_id)
                assert replayed == events[after:]
                check_sequence(replayed, first=after + 1)


def _past_the_end(server: Server, stream_id: str, after: int) -> list[StreamEvent]:
    """What an attach past the end of an ended stream sends."""
    with server.connect() as ws:
        send(ws, Attach(stream_id=stream_id, after=after))
        return collect(ws, stream_id)


def test_attach_past_the_end_sends_the_end_again_from_memory_and_from_the_database(
    settings: Settings, emulator: Emulator
) -> None:
    # A client that saw more than a crash left stored still learns that the stream is over.
    with running(settings) as first:
        plan_id = first.new_plan()
        events = first.run_stream(start_message(plan_id, openai_creds(emulator)))
        stream_id = events[0].stream_id
        for after in (len(events), len(events) + 10):
            assert _past_the_end(first, stream_id, after) == [events[-1]]
    with running(settings) as fresh:
        for after in (len(events), len(events) + 10):
            assert _past_the_end(fresh, stream_id, after) == [events[-1]]


def test_another_orgs_stream_can_be_neither_followed_nor_stopped_nor_started(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(stalled_reply(before=1, stall_for=3.0))
    outsider = Principal("usr_other", "org_other", Role.OWNER)
    service = server.app.state.streams
    portal = server.client.portal
    assert portal is not None

    async def follow(stream_id: str) -> list[StreamEvent]:
        return [event async for event in service.follow(outsider, stream_id, 0)]

    with server.connect() as ws:
        start = start_message(plan_id, openai_creds(emulator))
        started = start_stream(ws, start)
        collect(ws, started.stream_id, until=lambda e: isinstance(e, Delta))
        # Running, in this process's memory: still not found for another org.
        with pytest.raises(NotFound):
            portal.call(follow, started.stream_id)
        with pytest.raises(NotFound):
            portal.call(service.stop, outsider, started.stream_id)
        # The outsider's own seal (a seal is only good for the user who asked for it).
        seal = portal.call(server.app.state.workers.reserve, outsider)
        theirs = StartStream(
            seal_id=seal.seal_id,
            sealed=seal_credentials(
                start.credentials,
                public_key=seal.public_key,
                seal_id=seal.seal_id,
                expires_at=seal.expires_at,
            ),
            **start.with_fields(request_id="outsider").fields,
        )
        with pytest.raises(NotFound):
            portal.call(service.start, outsider, theirs)
        send(ws, Stop(stream_id=started.stream_id))
        end = collect(ws, started.stream_id)[-1]
        assert isinstance(end, End) and end.status == "stopped"  # stopped by its own org only


# -- stopping, and not stopping -------------------------------------------------------------


def test_stop_ends_the_stream_as_stopped_and_keeps_the_partial_reply(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(stalled_reply(before=3, stall_for=3.0))
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator)))
        # Ends with: the worker may join chunks that reach it together into one delta.
        head = collect(ws, started.stream_id, until=lambda e: reply_text([e]).endswith("8901"))
        send(ws, Stop(stream_id=started.stream_id))
        events = head + collect(ws, started.stream_id)
        end = check_sequence(events)
        assert (end.status, end.error_code) == ("stopped", None)
        assert reply_text(events) == "012345678901"

        send(ws, Stop(stream_id=started.stream_id))
        error = expect_error(ws)
        assert (error.code, error.stream_id) == ("conflict", started.stream_id)

    assert server.stream_row(started.stream_id)["status"] == "stopped"
    reply = server.convo(plan_id)[-1]
    assert (reply["role"], reply["status"], reply["content"]) == (
        "assistant",
        "partial",
        "012345678901",
    )


def test_a_disconnect_does_not_stop_the_stream(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    reply = slow_reply(chunks=15)
    emulator.push(reply)
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator)))
        collect(ws, started.stream_id, until=lambda e: isinstance(e, Delta))
    # Gone mid-stream; a new connection picks it up from the beginning.
    with server.connect() as ws:
        send(ws, Attach(stream_id=started.stream_id, after=0))
        events = collect(ws, started.stream_id)
    end = check_sequence(events)
    assert end.status == "finished"
    assert reply_text(events) == reply.text
    assert server.convo(plan_id)[-1]["status"] == "complete"


def test_continue_picks_up_after_a_stopped_reply(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(stalled_reply(before=2, stall_for=3.0), Reply(text=" and the rest."))
    creds = openai_creds(emulator)
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, creds, prompt="Count."))
        # Ends with: the worker may join chunks that reach it together into one delta.
        collect(ws, started.stream_id, until=lambda e: reply_text([e]).endswith("4567"))
        send(ws, Stop(stream_id=started.stream_id))
        collect(ws, started.stream_id)
        again = start_stream(ws, start_message(plan_id, creds, mode="continue", prompt=""))
        assert check_sequence(collect(ws, again.stream_id)).status == "finished"
    assert emulator.last_request.messages[1:] == [
        {"role": "user", "content": "Count."},
        {"role": "assistant", "content": "01234567"},
        {"role": "user", "content": prompts.CONTINUE_PROMPT},
    ]
    assert [(m["role"], m["mode"], m["status"]) for m in server.convo(plan_id)] == [
        ("user", "tell", "complete"),
        ("assistant", "tell", "partial"),
        ("assistant", "continue", "complete"),
    ]


def test_continue_with_a_prompt_keeps_the_prompt(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    creds = openai_creds(emulator)
    server.run_stream(start_message(plan_id, creds, prompt="Start."))
    start = start_message(plan_id, creds, mode="continue", prompt="And add tests.")
    assert check_sequence(server.run_stream(start)).status == "finished"
    assert emulator.last_request.messages[-1] == {"role": "user", "content": "And add tests."}
    assert [(m["role"], m["mode"]) for m in server.convo(plan_id)] == [
        ("user", "tell"),
        ("assistant", "tell"),
        ("user", "continue"),
        ("assistant", "continue"),
    ]


# -- credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "env"),
    [("openai/gpt-4.1", "OPENAI_API_KEY"), ("anthropic/claude-emulated", "ANTHROPIC_API_KEY")],
)
def test_a_missing_key_is_refused_before_any_work(
    server: Server, plan_id: str, emulator: Emulator, model: str, env: str
) -> None:
    with server.connect() as ws:
        send(ws, start_message(plan_id, None, model=model, request_id="no-key"))
        error = expect_error(ws)
        assert (error.code, error.request_id) == ("missing_credentials", "no-key")
        assert env in error.message
        ping_pong(ws)
    assert server.streams(plan_id) == []
    assert server.convo(plan_id) == []
    assert server.ok("GET", f"/api/v1/plans/{plan_id}")["version"] == 1
    assert emulator.requests == []


def test_a_key_for_another_provider_does_not_count(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    start = start_message(plan_id, anthropic_creds(emulator), model="openai/gpt-4.1")
    with server.connect() as ws:
        send(ws, start)
        assert expect_error(ws).code == "missing_credentials"
    assert emulator.requests == []


# -- provider faults ------------------------------------------------------------------------

FAULT_TEXT = "abcdefghijklmnopqrstuvwx"  # six chunks of four


@pytest.fixture
def fault_server(data_dir: Path) -> Iterator[Server]:
    """One attempt per model call (retries are tested apart) and a short read timeout."""
    settings = load_settings(data_dir, provider_timeout_s=0.8, provider_attempts=1)
    with running(settings) as srv:
        yield srv


# name: (reply, expected error code, reply text kept)
FAULTS: dict[str, tuple[Reply, str, str]] = {
    "429": (Reply(status=429, retry_after=30), "provider_rate_limited", ""),
    "500": (Reply(status=500), "provider_unavailable", ""),
    "503": (Reply(status=503), "provider_unavailable", ""),
    "529": (Reply(status=529), "provider_unavailable", ""),
    "401": (Reply(status=401), "provider_auth", ""),
    "403": (Reply(status=403), "provider_auth", ""),
    "404": (Reply(status=404), "provider_bad_response", ""),
    "400": (Reply(status=400), "provider_bad_response", ""),
    "cut": (
        Reply(text=FAULT_TEXT, chunk_chars=4, cut_after=3),
        "provider_unavailable",
        "abcdefghijkl",
    ),
    "malformed": (
        Reply(text=FAULT_TEXT, chunk_chars=4, malformed_after=3),
        "provider_bad_response",
        "abcdefghijkl",
    ),
    "stall": (
        Reply(text=FAULT_TEXT, chunk_chars=4, stall_after=3, stall_for=2.5),
        "provider_timeout",
        "abcdefghijkl",
    ),
}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", FAULTS.keys())
def test_a_provider_fault_ends_the_stream_failed_with_its_code(
    fault_server: Server, emulator: Emulator, fault: str, provider: str
) -> None:
    reply, code, kept = FAULTS[fault]
    emulator.push(reply)
    plan_id = fault_server.new_plan()
    creds = openai_creds(emulator) if provider == "openai" else anthropic_creds(emulator)
    events = fault_server.run_stream(start_message(plan_id, creds))
    end = check_sequence(events)
    assert (end.status, end.error_code) == ("failed", code)
    assert end.error_message and end.error_message.startswith(
        ("OpenAI", "Openai", "Anthropic", "The connection")
    )
    assert reply_text(events) == kept
    assert len(emulator.requests) == 1
    row = fault_server.stream_row(events[0].stream_id)
    assert (row["status"], row["error_code"], row["error_message"]) == (
        "failed",
        code,
        end.error_message,
    )
    messages = fault_server.convo(plan_id)
    if kept:
        assert (messages[-1]["role"], messages[-1]["status"], messages[-1]["content"]) == (
            "assistant",
            "partial",
            kept,
        )
    else:
        assert [m["role"] for m in messages] == ["user"]
    # The branch is free again.
    emulator.reset()
    assert check_sequence(fault_server.run_stream(start_message(plan_id, creds))).status == (
        "finished"
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_error_event_inside_the_stream_is_unavailable(
    fault_server: Server, emulator: Emulator, provider: str
) -> None:
    emulator.push(Reply(text=FAULT_TEXT, chunk_chars=4, error_event_after=2))
    plan_id = fault_server.new_plan()
    creds = openai_creds(emulator) if provider == "openai" else anthropic_creds(emulator)
    events = fault_server.run_stream(start_message(plan_id, creds))
    end = check_sequence(events)
    assert (end.status, end.error_code) == ("failed", "provider_unavailable")
    assert reply_text(events) == "abcdefgh"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_rate_limits_are_retried_then_reported(
    server: Server, plan_id: str, emulator: Emulator, provider: str
) -> None:
    emulator.push(*[Reply(status=429, retry_after=0.01)] * 3, Reply(text="never reached"))
    creds = openai_creds(emulator) if provider == "openai" else anthropic_creds(emulator)
    events = server.run_stream(start_message(plan_id, creds))
    assert check_sequence(events).error_code == "provider_rate_limited"
    assert len(emulator.requests) == server.settings.provider_attempts == 3


def test_a_retry_after_a_server_error_can_still_finish(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(status=500), Reply(text="recovered"))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator)))
    assert check_sequence(events).status == "finished"
    assert reply_text(events) == "recovered"
    assert server.convo(plan_id)[-1]["content"] == "recovered"
