"""Plan context: the files, notes and piped text the user chose to send.

The server never reads the user's files (DESIGN invariant 5): every item here
arrived in a request from the client. Loading a path that is already in the
context replaces it when its content changed and is a no-op otherwise.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain import versions
from plancast.server.domain.ids import new_id, now
from plancast.server.errors import InvalidRequest
from plancast.server.store.schema import context_items
from plancast.shared import check_relative_path

KINDS = ("file", "note", "stdin", "tree", "url")


def estimate_tokens(text: str) -> int:
    """A provider-neutral estimate (about 4 characters a token) that needs no download."""
    return (len(text) + 3) // 4


@dataclass(frozen=True, slots=True)
class NewItem:
    kind: str
    name: str
    content: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidRequest(f"context kind must be one of {', '.join(KINDS)}")
        if self.kind == "file":
            object.__setattr__(self, "name", check_relative_path(self.name))
        elif not self.name.strip():
            raise InvalidRequest(f"a {self.kind} needs a name")


@dataclass(frozen=True, slots=True)
class ContextItem:
    id: str
    kind: str
    name: str
    sha256: str
    tokens: int
    created_at: float
    content: str | None = None


@dataclass(frozen=True, slots=True)
class LoadResult:
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    version: int | None


async def list_items(
    conn: AsyncConnection, org_id: str, plan_id: str, branch: str, *, with_content: bool = False
) -> list[ContextItem]:
    state = (await versions.head(conn, org_id, plan_id, branch)).state
    return await _items(conn, org_id, state.context, with_content)


async def _items(
    conn: AsyncConnection, org_id: str, ids: Sequence[str], with_content: bool
) -> list[ContextItem]:
    if not ids:
        return []
    cols = [
        context_items.c.id,
        context_items.c.kind,
        context_items.c.name,
        context_items.c.sha256,
        context_items.c.tokens,
        context_items.c.created_at,
    ]
    if with_content:
        cols.append(context_items.c.content)
    rows = await conn.execute(
        select(*cols).where(context_items.c.org_id == org_id, context_items.c.id.in_(list(ids)))
    )
    by_id = {row[0]: ContextItem(*row) for row in rows}
    return [by_id[i] for i in ids if i in by_id]


async def load(
    conn: AsyncConnection, org_id: str, plan_id: str, branch: str, items: Sequence[NewItem]
) -> LoadResult:
    """Add or refresh items in one new version (none when nothing changed)."""
    current = {
        (item.kind, item.name): item for item in await list_items(conn, org_id, plan_id, branch)
    }
    added: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    replaced: dict[str, str] = {}
    fresh: list[str] = []
    at = now()
    for item in items:
        digest = hashlib.sha256(item.content.encode("utf-8", "surrogatepass")).hexdigest()
        # An item with the same kind and name is replaced (a file, a tree, a URL,
        # stdin); notes are each their own item, however they are named.
        old = current.get((item.kind, item.name)) if item.kind != "note" else None
        if old is not None and old.sha256 == digest:
            unchanged.append(item.name)
            continue
        item_id = new_id("ctx")
        await conn.execute(
            context_items.insert().values(
                id=item_id,
                org_id=org_id,
                plan_id=plan_id,
                kind=item.kind,
                name=item.name,
                content=item.content,
                sha256=digest,
                tokens=estimate_tokens(item.content),
                created_at=at,
            )
        )
        if old is not None:
            replaced[old.id] = item_id
            updated.append(item.name)
        else:
            fresh.append(item_id)
            added.append(item.name)
    if not added and not updated:
        return LoadResult(added, updated, unchanged, None)

    def mutate(state: versions.PlanState) -> versions.PlanState:
        kept = tuple(replaced.get(i, i) for i in state.context)
        return replace(state, context=kept + tuple(fresh))

    what = ", ".join((added + updated)[:3]) + (" …" if len(added) + len(updated) > 3 else "")
    version = await versions.commit(
        conn, org_id, plan_id, branch, "context", f"loaded {what}", mutate
    )
    return LoadResult(added, updated, unchanged, version.number)


def _matches(name: str, pattern: str, exact_names: set[str]) -> bool:
    """A pattern names an item exactly, else a folder of items, else is a glob.

    An exact name wins: ``web/[id].tsx`` removes that file, not ``web/i.tsx``.
    """
    pattern = pattern.strip()
    if pattern in ("", "."):
        return True
    if pattern in exact_names:
        return name == pattern
    base = pattern.rstrip("/")
    if "://" in pattern:  # a URL is only ever itself
        return name == pattern
    return name.startswith(base + "/") or fnmatch.fnmatchcase(name, pattern)


async def remove(
    conn: AsyncConnection, org_id: str, plan_id: str, branch: str, patterns: Sequence[str] | None
) -> list[str]:
    """Drop the items whose name matches (a path, a folder, or a glob); all when None."""
    items = await list_items(conn, org_id, plan_id, branch)
    names = {i.name for i in items}
    doomed = [
        i for i in items if patterns is None or any(_matches(i.name, p, names) for p in patterns)
    ]
    if not doomed:
        return []
    ids = {i.id for i in doomed}

    def mutate(state: versions.PlanState) -> versions.PlanState:
        return replace(state, context=tuple(i for i in state.context if i not in ids))

    what = "all context" if patterns is None else f"removed {len(doomed)} item(s)"
    await versions.commit(conn, org_id, plan_id, branch, "context", what, mutate)
    return [i.name for i in doomed]
