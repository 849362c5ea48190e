"""The conversation of a plan: the user's prompts and the model's replies, in order."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import versions
from plancast.server.domain.ids import new_id, now
from plancast.server.store.schema import messages


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    role: str  # user | assistant
    mode: str  # tell | chat | continue
    content: str
    status: str  # complete | partial
    stream_id: str | None
    created_at: float


async def insert_message(
    conn: AsyncConnection,
    org_id: str,
    plan_id: str,
    *,
    role: str,
    mode: str,
    content: str,
    status: str = "complete",
    stream_id: str | None = None,
) -> Message:
    """Write a message row. It joins the plan only when a version lists it."""
    message = Message(new_id("msg"), role, mode, content, status, stream_id, now())
    await conn.execute(
        messages.insert().values(
            id=message.id,
            org_id=org_id,
            plan_id=plan_id,
            role=role,
            mode=mode,
            content=content,
            status=status,
            stream_id=stream_id,
            created_at=message.created_at,
        )
    )
    return message


async def list_messages(
    conn: AsyncConnection, org_id: str, plan_id: str, branch: str
) -> list[Message]:
    state = (await versions.head(conn, org_id, plan_id, branch)).state
    if not state.messages:
        return []
    rows = await conn.execute(
        select(
            messages.c.id,
            messages.c.role,
            messages.c.mode,
            messages.c.content,
            messages.c.status,
            messages.c.stream_id,
            messages.c.created_at,
        ).where(messages.c.org_id == org_id, messages.c.id.in_(list(state.messages)))
    )
    by_id = {row[0]: Message(*row) for row in rows}
    return [by_id[i] for i in state.messages if i in by_id]


async def reply_of_stream(conn: AsyncConnection, org_id: str, stream_id: str) -> str:
    """The reply a stream wrote (its assistant message), or "" if it wrote none."""
    found = await conn.scalar(
        select(messages.c.content).where(
            messages.c.org_id == org_id,
            messages.c.stream_id == stream_id,
            messages.c.role == "assistant",
        )
    )
    return str(found or "")
