"""A plan's model settings: which model plays each role, auto-continue, summary budget.

They live in the plan's version state (``PlanState.settings``), so changing them is a
version like any other change, and rewinding a plan rewinds its settings too.
"""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import versions
from plancast.shared import PlanModels


def from_state(state: versions.PlanState) -> PlanModels:
    return PlanModels.from_dict(json.loads(state.settings or "{}"))


async def get(conn: AsyncConnection, org_id: str, plan_id: str, branch: str) -> PlanModels:
    """The branch head's settings, as stored (``resolved()`` fills in the rest)."""
    return from_state((await versions.head(conn, org_id, plan_id, branch)).state)


async def put(
    conn: AsyncConnection,
    org_id: str,
    plan_id: str,
    branch: str,
    models: PlanModels,
    description: str,
) -> int | None:
    """Replace the settings; returns the new version number, or None when nothing changed."""
    text = json.dumps(models.to_dict(), separators=(",", ":"), sort_keys=True)
    current = await versions.head(conn, org_id, plan_id, branch)
    if json.loads(current.state.settings or "{}") == json.loads(text):
        return None
    version = await versions.commit(
        conn,
        org_id,
        plan_id,
        branch,
        "settings",
        description,
        lambda state: replace(state, settings=text),
    )
    return version.number
