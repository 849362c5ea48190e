"""History in the domain: branches, rewind and undo, what a move asks of the disk, and the plan's
lifecycle (rename, archive, delete), on a real database. The random histories are in
test_history_property.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.domain import (
    branches,
    changes,
    context,
    convo,
    head_moves,
    plans,
    projects,
    versions,
)
from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.server.domain.context import NewItem
from plancast.server.errors import Busy, Conflict, InvalidRequest, NotFound
from plancast.server.store.schema import metadata, orgs, stream_events, usage
from plancast.server.store.schema import plans as plans_table
from plancast.server.streams import records
from plancast.shared import WriteFile

ORG = LOCAL_ORG_ID
OTHER_ORG = "org_other"


@dataclass
class Ctx:
    conn: AsyncConnection
    plan_id: str
    project_id: str

    async def commit(self, branch: str = "main", what: str = "x") -> versions.Version:
        return await versions.commit(
            self.conn,
            ORG,
            self.plan_id,
            branch,
            "test",
            what,
            lambda s: replace(s, messages=(*s.messages, f"msg_{what}")),
        )

    async def head(self, branch: str = "main") -> versions.Version:
        return await versions.head(self.conn, ORG, self.plan_id, branch)

    async def run_stream(self, branch: str, stream_id: str = "st_busy") -> None:
        await records.insert_running(
            self.conn,
            stream_id=stream_id,
            org_id=ORG,
            plan_id=self.plan_id,
            branch=branch,
            mode="tell",
            model="openai/gpt-4.1",
            request_id=f"req_{stream_id}",
            owner="test",
        )


@pytest.fixture
async def ctx(engine: AsyncEngine) -> AsyncIterator[Ctx]:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, ORG, "demo")
        plan = await plans.create_plan(conn, ORG, project.id, None)
        await conn.execute(orgs.insert().values(id=OTHER_ORG, name="other", created_at=0.0))
        yield Ctx(conn, plan.id, project.id)


# -- branch names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["main", "feature-2", "fix_bug", "a", "9lives", "x" * 64])
def test_good_branch_names(name: str) -> None:
    assert branches.check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-rf", "_x", "a/b", "../main", "a b", "é", "x" * 65, "main\n", "a.b"]
)
def test_bad_branch_names_are_refused_with_what_a_name_may_be(name: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        branches.check_name(name)
    assert "letters, digits" in caught.value.message


# -- branches -------------------------------------------------------------------------------


async def test_a_branch_starts_at_the_source_head_and_then_goes_its_own_way(ctx: Ctx) -> None:
    await ctx.commit(what="a")
    made = await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "feature")
    assert made.head_number == 2
    await ctx.commit("feature", "on-feature")
    await ctx.commit("main", "on-main")
    assert (await ctx.head("feature")).state.messages == ("msg_a", "msg_on-feature")
    assert (await ctx.head("main")).state.messages == ("msg_a", "msg_on-main")
    listed = await branches.list_branches(ctx.conn, ORG, ctx.plan_id)
    assert [(b.name, b.head_number, b.stream_id) for b in listed] == [
        ("main", 4, None),
        ("feature", 3, None),
    ]


async def test_a_branch_can_start_at_any_version(ctx: Ctx) -> None:
    first = await ctx.commit(what="a")
    await ctx.commit(what="b")
    by_number = await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "old", at="1")
    by_id = await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "mid", at=first.id)
    assert (by_number.head_number, by_id.head_number) == (1, 2)
    with pytest.raises(NotFound):
        await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "late", at="99")
    with pytest.raises(NotFound):
        await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "nowhere", source="nope")


async def test_branch_names_are_unique_per_plan(ctx: Ctx) -> None:
    await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "feature")
    with pytest.raises(Conflict):
        await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "feature")
    with pytest.raises(Conflict):
        await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "main")
    other = await plans.create_plan(ctx.conn, ORG, ctx.project_id, None)
    await branches.create_branch(ctx.conn, ORG, other.id, "feature")  # another plan: fine


async def test_the_running_stream_is_listed_with_its_branch(ctx: Ctx) -> None:
    await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "feature")
    await ctx.run_stream("feature")
    listed = {b.name: b.stream_id for b in await branches.list_branches(ctx.conn, ORG, ctx.plan_id)}
    assert listed == {"main": None, "feature": "st_busy"}


async def test_deleting_a_branch_keeps_its_versions_and_forgets_its_rewinds(ctx: Ctx) -> None:
    await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "feature")
    only_there = await ctx.commit("feature", "f")
    await ctx.commit("feature", "g")
    await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "feature", "1")
    gone = await branches.delete_branch(ctx.conn, ORG, ctx.plan_id, "feature")
    assert gone.head_number == 1
    assert [b.name for b in await branches.list_branches(ctx.conn, ORG, ctx.plan_id)] == ["main"]
    kept = await versions.get_version(ctx.conn, ORG, ctx.plan_id, str(only_there.number))
    assert kept.id == only_there.id
    assert [v.number for v in await versions.all_versions(ctx.conn, ORG, ctx.plan_id)] == [1, 2, 3]
    # A new branch of the same name starts clean: the old one's rewind is not its to undo.
    await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "feature")
    with pytest.raises(InvalidRequest, match="no rewind to undo"):
        await head_moves.undo(ctx.conn, ORG, ctx.plan_id, "feature")


async def test_main_a_missing_and_a_busy_branch_cannot_be_deleted(ctx: Ctx) -> None:
    with pytest.raises(InvalidRequest, match="cannot be deleted"):
        await branches.delete_branch(ctx.conn, ORG, ctx.plan_id, "main")
    with pytest.raises(NotFound):
        await branches.delete_branch(ctx.conn, ORG, ctx.plan_id, "nope")
    await branches.create_branch(ctx.conn, ORG, ctx.plan_id, "feature")
    await ctx.run_stream("feature")
    with pytest.raises(Busy) as caught:
        await branches.delete_branch(ctx.conn, ORG, ctx.plan_id, "feature")
    assert caught.value.stream_id == "st_busy" and "st_busy" in caught.value.message
    with pytest.raises(NotFound):  # another org's plan: not found, never forbidden
        await branches.delete_branch(ctx.conn, OTHER_ORG, ctx.plan_id, "feature")


# -- rewind and undo ------------------------------------------------------------------------


async def test_rewind_moves_the_head_and_makes_no_version(ctx: Ctx) -> None:
    for what in "abc":
        await ctx.commit(what=what)
    move = await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "2")
    assert (move.kind, move.before.number, move.after.number) == ("rewind", 4, 2)
    assert (await ctx.head()).state.messages == ("msg_a",)
    assert [v.number for v in await versions.all_versions(ctx.conn, ORG, ctx.plan_id)] == [
        1,
        2,
        3,
        4,
    ]
    # The next version is numbered after every version, and grows from the rewound head.
    made = await ctx.commit(what="d")
    assert (made.number, made.state.messages) == (5, ("msg_a", "msg_d"))


async def test_rewind_refusals(ctx: Ctx) -> None:
    await ctx.commit(what="a")
    with pytest.raises(InvalidRequest, match="already at version 2"):
        await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "2")
    for ref in ("3", "0", "ver_unknown", "9" * 40):
        with pytest.raises(NotFound):
            await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", ref)
    with pytest.raises(NotFound):
        await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "nope", "1")
    with pytest.raises(NotFound):
        await head_moves.rewind(ctx.conn, OTHER_ORG, ctx.plan_id, "main", "1")
    await ctx.run_stream("main")
    with pytest.raises(Busy, match="st_busy"):
        await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "1")
    with pytest.raises(Busy, match="st_busy"):
        await head_moves.undo(ctx.conn, ORG, ctx.plan_id, "main")
    assert (await ctx.head()).number == 2


async def test_undo_walks_back_through_rewinds_and_stops_when_the_head_moved(ctx: Ctx) -> None:
    for what in "abcd":
        await ctx.commit(what=what)  # head at 5
    await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "4")
    await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "2")
    back = await head_moves.undo(ctx.conn, ORG, ctx.plan_id, "main")
    assert (back.kind, back.before.number, back.after.number) == ("undo", 2, 4)
    back = await head_moves.undo(ctx.conn, ORG, ctx.plan_id, "main")
    assert (back.before.number, back.after.number) == (4, 5)
    with pytest.raises(InvalidRequest, match="no rewind to undo"):
        await head_moves.undo(ctx.conn, ORG, ctx.plan_id, "main")

    await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "3")
    await ctx.commit(what="e")  # version 6, on top of 3
    with pytest.raises(Conflict) as caught:
        await head_moves.undo(ctx.conn, ORG, ctx.plan_id, "main")
    assert "plancast rewind 5" in caught.value.message and "Nothing is lost" in caught.value.message
    assert (await ctx.head()).number == 6
    # The rewind can still reach where the refused undo would have gone.
    await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "5")
    assert (await ctx.head()).state.messages == ("msg_a", "msg_b", "msg_c", "msg_d")


async def test_moves_of_one_branch_stack_in_order_within_one_clock_tick(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(head_moves, "now", lambda: 1000.0)  # a clock that never moves
    for what in "abc":
        await ctx.commit(what=what)
    await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "3")
    await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "1")
    await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "2")
    numbers = []
    for _ in range(3):
        numbers.append((await head_moves.undo(ctx.conn, ORG, ctx.plan_id, "main")).after.number)
    assert numbers == [1, 3, 4]


async def test_rewind_fails_cleanly_when_the_head_moved_meanwhile(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ctx.commit(what="a")
    real_head = versions.head
    raced = False

    async def stale_head(conn: AsyncConnection, *args: str) -> versions.Version:
        nonlocal raced
        found = await real_head(conn, *args)
        if not raced:  # another writer moves the head right after the rewind read it
            raced = True
            await ctx.commit(what="racer")
        return found

    monkeypatch.setattr(versions, "head", stale_head)
    with pytest.raises(Conflict, match="moved meanwhile"):
        await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "1")
    monkeypatch.undo()
    assert (await ctx.head()).state.messages == ("msg_a", "msg_racer")


async def test_a_move_names_the_files_to_revert_and_to_reapply(ctx: Ctx) -> None:
    ids = await changes.insert_changes(
        ctx.conn, ORG, ctx.plan_id, None, [WriteFile("a.py", "a\n"), WriteFile("b.py", "b\n")]
    )
    await versions.commit(
        ctx.conn,
        ORG,
        ctx.plan_id,
        "main",
        "reply",
        "proposed",
        lambda s: replace(s, changes=tuple((i, "pending") for i in ids)),
    )  # 2
    await changes.set_status(ctx.conn, ORG, ctx.plan_id, "main", "applied", ids=[ids[0]])  # 3
    await changes.set_status(ctx.conn, ORG, ctx.plan_id, "main", "rejected", ids=[ids[1]])  # 4
    move = await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "2")
    work = await head_moves.disk_work(ctx.conn, ORG, ctx.plan_id, move)
    assert (work.revert, work.reapply) == ([(ids[0], "a.py")], [])  # rejected: nothing on disk
    back = await head_moves.undo(ctx.conn, ORG, ctx.plan_id, "main")
    work = await head_moves.disk_work(ctx.conn, ORG, ctx.plan_id, back)
    assert (work.revert, work.reapply) == ([], [(ids[0], "a.py")])
    still = await head_moves.rewind(ctx.conn, ORG, ctx.plan_id, "main", "3")
    assert await head_moves.disk_work(ctx.conn, ORG, ctx.plan_id, still) == head_moves.DiskWork(
        [], []
    )


# -- the plan's lifecycle -------------------------------------------------------------------


async def test_rename_marks_the_name_the_users_and_keeps_names_unique(ctx: Ctx) -> None:
    renamed = await plans.rename_plan(ctx.conn, ORG, ctx.plan_id, "  checkout flow  ")
    assert renamed.name == "checkout flow"
    source = await ctx.conn.scalar(
        select(plans_table.c.name_source).where(plans_table.c.id == ctx.plan_id)
    )
    assert source == "user"
    other = await plans.create_plan(ctx.conn, ORG, ctx.project_id, "other")
    with pytest.raises(Conflict, match="already has a plan named 'checkout flow'"):
        await plans.rename_plan(ctx.conn, ORG, other.id, "checkout flow")
    assert (await plans.rename_plan(ctx.conn, ORG, ctx.plan_id, "checkout flow")).name == (
        "checkout flow"
    )  # its own name again: fine
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(InvalidRequest):
            await plans.rename_plan(ctx.conn, ORG, ctx.plan_id, bad)
    with pytest.raises(NotFound):
        await plans.rename_plan(ctx.conn, OTHER_ORG, ctx.plan_id, "mine now")


async def test_an_archived_plan_is_hidden_from_the_list_but_readable(ctx: Ctx) -> None:
    other = await plans.create_plan(ctx.conn, ORG, ctx.project_id, "other")
    archived = await plans.set_archived(ctx.conn, ORG, ctx.plan_id, True)
    assert archived.archived_at is not None
    again = await plans.set_archived(ctx.conn, ORG, ctx.plan_id, True)
    assert again.archived_at == archived.archived_at  # archiving twice changes nothing more
    listed = await plans.list_plans(ctx.conn, ORG, ctx.project_id)
    assert [p.id for p in listed] == [other.id]
    everything = await plans.list_plans(ctx.conn, ORG, ctx.project_id, archived=True)
    assert [p.id for p in everything] == [ctx.plan_id, other.id]
    assert (await plans.get_plan(ctx.conn, ORG, ctx.plan_id)).archived_at is not None
    await ctx.commit(what="still writable")
    back = await plans.set_archived(ctx.conn, ORG, ctx.plan_id, False)
    assert back.archived_at is None
    assert len(await plans.list_plans(ctx.conn, ORG, ctx.project_id)) == 2
    with pytest.raises(NotFound):
        await plans.set_archived(ctx.conn, OTHER_ORG, ctx.plan_id, True)


async def _fill(ctx: Ctx, plan_id: str, stream_id: str) -> None:
    """One of everything a plan can have, in every table that names a plan."""
    await context.load(ctx.conn, ORG, plan_id, "main", [NewItem("file", "a.py", "a\n")])
    message = await convo.insert_message(
        ctx.conn, ORG, plan_id, role="user", mode="tell", content="hi"
    )
    ids = await changes.insert_changes(ctx.conn, ORG, plan_id, None, [WriteFile("a.py", "b\n")])
    await versions.commit(
        ctx.conn,
        ORG,
        plan_id,
        "main",
        "reply",
        "all",
        lambda s: replace(s, messages=(message.id,), changes=((ids[0], "pending"),)),
    )
    await branches.create_branch(ctx.conn, ORG, plan_id, "feature")
    await head_moves.rewind(ctx.conn, ORG, plan_id, "main", "1")
    await records.insert_running(
        ctx.conn,
        stream_id=stream_id,
        org_id=ORG,
        plan_id=plan_id,
        branch="feature",
        mode="tell",
        model="openai/gpt-4.1",
        request_id=f"req_{stream_id}",
        owner="test",
    )
    await ctx.conn.execute(
        stream_events.insert().values(stream_id=stream_id, seq=1, type="delta", data="{}")
    )
    await ctx.conn.execute(
        usage.insert().values(
            id=f"use_{stream_id}",
            org_id=ORG,
            plan_id=plan_id,
            stream_id=stream_id,
            model="openai/gpt-4.1",
            role="planner",
            input_tokens=1,
            output_tokens=1,
            duration_ms=1,
            created_at=0.0,
        )
    )


async def _rows_of(conn: AsyncConnection, plan_id: str, stream_id: str) -> dict[str, int]:
    """How many rows name the plan, in every table with a plan_id, plus its stream's events."""
    counts = {}
    for table in metadata.sorted_tables:
        column = table.c.get("plan_id") if table.name != "plans" else table.c.id
        if column is not None:
            counts[table.name] = await conn.scalar(
                select(func.count()).select_from(table).where(column == plan_id)
            )
    counts["stream_events"] = await conn.scalar(
        select(func.count())
        .select_from(stream_events)
        .where(stream_events.c.stream_id == stream_id)
    )
    return counts


