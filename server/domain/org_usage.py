"""An org's token usage over the last days: by model, by UTC day, and in all.

Read from the ``usage`` rows the stream engine writes (metadata only, ``domain/usage.py``
Rule 1), summed by the database: an org's month can be many thousands of calls.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import now
from plancast.server.errors import InvalidRequest
from plancast.server.store.schema import usage

DAY_S = 86400
MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class Tokens:
    key: str  # a model, a day (YYYY-MM-DD), or "total"
    calls: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: str
    total: Tokens
    by_model: tuple[Tokens, ...]


@dataclass(frozen=True, slots=True)
class OrgUsage:
    since: float  # the first second counted: midnight UTC, ``days`` days ago counting today
    days: int
    by_model: tuple[Tokens, ...]
    by_day: tuple[DayUsage, ...]  # days with calls only, oldest first
    total: Tokens


def check_days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(f"days must be 1 to {MAX_DAYS}")
    return days


async def org_usage(conn: AsyncConnection, org_id: str, days: int) -> OrgUsage:
    """The org's calls and tokens since midnight UTC ``days - 1`` days ago, today included."""
    since = float((int(now()) // DAY_S - check_days(days) + 1) * DAY_S)
    # SQLite truncates toward zero (so floors the positive times here); PostgreSQL rounds.
    day = (
        func.floor(usage.c.created_at / DAY_S)
        if conn.dialect.name == "postgresql"
        else cast(usage.c.created_at / DAY_S, Integer)
    ).label("day")
    rows = await conn.execute(
        select(
            day,
            usage.c.model,
            func.count(),
            func.sum(usage.c.input_tokens),
            func.sum(usage.c.output_tokens),
        )
        .where(usage.c.org_id == org_id, usage.c.created_at >= since)
        .group_by(day, usage.c.model)
    )
    cells = sorted(
        (int(d), str(m), int(c), int(i or 0), int(o or 0)) for d, m, c, i, o in rows
    )  # one per (day, model): the query grouped them
    models = sorted({m for _, m, _, _, _ in cells})
    days_seen = sorted({d for d, _, _, _, _ in cells})
    return OrgUsage(
        since=since,
        days=days,
        by_model=tuple(_sum(m, [c for c in cells if c[1] == m]) for m in models),
        by_day=tuple(
            DayUsage(
                _date(d),
                _sum(_date(d), [c for c in cells if c[0] == d]),
                tuple(Tokens(m, n, i, o) for day_, m, n, i, o in cells if day_ == d),
            )
            for d in days_seen
        ),
        total=_sum("total", cells),
    )


def _sum(key: str, cells: list[tuple[int, str, int, int, int]]) -> Tokens:
    return Tokens(
        key,
        sum(c[2] for c in cells),
        sum(c[3] for c in cells),
        sum(c[4] for c in cells),
    )


def _date(day_number: int) -> str:
    return dt.datetime.fromtimestamp(day_number * DAY_S, dt.UTC).date().isoformat()
