"""Per-stream worker processes: one seal, one worker, one stream, then the worker is gone.

A worker is a process of its own, so these tests watch real PIDs: ``Server.worker_pids()`` is
what the pool knows, and ``/proc/<pid>`` is what the kernel knows. Workers are reaped by the
kernel (their parent, the fork server, ignores SIGCHLD), so an exited worker leaves no zombie
entry behind.

Most tests run with ``idle_workers=0``, so that the worker a seal names is the one that
``POST /api/v1/seals`` makes, and its PID is the one new PID. The pool's own rules (who may
claim a seal, and when) are tested on a ``WorkerPool`` built here, with a short seal life.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from plancast.server.domain.principal import Principal, Role
from plancast.server.llm.calls import RetryPolicy
from plancast.server.llm.types import ChatMessage, ChatRequest, TextDelta, Usage
from plancast.server.workers import child
from plancast.server.workers.channel import JOIN_CHARS, Channel, ChannelClosed
from plancast.server.workers.forkserver import clean_environment
from plancast.server.workers.pool import Seal, SealRefused, Worker, WorkerPool
from plancast.shared import (
    Delta,
    End,
    ErrorCode,
    ModelSpec,
    PlancastError,
    ProviderCredentials,
    Started,
    StartStream,
    Stop,
    seal_credentials,
)
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    FILE_REPLY,
    WAIT,
    Server,
    collect,
    expect_error,
    fresh_forkserver,
    load_settings,
    new_key,
    openai_creds,
    process_gone,
    recv,
    running,
    send,
    start_message,
    wait_process_gone,
    wait_until,
)


@pytest.fixture
def on_demand(data_dir: Path) -> Iterator[Server]:
    """No idle workers: each seal starts its own worker, so its PID is the one new PID."""
    with running(load_settings(data_dir, idle_workers=0)) as srv:
        yield srv


def reserve(server: Server) -> tuple[dict[str, Any], int]:
    """A new seal and the PID of the worker it names (on a server with no idle workers)."""
    before = set(server.worker_pids())
    seal = server.new_seal()
    (pid,) = set(server.worker_pids()) - before
    assert not process_gone(pid)
    return seal, pid


def stalled_reply(stall_for: float = 3.0) -> Reply:
    """One chunk, then silence: a stream that is surely still running when the test acts."""
    return Reply(text="0123456789" * 4, chunk_chars=4, stall_after=1, stall_for=stall_for)


# -- a worker serves one stream, then exits -------------------------------------------------

ENDINGS: dict[str, Reply] = {
    "finished": Reply(text=FILE_REPLY, chunk_chars=9),
    "failed": Reply(status=401),
    "stopped": stalled_reply(),
    # Slow enough to outlive the connection: it must still run, then end, on its own.
    "disconnected": Reply(
        text="".join(f"part{n:02d} " for n in range(40)), chunk_chars=7, trickle=0.04
    ),
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_the_worker_exits_however_its_stream_ends(
    on_demand: Server, emulator: Emulator, ending: str
) -> None:
    server = on_demand
    plan_id = server.new_plan()
    emulator.push(ENDINGS[ending])
    seal, pid = reserve(server)
    with server.connect() as ws:
        send(ws, server.seal(start_message(plan_id, openai_creds(emulator)), seal))
        started = recv(ws)
        assert isinstance(started, Started)
        stream_id = started.stream_id
        assert stream_id == seal["seal_id"]  # the seal's id is the stream's
        if ending in ("stopped", "disconnected"):
            collect(ws, stream_id, until=lambda e: isinstance(e, Delta))
            assert pid in server.worker_pids()  # it is this stream's worker, and it runs
            if ending == "stopped":
                send(ws, Stop(stream_id=stream_id))
        if ending != "disconnected":
            end = collect(ws, stream_id)[-1]
            assert isinstance(end, End) and end.status == ending
            assert pid not in server.worker_pids()  # gone before `end` was published
    if ending == "disconnected":
        assert not process_gone(pid)  # the client left; the stream and its worker carry on
        row = server.wait_stream_ended(stream_id, timeout=15)
        assert row["status"] == "finished"
        assert server.convo(plan_id)[-1]["status"] == "complete"  # the whole reply came
    wait_process_gone(pid)
    wait_until(lambda: server.worker_pids() == [])  # the pool hears of it a moment later
    assert len(emulator.requests) == 1


def test_two_streams_get_two_workers(on_demand: Server, emulator: Emulator) -> None:
    server = on_demand
    plan_id = server.new_plan()
    creds = openai_creds(emulator)
    pids = []
    for _ in range(2):
        seal, pid = reserve(server)
        pids.append(pid)
        with server.connect() as ws:
            send(ws, server.seal(start_message(plan_id, creds), seal))
            started = recv(ws)
            assert isinstance(started, Started)
            assert collect(ws, started.stream_id)[-1].status == "finished"  # type: ignore[attr-defined]
        wait_process_gone(pid)
    assert pids[0] != pids[1]
    assert len(emulator.requests) == 2


def test_a_refused_start_kills_the_worker_it_claimed(on_demand: Server, emulator: Emulator) -> None:
    server = on_demand
    plan_id = server.new_plan()
    other_plan = server.new_plan()
    creds = openai_creds(emulator)
    emulator.push(stalled_reply())
    first = start_message(plan_id, creds, request_id="first")
    seal, running_pid = reserve(server)
    with server.connect() as ws:
        send(ws, server.seal(first, seal))
        started = recv(ws)
        assert isinstance(started, Started)
        collect(ws, started.stream_id, until=lambda e: isinstance(e, Delta))
        refused = {
            "busy": start_message(plan_id, creds, request_id="busy"),
            "not_found": start_message("pl_unknown", creds, request_id="unknown-plan"),
            "missing_credentials": start_message(other_plan, None, request_id="no-key"),
            "invalid_request": start_message(other_plan, creds, request_id="first"),
        }
        for code, start in refused.items():
            seal, pid = reserve(server)
            send(ws, server.seal(start, seal))
            error = expect_error(ws)
            assert (error.code, error.request_id) == (code, start.request_id)
            wait_process_gone(pid)
        # A retried start gets the stream its first try made; the retry's worker is not needed.
        seal, pid = reserve(server)
        send(ws, server.seal(first, seal))
        while not isinstance(message := recv(ws), Started):
            pass
        assert message.stream_id == started.stream_id
        wait_process_gone(pid)
        # The pool learns of the exit from the worker's pidfd, on the app's own thread.
        wait_until(lambda: server.worker_pids() == [running_pid])  # the stream's worker only
        send(ws, Stop(stream_id=started.stream_id))
        while not isinstance(recv(ws), End):
            pass
    wait_process_gone(running_pid)
    wait_until(lambda: server.worker_pids() == [])
    assert [s["id"] for s in server.streams(plan_id)] == [started.stream_id]
    assert server.streams(other_plan) == []
    assert len(emulator.requests) == 1


def test_a_missing_key_is_refused_before_any_stream_row(
    on_demand: Server, emulator: Emulator
) -> None:
    server = on_demand
    plan_id = server.new_plan()
    seal, pid = reserve(server)
    # A key for another provider does not count: the worker checks the model's provider.
    start = start_message(plan_id, None, extra_credentials=(ProviderCredentials("anthropic", "k"),))
    with server.connect() as ws:
        send(ws, server.seal(start, seal))
        error = expect_error(ws)
    assert (error.code, error.request_id) == ("missing_credentials", start.request_id)
    assert "OPENAI_API_KEY" in error.message
    assert server.streams(plan_id) == []
    assert server.ok("GET", f"/api/v1/plans/{plan_id}")["version"] == 1
    wait_process_gone(pid)
    assert emulator.requests == []


# -- bad seals ------------------------------------------------------------------------------


def _sealed(creds: ProviderCredentials, seal: dict[str, Any], **binding: Any) -> str:
    """``creds`` sealed to ``seal``'s worker, bound to ``binding`` (else to the seal's own)."""
    return seal_credentials(
        [creds],
        public_key=binding.get("public_key", seal["public_key"]),
        seal_id=binding.get("seal_id", seal["seal_id"]),
        expires_at=binding.get("expires_at", seal["expires_at"]),
    )


BAD_SEALS = [
    "sealed to another worker",
    "bound to another seal id",
    "bound to another expiry",
    "garbage",
    "empty list",
]


@pytest.mark.parametrize("how", BAD_SEALS)
def test_a_bad_seal_is_refused_before_any_work(
    on_demand: Server, emulator: Emulator, how: str
) -> None:
    server = on_demand
    plan_id = server.new_plan()
    creds = openai_creds(emulator)
    seal, pid = reserve(server)
    other, other_pid = reserve(server)
    sealed = {
        "sealed to another worker": lambda: _sealed(creds, other),
        "bound to another seal id": lambda: _sealed(creds, seal, seal_id=other["seal_id"]),
        "bound to another expiry": lambda: _sealed(creds, seal, expires_at=seal["expires_at"] + 60),
        "garbage": lambda: "bm90IGEgc2VhbGVkIGJsb2I",
        "empty list": lambda: seal_credentials(
            [],
            public_key=seal["public_key"],
            seal_id=seal["seal_id"],
            expires_at=seal["expires_at"],
        ),
    }[how]()
    start = start_message(plan_id, creds)
    message = StartStream(seal_id=seal["seal_id"], sealed=sealed, **start.fields)
    with server.connect() as ws:
        send(ws, message)
        error = expect_error(ws)
        expected = "missing_credentials" if how == "empty list" else "bad_seal"
        assert (error.code, error.request_id) == (expected, start.request_id)
        assert server.streams(plan_id) == []
        wait_process_gone(pid)  # the seal was used up: its worker is gone
        # The other seal was not touched: it still starts a stream, once.
        assert not process_gone(other_pid)
        send(ws, server.seal(start.with_fields(request_id="second"), other))
        started = recv(ws)
        assert isinstance(started, Started) and started.stream_id == other["seal_id"]
        collect(ws, started.stream_id)
    assert [s["id"] for s in server.streams(plan_id)] == [other["seal_id"]]
    assert len(emulator.requests) == 1


def test_a_seal_starts_one_stream_only(on_demand: Server, emulator: Emulator) -> None:
    server = on_demand
    plan_id = server.new_plan()
    seal, _ = reserve(server)
    first = server.seal(start_message(plan_id, openai_creds(emulator)), seal)
    with server.connect() as ws:
        send(ws, first)
        started = recv(ws)
        assert isinstance(started, Started)
        collect(ws, started.stream_id)
        # The same seal again, for a new start (another request id): refused.
        again = StartStream(
            seal_id=first.seal_id,
            sealed=first.sealed,
            **start_message(plan_id, None, request_id="again").fields,
        )
        send(ws, again)
        error = expect_error(ws)
    assert (error.code, error.request_id) == ("bad_seal", "again")
    assert [s["id"] for s in server.streams(plan_id)] == [started.stream_id]
    assert len(emulator.requests) == 1


def test_a_bad_model_name_leaves_the_seal_unused(on_demand: Server, emulator: Emulator) -> None:
    # Refused before the seal is claimed (docs/protocol.md says so): it still starts a stream.
    server = on_demand
    plan_id = server.new_plan()
    seal, pid = reserve(server)
    start = start_message(plan_id, openai_creds(emulator), model="acme/model")
    with server.connect() as ws:
        send(ws, server.seal(start, seal))
        assert expect_error(ws).code == "invalid_request"
        assert server.worker_pids() == [pid]
        send(ws, server.seal(start.with_fields(model="openai/gpt-4.1"), seal))
        started = recv(ws)
        assert isinstance(started, Started) and started.stream_id == seal["seal_id"]
        collect(ws, started.stream_id)
    wait_process_gone(pid)


def test_an_unknown_seal_is_refused(on_demand: Server, emulator: Emulator) -> None:
    server = on_demand
    plan_id = server.new_plan()
    _, pid = reserve(server)  # a seal of the user's that the start does not name
    start = start_message(plan_id, openai_creds(emulator))
    with server.connect() as ws:
        send(ws, StartStream(seal_id="st_0000000000000000", sealed="c2VhbGVk", **start.fields))
        error = expect_error(ws)
    assert (error.code, error.request_id) == ("bad_seal", start.request_id)
    assert server.streams(plan_id) == []
    assert server.worker_pids() == [pid]  # no worker was touched


# -- the pool: reserving, claiming and expiring seals ---------------------------------------

ALICE = Principal("usr_alice", "org_a", Role.MEMBER)
BOB = Principal("usr_bob", "org_a", Role.OWNER)
ALICE_ELSEWHERE = Principal("usr_alice", "org_b", Role.OWNER)


async def _pool(**kwargs: Any) -> WorkerPool:
    pool = WorkerPool(idle=0, **kwargs)
    pool.start()
    return pool


def _sealed_for(seal: Seal, key: str, **binding: Any) -> str:
    return seal_credentials(
        [ProviderCredentials("openai", api_key=key)],
        public_key=seal.public_key,
        seal_id=binding.get("seal_id", seal.seal_id),
        expires_at=binding.get("expires_at", seal.expires_at),
    )


async def _open(worker: Worker, seal: Seal, sealed: str, **binding: Any) -> None:
    await worker.open(
        sealed,
        seal_id=binding.get("seal_id", seal.seal_id),
        expires_at=binding.get("expires_at", seal.expires_at),
        require=["openai"],
        timeout=5.0,
        retry=RetryPolicy(attempts=1),
    )


async def _until(done: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_a_seal_is_claimed_once_and_only_by_the_user_who_asked() -> None:
    pool = await _pool()
    try:
        seal = await pool.reserve(ALICE)
        assert seal.seal_id.startswith("st_")
        (pid,) = pool.pids()
        for outsider in (BOB, ALICE_ELSEWHERE):
            with pytest.raises(SealRefused) as refused:
                pool.claim(seal.seal_id, outsider)
            assert refused.value.code is ErrorCode.BAD_SEAL
        # Refusing an outsider did not use the seal up.
        worker, claimed = pool.claim(seal.seal_id, ALICE)
        assert (worker.pid, claimed) == (pid, seal)
        with pytest.raises(SealRefused):
            pool.claim(seal.seal_id, ALICE)
        worker.kill()
        assert await _gone(pid)
    finally:
        await pool.shutdown()


async def test_an_unclaimed_seal_expires_and_its_worker_is_killed() -> None:
    pool = await _pool(seal_ttl_s=0.2)
    try:
        seal = await pool.reserve(ALICE)
        (pid,) = pool.pids()
        assert seal.expires_at - time.time() < 0.21
        # Nobody claims it: a second after it expired, its worker is killed.
        assert await _gone(pid, timeout=5.0)
        # The pool hears of the exit through the worker's pidfd, a loop turn or more later.
        assert await _until(lambda: pool.pids() == [], timeout=5.0)
        with pytest.raises(SealRefused):
            pool.claim(seal.seal_id, ALICE)
    finally:
        await pool.shutdown()


async def test_a_seal_claimed_after_it_expired_is_refused_and_its_worker_killed() -> None:
    pool = await _pool(seal_ttl_s=0.2)
    try:
        seal = await pool.reserve(ALICE)
        (pid,) = pool.pids()
        await asyncio.sleep(0.4)  # past its expiry, before the pool's own clean-up
        assert not process_gone(pid)
        with pytest.raises(SealRefused) as refused:
            pool.claim(seal.seal_id, ALICE)
        assert "expired" in refused.value.message
        assert await _gone(pid)
    finally:
        await pool.shutdown()


async def test_the_worker_refuses_a_seal_past_its_expiry() -> None:
    # The worker checks the expiry itself: a server that is slow (or lies) cannot extend it.
    pool = await _pool(seal_ttl_s=0.3)
    key = new_key()
    try:
        seal = await pool.reserve(ALICE)
        worker, _ = pool.claim(seal.seal_id, ALICE)
        await asyncio.sleep(seal.expires_at - time.time() + 0.1)
        with pytest.raises(PlancastError) as refused:
            await _open(worker, seal, _sealed_for(seal, key))
        assert refused.value.code is ErrorCode.BAD_SEAL
        assert "expired" in refused.value.message and key not in refused.value.message
        worker.kill()
    finally:
        await pool.shutdown()


@pytest.mark.parametrize(
    "told", [{"seal_id": "st_aaaaaaaaaaaaaaaa"}, {"expires_at": 60.0}], ids=["seal_id", "expiry"]
)
async def test_the_worker_opens_only_what_was_sealed_for_its_seal(told: dict[str, Any]) -> None:
    # The server hands the worker the seal id and expiry; if it changes either, the text
    # bound to the real ones does not open.
    pool = await _pool()
    key = new_key()
    try:
        seal = await pool.reserve(ALICE)
        worker, _ = pool.claim(seal.seal_id, ALICE)
        if "expires_at" in told:
            told = {"expires_at": seal.expires_at + told["expires_at"]}
        with pytest.raises(PlancastError) as refused:
            await _open(worker, seal, _sealed_for(seal, key), **told)
        assert refused.value.code is ErrorCode.BAD_SEAL
        assert key not in refused.value.message
        worker.kill()
    finally:
        await pool.shutdown()


async def test_a_worker_opens_the_seal_it_was_given() -> None:
    pool = await _pool()
    try:
        seal = await pool.reserve(ALICE)
        worker, _ = pool.claim(seal.seal_id, ALICE)
        await _open(worker, seal, _sealed_for(seal, new_key()))  # no error: opened
        await worker.close()
        assert worker.exited and pool.pids() == []
    finally:
        await pool.shutdown()


# -- how many workers -----------------------------------------------------------------------


def _never_more_than(server: Server, most: int, for_s: float = 0.5) -> None:
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        assert len(server.worker_pids()) <= most
        time.sleep(0.01)


def test_idle_workers_are_kept_ready_but_never_more(server: Server, emulator: Emulator) -> None:
    idle = server.settings.idle_workers
    assert idle == 2
    wait_until(lambda: len(server.worker_pids()) == idle)
    _never_more_than(server, idle)
    seal = server.new_seal()  # takes an idle worker; another is started in its place
    wait_until(lambda: len(server.worker_pids()) == idle + 1)
    _never_more_than(server, idle + 1)
    plan_id = server.new_plan()
    with server.connect() as ws:
        send(ws, server.seal(start_message(plan_id, openai_creds(emulator)), seal))
        started = recv(ws)
        assert isinstance(started, Started)
        collect(ws, started.stream_id)
    wait_until(lambda: len(server.worker_pids()) == idle)  # the stream's worker is gone
    _never_more_than(server, idle)


def test_no_idle_workers_means_none_until_a_seal(on_demand: Server) -> None:
    _never_more_than(on_demand, 0)
    reserve(on_demand)
    _never_more_than(on_demand, 1)


def _assert_busy(response: Any, text: str) -> None:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "busy" and text in error["message"]


def test_a_user_holds_a_limited_number_of_unused_seals(data_dir: Path) -> None:
    with running(load_settings(data_dir, idle_workers=0, max_streams_per_user=2)) as server:
        for _ in range(2):
            assert server.post("/api/v1/seals").status_code == 201
        _assert_busy(server.post("/api/v1/seals"), "unused stream seals")
        assert len(server.worker_pids()) == 2  # the refused request started no worker


def test_the_server_runs_a_limited_number_of_workers(data_dir: Path) -> None:
    with running(load_settings(data_dir, idle_workers=0, max_workers=2)) as server:
        for _ in range(2):
            assert server.post("/api/v1/seals").status_code == 201
        _assert_busy(server.post("/api/v1/seals"), "model workers")
        assert len(server.worker_pids()) == 2


# -- a worker keeps its keys to itself ------------------------------------------------------


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def _status(pid: int, field: str) -> str:
    match = re.search(rf"^{field}:\s*(.*)$", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match, field
    return match[1]


KEYISH = [
    "OPENAI_API_KEY",
    "openai_api_key",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "OLLAMA_API_KEY",
    "PLANCAST_TOKEN",
    "GITHUB_TOKEN",
    "AWS_SESSION_TOKEN",
    "CLIENT_SECRET",
    "DB_PASSWORD",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "PLANCAST_DATABASE_URL",  # may carry the database password
]
PLAIN = ["PATH", "HOME", "LANG", "PLANCAST_DATA_DIR", "VIRTUAL_ENV"]
# Names that merely contain KEY, TOKEN, … are dropped too: the fork server needs none of them,
# and erring that way costs nothing.
OVERCAUTIOUS = ["TOKENIZERS_PARALLELISM", "KEYBOARD_LAYOUT"]


def test_the_fork_server_gets_no_key_or_token_variable() -> None:
    kept = clean_environment({name: "x" for name in KEYISH + PLAIN + OVERCAUTIOUS})
    assert sorted(kept) == sorted(PLAIN)


def test_the_fork_server_gets_no_secret_key_variable() -> None:
    # "Nothing that looks like a key or a token" (clean_environment's contract) includes the
    # secret keys of other services that a server's environment often holds.
    kept = clean_environment({"AWS_SECRET_ACCESS_KEY": "x", "SECRET_KEY": "x", "PATH": "/bin"})
    assert sorted(kept) == ["PATH"]


def test_harden_makes_a_process_non_dumpable_with_no_core_file() -> None:
    # PR_SET_DUMPABLE has no outside view for a root process (its /proc files are root's
    # either way), so ``harden`` is checked from inside a process of its own; the worker test
    # below checks that workers run it.
    code = (
        "import ctypes, resource\n"
        "from plancast.server.workers.child import harden\n"
        "prctl = ctypes.CDLL(None).prctl\n"
        "before = prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE\n"
        "harden()\n"
        "print(before, prctl(3, 0, 0, 0, 0), *resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["1", "0", "0", "0"]


@pytest.fixture
def core_files_allowed() -> Iterator[int]:
    """This process may write core files (soft limit raised, within the hard one) until the end.

    So a worker's limit of 0 is its own doing, not inherited: its parent (the fork server,
    which does not harden itself) shows the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    raised = 1 << 20 if hard == resource.RLIM_INFINITY else min(1 << 20, hard)
    resource.setrlimit(resource.RLIMIT_CORE, (raised, hard))
    try:
        yield raised
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