async def test_deleting_a_plan_deletes_every_row_of_it_and_nothing_else(ctx: Ctx) -> None:
    keep = await plans.create_plan(ctx.conn, ORG, ctx.project_id, "keep")
    await _fill(ctx, ctx.plan_id, "st_doomed")
    await _fill(ctx, keep.id, "st_kept")
    before = await _rows_of(ctx.conn, ctx.plan_id, "st_doomed")
    assert all(before.values()), before  # not vacuous: every table had a row of the plan
    kept = await _rows_of(ctx.conn, keep.id, "st_kept")
    assert {"usage", "head_moves", "stream_events", "versions"} <= set(before)

    with pytest.raises(Busy, match="st_doomed"):
        await plans.delete_plan(ctx.conn, ORG, ctx.plan_id)
    await records.finish(
        ctx.conn, "st_doomed", status="finished", last_seq=1, error_code=None, error_message=None
    )
    with pytest.raises(NotFound):
        await plans.delete_plan(ctx.conn, OTHER_ORG, ctx.plan_id)
    gone = await plans.delete_plan(ctx.conn, ORG, ctx.plan_id)
    assert gone.id == ctx.plan_id
    assert set((await _rows_of(ctx.conn, ctx.plan_id, "st_doomed")).values()) == {0}
    assert await _rows_of(ctx.conn, keep.id, "st_kept") == kept  # the other plan is whole
    with pytest.raises(NotFound):
        await plans.get_plan(ctx.conn, ORG, ctx.plan_id)
