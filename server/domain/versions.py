"""Plan versions: every change to a plan is a new version; branches are named heads.

Rules:

1. A version's ``state`` lists the ids of the immutable rows that make up the
   plan at that point (context items, messages, changes with their status).
   Nothing in a state is ever edited in place: a change makes a new state.
2. ``commit`` moves a branch head with a compare-and-set on the old head, so two
   writers can never both win; the loser retries against the new head. A plan's writers
   also queue on its row lock, so that on PostgreSQL many at once do not starve.
3. Versions are numbered per plan, 1, 2, 3 …, in the order they were made.
4. A version is never deleted while its plan lives: a rewind or a deleted branch only moves
   or drops a name (``head_moves``, ``branches``), so every version stays reachable by its
   number (``get_version``) and is listed by ``all_versions``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import new_id, now
from plancast.server.errors import Conflict, NotFound
from plancast.server.store.schema import branches, plans, versions

MAX_COMMIT_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class PlanState:
    context: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    changes: tuple[tuple[str, str], ...] = field(default=())  # (change id, status)
    settings: str = "{}"  # JSON object: the plan's model settings (``llm.roles``)

    def to_json(self) -> str:
        return json.dumps(
            {
                "context": self.context,
                "messages": self.messages,
                "changes": self.changes,
                "settings": self.settings,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> PlanState:
        data = json.loads(text)
        return cls(
            context=tuple(data.get("context", ())),
            messages=tuple(data.get("messages", ())),
            changes=tuple((c, s) for c, s in data.get("changes", ())),
            settings=data.get("settings", "{}"),
        )

    def with_change_status(self, ids: set[str], status: str) -> PlanState:
        return replace(self, changes=tuple((c, status if c in ids else s) for c, s in self.changes))


@dataclass(frozen=True, slots=True)
class Version:
    id: str
    number: int
    kind: str
    description: str
    state: PlanState
    parent_id: str | None
    created_at: float


_COLUMNS = (
    versions.c.id,
    versions.c.number,
    versions.c.kind,
    versions.c.description,
    versions.c.state,
    versions.c.parent_id,
    versions.c.created_at,
)


def _version(row: tuple) -> Version:
    vid, number, kind, description, state, parent_id, created_at = row
    return Version(
        vid, number, kind, description, PlanState.from_json(state), parent_id, created_at
    )


async def create_root(conn: AsyncConnection, org_id: str, plan_id: str) -> Version:
    """The first version of a new plan, and its ``main`` branch pointing at it."""
    version = Version(new_id("ver"), 1, "create", "plan created", PlanState(), None, now())
    await _insert(conn, org_id, plan_id, version)
    await conn.execute(
        branches.insert().values(
            id=new_id("br"),
            org_id=org_id,
            plan_id=plan_id,
            name="main",
            head_id=version.id,
            created_at=version.created_at,
        )
    )
    return version


async def head(conn: AsyncConnection, org_id: str, plan_id: str, branch: str) -> Version:
    """The version a branch points at.

    Raises:
        NotFound: the plan has no such branch (or is not this org's).
    """
    row = (
        await conn.execute(
            select(*_COLUMNS)
            .select_from(branches.join(versions, versions.c.id == branches.c.head_id))
            .where(
                branches.c.org_id == org_id,
                branches.c.plan_id == plan_id,
                branches.c.name == branch,
            )
        )
    ).first()
    if row is None:
        raise NotFound(
            f"plan {plan_id!r} has no branch {branch!r}; `plancast branches` lists them, "
            "`plancast checkout main` goes back to the first"
        )
    return _version(row)


async def commit(
    conn: AsyncConnection,
    org_id: str,
    plan_id: str,
    branch: str,
    kind: str,
    description: str,
    mutate: Callable[[PlanState], PlanState],
) -> Version:
    """Make a new version from the branch head and move the head to it.

    ``mutate`` gets the head's state and returns the new one; it may be called
    again if another writer moved the head first.

    Raises:
        NotFound: no such plan branch.
        Conflict: the head kept moving (after ``MAX_COMMIT_ATTEMPTS``).
    """
    await _lock_plan(conn, org_id, plan_id)
    for _ in range(MAX_COMMIT_ATTEMPTS):
        parent = await head(conn, org_id, plan_id, branch)
        number = (
            await conn.scalar(
                select(func.coalesce(func.max(versions.c.number), 0)).where(
                    versions.c.plan_id == plan_id
                )
            )
        ) + 1
        version = Version(
            new_id("ver"), number, kind, description, mutate(parent.state), parent.id, now()
        )
        try:
            async with conn.begin_nested():
                await _insert(conn, org_id, plan_id, version)
                if not await move_head(conn, org_id, plan_id, branch, parent.id, version.id):
                    raise _HeadMoved
        except (IntegrityError, _HeadMoved):
            continue
        return version
    raise Conflict(f"plan {plan_id!r} branch {branch!r} is changing too fast; try again")


class _HeadMoved(Exception):
    pass


async def move_head(
    conn: AsyncConnection, org_id: str, plan_id: str, branch: str, from_id: str, to_id: str
) -> bool:
    """Point ``branch`` at ``to_id`` if it still points at ``from_id`` (rule 2's compare-and-set).

    Returns False when another writer moved the head first.
    """
    moved = await conn.execute(
        branches.update()
        .where(
            branches.c.org_id == org_id,
            branches.c.plan_id == plan_id,
            branches.c.name == branch,
            branches.c.head_id == from_id,
        )
        .values(head_id=to_id)
    )
    return bool(moved.rowcount == 1)


async def _lock_plan(conn: AsyncConnection, org_id: str, plan_id: str) -> None:
    """Hold the plan's row until the transaction ends, so that its commits queue (Rules 2, 3).

    PostgreSQL runs writers at once: without the lock, N writers on one branch all read the
    same head, and N writers on any branches the same next number, and all but one retry,
    again and again. The compare-and-set and the unique number stay the guarantees; the lock
    only makes the others wait, then read what the first committed (READ COMMITTED). FOR NO
    KEY UPDATE leaves inserts of the plan's rows (their foreign key checks) free to go on.
    SQLite renders no lock clause: its writers are serialized by ``BEGIN IMMEDIATE`` already.
    """
    await conn.execute(
        select(plans.c.id)
        .where(plans.c.org_id == org_id, plans.c.id == plan_id)
        .with_for_update(key_share=True)
    )


async def _insert(conn: AsyncConnection, org_id: str, plan_id: str, version: Version) -> None:
    await conn.execute(
        versions.insert().values(
            id=version.id,
            org_id=org_id,
            plan_id=plan_id,
            parent_id=version.parent_id,
            number=version.number,
            kind=version.kind,
            description=version.description,
            state=version.state.to_json(),
            created_at=version.created_at,
        )
    )


async def get_version(conn: AsyncConnection, org_id: str, plan_id: str, ref: str) -> Version:
    """A version of the plan, by number (``"7"``) or by id.

    Raises:
        NotFound: the plan has no such version.
    """
    if ref.isascii() and ref.isdigit() and len(ref) <= 12:  # longer: no such version anyway
        where = versions.c.number == int(ref)
    else:
        where = versions.c.id == ref
    row = (
        await conn.execute(
            select(*_COLUMNS).where(
                versions.c.org_id == org_id, versions.c.plan_id == plan_id, where
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"this plan has no version {ref!r}; `plancast log --all` lists them")
    return _version(row)


async def all_versions(conn: AsyncConnection, org_id: str, plan_id: str) -> list[Version]:
    """Every version of the plan, on a branch or not, oldest first."""
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(versions.c.org_id == org_id, versions.c.plan_id == plan_id)
        .order_by(versions.c.number)
    )
    return [_version(row) for row in rows]


async def history(conn: AsyncConnection, org_id: str, plan_id: str, branch: str) -> list[Version]:
    """The versions that lead to the branch head, oldest first."""
    tip = await head(conn, org_id, plan_id, branch)
    rows = await conn.execute(
        select(*_COLUMNS).where(versions.c.org_id == org_id, versions.c.plan_id == plan_id)
    )
    by_id = {v.id: v for v in map(_version, rows)}
    chain: list[Version] = []
    cursor: str | None = tip.id
    while cursor is not None and cursor in by_id:
        chain.append(by_id[cursor])
        cursor = by_id[cursor].parent_id
    return chain[::-1]