def _core_limit(pid: int) -> tuple[str, str]:
    limits = Path(f"/proc/{pid}/limits").read_text()
    match = re.search(r"^Max core file size\s+(\S+)\s+(\S+)\s+bytes\s*$", limits, re.M)
    assert match, limits
    return match[1], match[2]


def test_a_worker_is_hardened_and_inherits_no_key(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, core_files_allowed: int
) -> None:
    keys = {
        "OPENAI_API_KEY": new_key(),
        "ANTHROPIC_API_KEY": new_key("sk-ant-test-"),
        "AZURE_OPENAI_API_KEY": new_key(""),
        "PLANCAST_TOKEN": new_key(""),
    }
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PLANCAST_WORKER_TEST_MARKER", "inherited")
    # A fork server started now, from this environment: the server's, keys included.
    with fresh_forkserver(tmp_path / "workers.log") as forkserver:
        with running(load_settings(data_dir, idle_workers=1)) as server:
            # A new fork server imports and warms up the SDKs before it forks: a wider bound.
            wait_until(lambda: len(server.worker_pids()) == 1, timeout=60)
            (pid,) = server.worker_pids()
            forkserver_pid = forkserver.process.pid
            assert int(_status(pid, "PPid")) == forkserver_pid

            # No core file, ever: 0, soft and hard, though its parent may write one. ``harden``
            # sets this just before it makes the process non-dumpable, and a worker whose
            # ``harden`` failed never gets to say it is ready.
            assert _core_limit(forkserver_pid)[0] == str(core_files_allowed)
            assert _core_limit(pid) == ("0", "0")

            # Its environment, copied from the fork server's, holds no key of the server's.
            environ = _environ(pid)
            assert environ.get("PLANCAST_WORKER_TEST_MARKER") == "inherited"  # not vacuous
            assert not [n for n in environ if n.endswith(("_API_KEY", "_TOKEN"))], sorted(environ)
            raw = Path(f"/proc/{pid}/environ").read_bytes()
            assert all(value.encode() not in raw for value in keys.values())


