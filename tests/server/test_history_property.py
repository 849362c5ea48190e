"""Random histories against a model: commit, rewind, undo, branches and streams, on a real database.

Each example is a sequence of operations, run through the real domain functions (one
transaction each, as a route runs them) on a fresh copy of the migrated database (a SQLite file,
or a PostgreSQL database made from the cluster's template), and through a
small Python model of DESIGN invariant 4. After every operation the two must agree:

- each branch's head has the model's number and state, and the branches are the model's;
- the set of versions never shrinks, and every version stays reachable by number and by id;
- an undo puts the head exactly where the rewind it reverses found it;
- each refusal (already there, nothing to undo, head moved, busy branch, main, unknown) is
  the error the model expects, and changes nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.domain import branches, head_moves, plans, projects, versions
from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.server.errors import Busy, Conflict, InvalidRequest, NotFound
from plancast.server.store.database import create_engine
from plancast.server.streams import records
from tests import pg
from tests.pg import database_url

ORG = LOCAL_ORG_ID
NAMES = ("main", "b1", "b2", "b3")
HISTORIES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# An operation is a tuple: its name, then small integers that pick among what exists.
OPERATIONS = st.one_of(
    st.tuples(st.just("commit"), st.integers(0, 3)),
    st.tuples(st.just("rewind"), st.integers(0, 3), st.integers(0, 40), st.booleans()),
    st.tuples(st.just("undo"), st.integers(0, 3)),
    st.tuples(st.just("create"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.integers(0, 3)),
    st.tuples(st.just("start"), st.integers(0, 3)),
    st.tuples(st.just("end"), st.integers(0, 3)),
)


@dataclass
class Model:
    """What the plan's history must be: versions by number, heads, each branch's undo stack."""

    states: dict[int, tuple[str, ...]] = field(default_factory=lambda: {1: ()})
    heads: dict[str, int] = field(default_factory=lambda: {"main": 1})
    rewinds: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: {"main": []})
    running: dict[str, str] = field(default_factory=dict)  # branch → stream id


@dataclass
class Run:
    engine: AsyncEngine
    plan_id: str
    model: Model = field(default_factory=Model)
    ids: dict[int, str] = field(default_factory=dict)  # version number → id, as first seen
    streams: int = 0

    def branch(self, pick: int) -> str:
        existing = sorted(self.model.heads)
        return existing[pick % len(existing)]

    async def step(self, op: tuple[Any, ...]) -> None:
        handler = getattr(self, f"_{op[0]}")
        async with self.engine.begin() as conn:
            await handler(conn, *op[1:])

    async def _commit(self, conn: AsyncConnection, pick: int) -> None:
        branch, m = self.branch(pick), self.model
        number = max(m.states) + 1
        made = await versions.commit(
            conn,
            ORG,
            self.plan_id,
            branch,
            "test",
            f"v{number}",
            lambda s: replace(s, messages=(*s.messages, f"msg_{number}")),
        )
        assert made.number == number
        m.states[number] = (*m.states[m.heads[branch]], f"msg_{number}")
        m.heads[branch] = number

    async def _rewind(self, conn: AsyncConnection, pick: int, target: int, by_id: bool) -> None:
        branch, m = self.branch(pick), self.model
        number = target % (max(m.states) + 2) + 1  # now and then one past the newest
        ref = self.ids[number] if by_id and number in self.ids else str(number)
        expected: type[Exception] | None = None
        if number not in m.states:
            expected = NotFound
        elif branch in m.running:
            expected = Busy
        elif m.heads[branch] == number:
            expected = InvalidRequest
        if expected is not None:
            with pytest.raises(expected):
                await head_moves.rewind(conn, ORG, self.plan_id, branch, ref)
            return
        move = await head_moves.rewind(conn, ORG, self.plan_id, branch, ref)
        assert (move.before.number, move.after.number) == (m.heads[branch], number)
        m.rewinds[branch].append((m.heads[branch], number))
        m.heads[branch] = number

    async def _undo(self, conn: AsyncConnection, pick: int) -> None:
        branch, m = self.branch(pick), self.model
        stack = m.rewinds[branch]
        expected: type[Exception] | None = None
        if branch in m.running:
            expected = Busy
        elif not stack:
            expected = InvalidRequest
        elif stack[-1][1] != m.heads[branch]:
            expected = Conflict
        if expected is not None:
            with pytest.raises(expected) as caught:
                await head_moves.undo(conn, ORG, self.plan_id, branch)
            if expected is Conflict:  # says that nothing is lost and how to get there
                assert f"plancast rewind {stack[-1][0]}" in caught.value.message
            return
        before, after = stack.pop()
        move = await head_moves.undo(conn, ORG, self.plan_id, branch)
        assert (move.kind, move.before.number, move.after.number) == ("undo", after, before)
        m.heads[branch] = before  # exactly where the rewind found it

    async def _create(self, conn: AsyncConnection, source_pick: int, name_pick: int) -> None:
        source, name, m = self.branch(source_pick), NAMES[name_pick], self.model
        if name in m.heads:
            with pytest.raises(Conflict):
                await branches.create_branch(conn, ORG, self.plan_id, name, source=source)
            return
        made = await branches.create_branch(conn, ORG, self.plan_id, name, source=source)
        assert made.head_number == m.heads[source]
        m.heads[name] = m.heads[source]
        m.rewinds[name] = []

    async def _delete(self, conn: AsyncConnection, name_pick: int) -> None:
        name, m = NAMES[name_pick], self.model
        expected: type[Exception] | None = None
        if name == "main":
            expected = InvalidRequest
        elif name not in m.heads:
            expected = NotFound
        elif name in m.running:
            expected = Busy
        if expected is not None:
            with pytest.raises(expected):
                await branches.delete_branch(conn, ORG, self.plan_id, name)
            return
        await branches.delete_branch(conn, ORG, self.plan_id, name)
        del m.heads[name], m.rewinds[name]

    async def _start(self, conn: AsyncConnection, pick: int) -> None:
        branch, m = self.branch(pick), self.model
        self.streams += 1
        stream_id = f"st_{self.streams}"
        kwargs = dict(
            stream_id=stream_id,
            org_id=ORG,
            plan_id=self.plan_id,
            branch=branch,
            mode="tell",
            model="openai/gpt-4.1",
            request_id=f"req_{self.streams}",
            owner="test",
        )
        if branch in m.running:
            with pytest.raises(Busy):
                await records.insert_running(conn, **kwargs)
            return
        await records.insert_running(conn, **kwargs)
        m.running[branch] = stream_id

    async def _end(self, conn: AsyncConnection, pick: int) -> None:
        branch = self.branch(pick)
        stream_id = self.model.running.pop(branch, None)
        if stream_id is not None:
            await records.finish(
                conn, stream_id, status="finished", last_seq=0, error_code=None, error_message=None
            )

    async def check(self) -> None:
        """The database and the model agree (the module docstring's list)."""
        m = self.model
        async with self.engine.connect() as conn:
            listed = await branches.list_branches(conn, ORG, self.plan_id)
            assert {b.name: b.head_number for b in listed} == m.heads
            assert {b.name: b.stream_id for b in listed if b.stream_id} == m.running
            for name, number in m.heads.items():
                head = await versions.head(conn, ORG, self.plan_id, name)
                assert (head.number, head.state.messages) == (number, m.states[number])
                chain = await versions.history(conn, ORG, self.plan_id, name)
                assert chain[0].number == 1 and chain[-1].id == head.id
            every = await versions.all_versions(conn, ORG, self.plan_id)
            assert [v.number for v in every] == sorted(m.states)  # never shrinks
            for version in every:
                assert version.state.messages == m.states[version.number]
                assert self.ids.setdefault(version.number, version.id) == version.id
                by_number = await versions.get_version(conn, ORG, self.plan_id, str(version.number))
                by_id = await versions.get_version(conn, ORG, self.plan_id, version.id)
                assert by_number == by_id == version


async def _play(template: Path, ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        shutil.copyfile(template, Path(folder) / "plancast.db")  # SQLite's; PostgreSQL: unused
        engine = create_engine(database_url(Path(folder)))
        try:
            async with engine.begin() as conn:
                project = await projects.create_project(conn, ORG, "demo")
                plan = await plans.create_plan(conn, ORG, project.id, None)
            run = Run(engine, plan.id)
            await run.check()
            for op in ops:
                await run.step(op)
                await run.check()
        finally:
            await engine.dispose()
            pg.forget(Path(folder))  # each example's database goes with it


@HISTORIES
@given(ops=st.lists(OPERATIONS, max_size=30))
def test_random_histories_agree_with_the_model(
    template_db: Path, ops: list[tuple[Any, ...]]
) -> None:
    asyncio.run(_play(template_db, ops))


def test_the_model_sees_a_rewind_undone_across_branches(template_db: Path) -> None:
    """One history spelled out, so that the property's main path is known to be exercised."""
    ops: list[tuple[Any, ...]] = [
        ("commit", 0),
        ("commit", 0),
        ("commit", 0),  # main at 4
        ("rewind", 0, 1, False),  # main → 2
        ("create", 0, 1),  # b1 at 2
        ("commit", 0),  # b1 → 5 (branch(0) of [b1, main] is b1)
        ("rewind", 1, 0, True),  # main → 1, by id
        ("undo", 1),  # main → 2
        ("undo", 1),  # main → 4
        ("undo", 1),  # nothing left: InvalidRequest
        ("start", 0),
        ("rewind", 0, 2, False),  # b1 busy
        ("delete", 1),  # b1 busy
        ("end", 0),
        ("delete", 1),
    ]
    asyncio.run(_play(template_db, ops))
