"""Plans: a conversation about changes to one project, with versioned state.

Rules:

1. A plan's name is unique within its project. A name the user gives (at ``rename``) is
   marked ``name_source`` 'user', so that the namer role never replaces it.
2. An archived plan is left out of the project's list unless asked for, and nothing else
   changes: it can be read, written and unarchived.
3. Deleting a plan deletes every row of it in one transaction, table by table (not only
   through foreign keys: ``usage`` and ``stream_events`` have none to the plan), plus the
   stored responses of idempotent requests to its routes. A plan that runs a stream is not
   deleted (``Busy``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import versions
from plancast.server.domain.branches import refuse_if_busy
from plancast.server.domain.ids import new_id, now
from plancast.server.domain.projects import get_project
from plancast.server.errors import Conflict, InvalidRequest, NotFound
from plancast.server.store.schema import (
    branches,
    changes,
    context_items,
    head_moves,
    messages,
    plans,
    stream_events,
    streams,
    usage,
)
from plancast.server.store.schema import versions as versions_table


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    project_id: str
    name: str
    model: str | None
    created_at: float
    archived_at: float | None = None


_COLUMNS = (
    plans.c.id,
    plans.c.project_id,
    plans.c.name,
    plans.c.model,
    plans.c.created_at,
    plans.c.archived_at,
)


async def create_plan(
    conn: AsyncConnection, org_id: str, project_id: str, name: str | None
) -> Plan:
    """Create a plan with its first version and ``main`` branch.

    Raises:
        NotFound: no such project.
        Conflict: the project already has a plan with that name.
    """
    await get_project(conn, org_id, project_id)
    source = "user"  # a name the user gives is theirs, even one like plan-7
    if name is None:
        count = await conn.scalar(
            select(func.count()).select_from(plans).where(plans.c.project_id == project_id)
        )
        name, source = f"plan-{count + 1}", "draft"  # the namer may replace it
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidRequest("plan name must be 1-200 characters")
    plan = Plan(new_id("pl"), project_id, name, None, now())
    try:
        async with conn.begin_nested():
            await conn.execute(
                plans.insert().values(
                    id=plan.id,
                    org_id=org_id,
                    project_id=project_id,
                    name=plan.name,
                    name_source=source,
                    created_at=plan.created_at,
                    updated_at=plan.created_at,
                )
            )
    except IntegrityError:
        raise Conflict(f"this project already has a plan named {name!r}") from None
    await versions.create_root(conn, org_id, plan.id)
    return plan


async def get_plan(conn: AsyncConnection, org_id: str, plan_id: str) -> Plan:
    row = (
        await conn.execute(select(*_COLUMNS).where(plans.c.org_id == org_id, plans.c.id == plan_id))
    ).first()
    if row is None:
        raise NotFound(f"no plan {plan_id!r}; `plancast plans` lists this project's plans")
    return Plan(*row)


async def list_plans(
    conn: AsyncConnection, org_id: str, project_id: str, *, archived: bool = False
) -> list[Plan]:
    """The project's plans, oldest first; archived ones only with ``archived`` (Rule 2)."""
    await get_project(conn, org_id, project_id)
    query = select(*_COLUMNS).where(plans.c.org_id == org_id, plans.c.project_id == project_id)
    if not archived:
        query = query.where(plans.c.archived_at.is_(None))
    rows = await conn.execute(query.order_by(plans.c.created_at))
    return [Plan(*row) for row in rows]


async def list_branches(conn: AsyncConnection, org_id: str, plan_id: str) -> list[str]:
    rows = await conn.execute(
        select(branches.c.name)
        .where(branches.c.org_id == org_id, branches.c.plan_id == plan_id)
        .order_by(branches.c.created_at)
    )
    return [name for (name,) in rows]


async def touch(conn: AsyncConnection, org_id: str, plan_id: str) -> None:
    await conn.execute(
        plans.update()
        .where(plans.c.org_id == org_id, plans.c.id == plan_id)
        .values(updated_at=now())
    )


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidRequest("plan name must be 1-200 characters")
    return name


async def rename_plan(conn: AsyncConnection, org_id: str, plan_id: str, name: str) -> Plan:
    """Give the plan a name of the user's (Rule 1).

    Raises:
        NotFound: no such plan.
        InvalidRequest: the name is empty or longer than 200 characters.
        Conflict: another plan of the project has that name.
    """
    name = _check_name(name)
    await get_plan(conn, org_id, plan_id)
    try:
        async with conn.begin_nested():
            await conn.execute(
                plans.update()
                .where(plans.c.org_id == org_id, plans.c.id == plan_id)
                .values(name=name, name_source="user", updated_at=now())
            )
    except IntegrityError:
        raise Conflict(
            f"this project already has a plan named {name!r}; `plancast plans --archived` "
            "lists them all"
        ) from None
    return await get_plan(conn, org_id, plan_id)


async def set_archived(conn: AsyncConnection, org_id: str, plan_id: str, archived: bool) -> Plan:
    """Archive or unarchive the plan (Rule 2); doing it twice changes nothing more."""
    plan = await get_plan(conn, org_id, plan_id)
    if (plan.archived_at is not None) != archived:
        await conn.execute(
            plans.update()
            .where(plans.c.org_id == org_id, plans.c.id == plan_id)
            .values(archived_at=now() if archived else None)
        )
    return await get_plan(conn, org_id, plan_id)


async def delete_plan(conn: AsyncConnection, org_id: str, plan_id: str) -> Plan:
    """Delete the plan and every row of it (Rule 3); returns what it was.

    Raises:
        NotFound: no such plan.
        Busy: a stream runs on one of its branches.
    """
    plan = await get_plan(conn, org_id, plan_id)
    await refuse_if_busy(conn, org_id, plan_id, None, "delete this plan")
    its_streams = select(streams.c.id).where(
        streams.c.org_id == org_id, streams.c.plan_id == plan_id
    )
    await conn.execute(stream_events.delete().where(stream_events.c.stream_id.in_(its_streams)))
    for table in (
        usage,
        head_moves,
        branches,
        versions_table,
        changes,
        messages,
        context_items,
        streams,
    ):
        await conn.execute(
            table.delete().where(table.c.org_id == org_id, table.c.plan_id == plan_id)
        )
    await conn.execute(plans.delete().where(plans.c.org_id == org_id, plans.c.id == plan_id))
    return plan
