"""Revoking a sign-in session stops the streams it started and kills their workers at once.

Team mode (accounts, sessions) calls ``StreamService.revoke_session``; these tests call it
directly with principals that carry a session id, on the in-process app.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from plancast.server.domain.accounts import LOCAL_ORG_ID, LOCAL_USER_ID
from plancast.server.domain.principal import Principal, Role
from plancast.server.workers.pool import SealRefused
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import Server, openai_creds, start_message, wait_until

SESSION = Principal(LOCAL_USER_ID, LOCAL_ORG_ID, Role.OWNER, session_id="sess-a")
OTHER_SESSION = dataclasses.replace(SESSION, session_id="sess-b")


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_revoking_a_session_stops_its_stream_and_kills_its_worker(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(text="slow " * 400, chunk_chars=5, trickle=0.02))
    portal = server.client.portal
    assert portal is not None
    service = server.app.state.streams
    start = server.seal(start_message(plan_id, openai_creds(emulator)))
    started = portal.call(service.start, SESSION, start)
    emulator.wait_for_requests(1)
    (worker_pid,) = server.app.state.workers.busy_pids()

    assert portal.call(service.revoke_session, "sess-b") == 0  # another session: untouched
    assert server.stream_row(started.stream_id)["status"] == "running"

    assert portal.call(service.revoke_session, "sess-a") == 1
    row = server.wait_stream_ended(started.stream_id)
    assert row["status"] == "stopped"
    wait_until(lambda: not _alive(worker_pid))
    assert worker_pid not in server.worker_pids()


def test_revoking_a_session_kills_the_workers_of_its_unused_seals(server: Server) -> None:
    portal = server.client.portal
    assert portal is not None
    pool = server.app.state.workers
    mine = portal.call(pool.reserve, SESSION)
    theirs = portal.call(pool.reserve, OTHER_SESSION)
    reserved = set(server.worker_pids())

    portal.call(server.app.state.streams.revoke_session, "sess-a")

    try:
        portal.call(pool.claim, mine.seal_id, SESSION)
    except SealRefused as exc:
        assert "seal" in exc.message
    else:
        raise AssertionError("a revoked session's seal was still claimable")
    worker, _seal = portal.call(pool.claim, theirs.seal_id, OTHER_SESSION)  # still good
    assert worker.pid in reserved and _alive(worker.pid)
    worker.kill()
