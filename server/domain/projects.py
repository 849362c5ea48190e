"""Projects: a named home for plans, bound by the client to one directory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import new_id, now
from plancast.server.errors import InvalidRequest, NotFound
from plancast.server.store.schema import projects


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    created_at: float


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidRequest("project name must be 1-200 characters")
    return name


async def create_project(conn: AsyncConnection, org_id: str, name: str) -> Project:
    project = Project(new_id("prj"), _check_name(name), now())
    await conn.execute(
        projects.insert().values(
            id=project.id, org_id=org_id, name=project.name, created_at=project.created_at
        )
    )
    return project


async def get_project(conn: AsyncConnection, org_id: str, project_id: str) -> Project:
    row = (
        await conn.execute(
            select(projects.c.id, projects.c.name, projects.c.created_at).where(
                projects.c.org_id == org_id, projects.c.id == project_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"no project {project_id!r}")
    return Project(*row)


async def list_projects(conn: AsyncConnection, org_id: str) -> list[Project]:
    rows = await conn.execute(
        select(projects.c.id, projects.c.name, projects.c.created_at)
        .where(projects.c.org_id == org_id)
        .order_by(projects.c.created_at)
    )
    return [Project(*row) for row in rows]
