"""Plans: a conversation about changes to one project, with versioned state."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import versions
from plancast.server.domain.ids import new_id, now
from plancast.server.domain.projects import get_project
from plancast.server.errors import Conflict, InvalidRequest, NotFound
from plancast.server.store.schema import branches, plans


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    project_id: str
    name: str
    model: str | None
    created_at: float


_COLUMNS = (plans.c.id, plans.c.project_id, plans.c.name, plans.c.model, plans.c.created_at)


async def create_plan(
    conn: AsyncConnection, org_id: str, project_id: str, name: str | None
) -> Plan:
    """Create a plan with its first version and ``main`` branch.

    Raises:
        NotFound: no such project.
        Conflict: the project already has a plan with that name.
    """
    await get_project(conn, org_id, project_id)
    if name is None:
        count = await conn.scalar(
            select(func.count()).select_from(plans).where(plans.c.project_id == project_id)
        )
        name = f"plan-{count + 1}"
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


async def list_plans(conn: AsyncConnection, org_id: str, project_id: str) -> list[Plan]:
    await get_project(conn, org_id, project_id)
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(plans.c.org_id == org_id, plans.c.project_id == project_id)
        .order_by(plans.c.created_at)
    )
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
