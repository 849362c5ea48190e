"""Usage: what the model calls of a plan (or of a whole project) cost, in tokens and time.

The stream engine writes one ``usage`` row per model call. This module only reads them.

Rules:

1. A usage row holds metadata and nothing else: the model, the role it played, token counts
   in and out, the time to the first token and the call's duration. No prompt or reply text
   is ever stored here; the plan's own history (messages, changes) is the only place for
   those.
2. Every query is scoped to the org, and a plan or project of another org is ``NotFound``
   before any row is read.
3. A report groups the calls by model and by role, and totals them. Tokens and durations are
   sums; the first-token time is the median over the calls that produced a token (a call
   that failed before its first token has none), because one slow start should not hide how
   fast the others were.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.plans import get_plan
from plancast.server.domain.projects import get_project
from plancast.server.store.schema import plans, usage
from plancast.shared import ROLES


@dataclass(frozen=True, slots=True)
class Call:
    """One usage row, as read back (rule 1: numbers and names only)."""

    plan_id: str
    model: str
    role: str
    input_tokens: int
    output_tokens: int
    first_token_ms: int | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """The calls that share a model, a role or a plan (``key``), or all of them."""

    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    duration_ms: int
    median_first_token_ms: int | None


@dataclass(frozen=True, slots=True)
class UsageReport:
    by_model: tuple[UsageGroup, ...]
    by_role: tuple[UsageGroup, ...]
    by_plan: tuple[UsageGroup, ...]
    total: UsageGroup


_COLUMNS = (
    usage.c.plan_id,
    usage.c.model,
    usage.c.role,
    usage.c.input_tokens,
    usage.c.output_tokens,
    usage.c.first_token_ms,
    usage.c.duration_ms,
)


async def plan_usage(conn: AsyncConnection, org_id: str, plan_id: str) -> UsageReport:
    """Every model call a plan made, grouped (rule 3).

    Raises:
        NotFound: no such plan in this org.
    """
    await get_plan(conn, org_id, plan_id)
    rows = await conn.execute(
        select(*_COLUMNS).where(usage.c.org_id == org_id, usage.c.plan_id == plan_id)
    )
    return summarize([Call(*row) for row in rows])


async def project_usage(conn: AsyncConnection, org_id: str, project_id: str) -> UsageReport:
    """Every model call of every plan of a project, grouped (rule 3), with a group per plan.

    Plan groups are keyed by plan id; a caller that wants names lists the plans.

    Raises:
        NotFound: no such project in this org.
    """
    await get_project(conn, org_id, project_id)
    rows = await conn.execute(
        select(*_COLUMNS)
        .select_from(usage.join(plans, plans.c.id == usage.c.plan_id))
        .where(
            usage.c.org_id == org_id,
            plans.c.org_id == org_id,
            plans.c.project_id == project_id,
        )
    )
    return summarize([Call(*row) for row in rows])


def summarize(calls: Sequence[Call]) -> UsageReport:
    """Group ``calls`` by model, role and plan, and total them (rule 3)."""
    return UsageReport(
        by_model=_groups(calls, lambda c: c.model, sorted),
        by_role=_groups(calls, lambda c: c.role, _role_order),
        by_plan=_groups(calls, lambda c: c.plan_id, sorted),
        total=_group("total", calls),
    )


def _groups(
    calls: Sequence[Call],
    key: Callable[[Call], str],
    order: Callable[[Iterable[str]], list[str]],
) -> tuple[UsageGroup, ...]:
    by_key: dict[str, list[Call]] = {}
    for call in calls:
        by_key.setdefault(key(call), []).append(call)
    return tuple(_group(k, by_key[k]) for k in order(by_key))


def _group(key: str, calls: Sequence[Call]) -> UsageGroup:
    firsts = [c.first_token_ms for c in calls if c.first_token_ms is not None]
    return UsageGroup(
        key=key,
        calls=len(calls),
        input_tokens=sum(c.input_tokens for c in calls),
        output_tokens=sum(c.output_tokens for c in calls),
        duration_ms=sum(c.duration_ms for c in calls),
        median_first_token_ms=round(statistics.median(firsts)) if firsts else None,
    )


def _role_order(roles: Iterable[str]) -> list[str]:
    """Known roles in the order they are shown everywhere, then any others by name."""
    known = {role: n for n, role in enumerate(ROLES)}
    return sorted(roles, key=lambda r: (known.get(r, len(known)), r))