# -- the pipe, and deltas on it -----------------------------------------------------------------


async def _pipe() -> tuple[Channel, socket.socket]:
    """Our end as the server's channel, and the other end as a bare socket for the test."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    return await Channel.over(ours), theirs


def _lines(*messages: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


async def test_the_pipe_decodes_lines_however_the_bytes_are_cut() -> None:
    channel, peer = await _pipe()
    try:
        peer.send(b'{"t":"a","n":1}\n{"t":"b",')
        assert await channel.receive() == {"t": "a", "n": 1}
        assert channel.ready == 0 and channel.peek() is None  # half a line is no message
        peer.send(b'"text":"\\u00e9\\n"}\n{"t":"c"}\n{"t":"d"}\n')
        assert await channel.receive() == {"t": "b", "text": "é\n"}
        assert channel.ready == 2  # arrived with it: waiting, and taken without waiting
        assert channel.peek() == {"t": "c"} and channel.ready == 2  # looking takes nothing
        assert [await channel.receive(), await channel.receive()] == [{"t": "c"}, {"t": "d"}]
        peer.close()
        with pytest.raises(ChannelClosed):
            await channel.receive()
    finally:
        await channel.wait_closed()


@pytest.mark.parametrize("bad", [b"not json\n", b"[1, 2]\n", b'"text"\n'])
async def test_a_line_that_is_not_a_json_object_closes_the_pipe_after_the_good_ones(
    bad: bytes,
) -> None:
    channel, peer = await _pipe()
    try:
        peer.send(_lines({"t": "ok"}) + bad + _lines({"t": "never"}))
        assert await channel.receive() == {"t": "ok"}
        for _ in range(2):  # and every later read
            with pytest.raises(ChannelClosed):
                await channel.receive()
        assert channel.peek() is None
    finally:
        peer.close()
        await channel.wait_closed()


async def _fill(channel: Channel) -> None:
    """Write until the peer (which reads nothing) has the channel wait for it."""
    while not channel._pipe.writing_paused:
        channel.send({"t": "delta", "text": "x" * 65536})
        await asyncio.sleep(0)


async def test_drain_waits_for_a_slow_reader_and_wakes_every_writer_once_it_reads() -> None:
    channel, peer = await _pipe()
    try:
        await _fill(channel)
        waiting = [asyncio.create_task(channel.drain()) for _ in range(2)]  # call and control
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiting)
        loop = asyncio.get_running_loop()
        while not all(w.done() for w in waiting):
            await asyncio.wait_for(loop.sock_recv(peer, 1 << 20), WAIT)  # the reader catches up
        await asyncio.gather(*waiting)
    finally:
        peer.close()
        await channel.wait_closed()


async def test_drain_fails_for_every_writer_once_the_reader_has_gone() -> None:
    channel, peer = await _pipe()
    try:
        await _fill(channel)
        waiting = [asyncio.create_task(channel.drain()) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiting)
        peer.close()
        for waiter in waiting:
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(waiter, WAIT)
        with pytest.raises(ChannelClosed):
            channel.send({"t": "late"})
    finally:
        await channel.wait_closed()


class _Recorder:
    """Stands in for the worker's channel: what ``_Deltas`` sends, in order."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.sent]


