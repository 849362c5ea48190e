"""Names the namer role gives: only to plans whose name nobody chose.

Rules:

1. A plan's name is a draft when the server made it up (``name_source`` 'draft', or unset with
   the ``plan-N`` form plans were given before names were tracked). Only a draft is replaced,
   and only once: the rename is a compare-and-set on the draft name, so a user's rename that
   lands first always wins.
2. A generated name that another plan of the project has gets ``-2``, ``-3`` … appended.
"""

from __future__ import annotations

import re

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import now
from plancast.server.store.schema import plans

_DRAFT = re.compile(r"plan-\d+")
MAX_SUFFIX = 50


async def draft_name(conn: AsyncConnection, org_id: str, plan_id: str) -> str | None:
    """The plan's name if it is a draft (Rule 1), else None."""
    row = (
        await conn.execute(
            select(plans.c.name, plans.c.name_source).where(
                plans.c.org_id == org_id, plans.c.id == plan_id
            )
        )
    ).first()
    if row is None:
        return None
    name, source = row
    if source == "draft" or (source is None and _DRAFT.fullmatch(name)):
        return str(name)
    return None


async def give_name(
    conn: AsyncConnection, org_id: str, plan_id: str, draft: str, wanted: str
) -> str | None:
    """Rename a draft-named plan to ``wanted`` (made unique); None if it is no longer a draft."""
    project_id = await conn.scalar(
        select(plans.c.project_id).where(plans.c.org_id == org_id, plans.c.id == plan_id)
    )
    taken = set(
        (
            await conn.execute(
                select(plans.c.name).where(
                    # autoescape: the name's own % and _ are not wildcards, nor is a backslash an
                    # escape (PostgreSQL's LIKE escapes with one by default; SQLite's does not).
                    plans.c.project_id == project_id,
                    plans.c.name.startswith(wanted, autoescape=True),
                )
            )
        ).scalars()
    )
    name = wanted
    for n in range(2, MAX_SUFFIX + 2):
        if name not in taken:
            break
        name = f"{wanted}-{n}"
    else:
        return None
    try:
        async with conn.begin_nested():
            moved = await conn.execute(
                plans.update()
                .where(
                    plans.c.org_id == org_id,
                    plans.c.id == plan_id,
                    plans.c.name == draft,
                    or_(plans.c.name_source.is_(None), plans.c.name_source == "draft"),
                )
                .values(name=name, name_source="namer", updated_at=now())
            )
    except IntegrityError:  # another plan took the name meanwhile: keep the draft (Rule 1)
        return None
    return name if moved.rowcount == 1 else None
