"""Before an org's or an account's rows are deleted: stop their streams, close their sockets.

A stream that runs while its plan's rows are deleted could not save its reply, and the
deletion refuses a running stream (``busy``). So the routes that delete first stop every
stream concerned, through the same paths as a removal or a sign-out (which also reach the
other replicas), and wait, a bounded while, for those of this process to save and end,
and for their audit entries to be written (so that an org's deletion takes them too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from plancast.server.streams.live import LiveStream

STOP_WAIT_S = 10.0


async def close_org(state: Any, org_id: str, member_ids: Iterable[str]) -> None:
    """Stop the org's streams and close its members' sockets there (``4403``)."""
    for user_id in member_ids:
        state.memberships_changed(org_id, user_id, None)
    await _wait(state, lambda live: live.org_id == org_id)


async def close_account(
    state: Any, user_id: str, session_ids: list[str], org_ids: Iterable[str]
) -> None:
    """End the user's sessions (their streams stop, their sockets close with ``4401``), and
    take them out of each org's live state."""
    state.signin.end_sessions(session_ids)
    for org_id in org_ids:
        state.memberships_changed(org_id, user_id, None)
    await _wait(state, lambda live: live.user_id == user_id)


async def _wait(state: Any, which: Callable[[LiveStream], bool]) -> None:
    tasks = [
        live.task
        for live in state.streams.registry.running()
        if which(live) and live.task is not None
    ]
    if tasks:
        await asyncio.wait(tasks, timeout=STOP_WAIT_S)
    await state.audit.flush()  # the stopped streams' worker exits: deleted with the rest