async def test_a_worker_sends_the_first_delta_of_a_turn_at_once_and_joins_the_rest() -> None:
    pipe = _Recorder()
    deltas = child._Deltas(cast(Channel, pipe), 7)
    deltas.add("a")
    assert pipe.texts == ["a"]  # nothing held back when the stream was quiet
    deltas.add("b")
    deltas.add("c")
    assert pipe.texts == ["a"]
    await asyncio.sleep(0)  # the turn of the loop ends
    assert pipe.texts == ["a", "bc"]
    deltas.add("d")  # a new turn: at once again
    deltas.add("e")
    deltas.flush()  # before usage, the end or an error
    assert pipe.texts == ["a", "bc", "d", "e"]
    await asyncio.sleep(0)
    assert pipe.texts == ["a", "bc", "d", "e"]  # nothing twice
    assert {m["t"] for m in pipe.sent} == {"delta"} and {m["id"] for m in pipe.sent} == {7}


async def test_a_worker_joins_no_more_than_the_limit_and_drops_nothing() -> None:
    pipe = _Recorder()
    deltas = child._Deltas(cast(Channel, pipe), 1)
    third = "x" * (JOIN_CHARS // 3)
    pieces = ["first", third, third, third, third, "y"]
    for piece in pieces:
        deltas.add(piece)
    await asyncio.sleep(0)
    assert "".join(pipe.texts) == "".join(pieces)
    assert pipe.texts[0] == "first"
    assert max(len(t) for t in pipe.texts) <= JOIN_CHARS
    assert len(pipe.texts) == 3  # "first", three thirds, the last third and "y"


async def test_a_cancelled_call_sends_nothing_after() -> None:
    pipe = _Recorder()
    deltas = child._Deltas(cast(Channel, pipe), 1)
    deltas.add("a")
    deltas.add("b")
    deltas.close()  # the server abandoned the call
    await asyncio.sleep(0)
    assert pipe.texts == ["a"]


async def test_the_server_makes_one_event_of_the_delta_lines_waiting_on_the_pipe() -> None:
    channel, peer = await _pipe()
    pidfd = os.pidfd_open(os.getpid())  # never readable: this worker "runs" as long as the test
    worker = Worker(os.getpid(), pidfd, channel, "unused", cast(WorkerPool, None))
    half = "z" * (JOIN_CHARS // 2)
    peer.send(
        _lines(
            {"t": "delta", "id": 1, "text": "a"},
            {"t": "delta", "id": 1, "text": "b"},
            {"t": "delta", "id": 1, "text": "c"},
            {"t": "delta", "id": 0, "text": "from an abandoned call"},
            {"t": "delta", "id": 1, "text": "d"},
            {"t": "usage", "id": 1, "input": 3, "output": 4},
            {"t": "delta", "id": 1, "text": "e"},
            *[{"t": "delta", "id": 1, "text": half}] * 3,
            {"t": "done", "id": 1},
        )
    )
    request = ChatRequest(ModelSpec.parse("openai/gpt-4.1"), "s", (ChatMessage("user", "u"),))
    try:
        got = [out async for out in worker.stream_chat(request)]
        assert json.loads(await asyncio.get_running_loop().sock_recv(peer, 65536))["t"] == "chat"
    finally:
        asyncio.get_running_loop().remove_reader(pidfd)
        os.close(pidfd)
        peer.close()
        await channel.wait_closed()
    assert got == [
        TextDelta("abc"),  # joined up to the line of another call
        TextDelta("d"),
        Usage(3, 4),  # never joined, and it keeps its place
        TextDelta("e" + half),  # joined up to the limit
        TextDelta(half * 2),
    ]
