"""The domain: projects, plans, versions, context, changes and the conversation, on a real DB."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.domain import changes, context, convo, plans, projects, versions
from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.server.domain.context import NewItem
from plancast.server.domain.principal import Action, Principal, Role, authorize
from plancast.server.errors import Conflict, Forbidden, InvalidRequest, NotFound
from plancast.server.store.schema import orgs
from plancast.server.streams import records
from plancast.shared import EditFile, UnsafePathError, WriteFile

ORG = LOCAL_ORG_ID
OTHER_ORG = "org_other"


@dataclass
class Ctx:
    """An open transaction and a plan in it."""

    conn: AsyncConnection
    plan_id: str
    project_id: str

    async def numbers(self) -> list[int]:
        return [v.number for v in await versions.history(self.conn, ORG, self.plan_id, "main")]

    async def head(self) -> versions.Version:
        return await versions.head(self.conn, ORG, self.plan_id, "main")

    async def load(self, *items: tuple[str, str, str]) -> context.LoadResult:
        new = [NewItem(kind, name, content) for kind, name, content in items]
        return await context.load(self.conn, ORG, self.plan_id, "main", new)

    async def names(self) -> list[str]:
        return [i.name for i in await context.list_items(self.conn, ORG, self.plan_id, "main")]


@pytest.fixture
async def ctx(engine: AsyncEngine) -> AsyncIterator[Ctx]:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, ORG, "demo")
        plan = await plans.create_plan(conn, ORG, project.id, None)
        await conn.execute(orgs.insert().values(id=OTHER_ORG, name="other", created_at=0.0))
        yield Ctx(conn, plan.id, project.id)


# -- projects and plans ---------------------------------------------------------------------


async def test_projects_are_listed_in_creation_order(ctx: Ctx) -> None:
    second = await projects.create_project(ctx.conn, ORG, "  second  ")
    found = await projects.list_projects(ctx.conn, ORG)
    assert [p.id for p in found] == [ctx.project_id, second.id]
    assert found[1].name == "second"


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_a_project_needs_a_sensible_name(ctx: Ctx, name: str) -> None:
    with pytest.raises(InvalidRequest):
        await projects.create_project(ctx.conn, ORG, name)


async def test_plans_get_default_names_and_unique_names(ctx: Ctx) -> None:
    first = await plans.get_plan(ctx.conn, ORG, ctx.plan_id)
    assert first.name == "plan-1"
    second = await plans.create_plan(ctx.conn, ORG, ctx.project_id, None)
    assert second.name == "plan-2"
    await plans.create_plan(ctx.conn, ORG, ctx.project_id, "feature")
    with pytest.raises(Conflict):
        await plans.create_plan(ctx.conn, ORG, ctx.project_id, "feature")
    # The failed insert was rolled back on its own; the transaction goes on.
    listed = await plans.list_plans(ctx.conn, ORG, ctx.project_id)
    assert [p.name for p in listed] == ["plan-1", "plan-2", "feature"]


async def test_a_new_plan_has_version_one_on_main(ctx: Ctx) -> None:
    head = await ctx.head()
    assert (head.number, head.kind, head.parent_id) == (1, "create", None)
    assert head.state == versions.PlanState()
    assert await plans.list_branches(ctx.conn, ORG, ctx.plan_id) == ["main"]


# -- versions -------------------------------------------------------------------------------


async def test_versions_are_numbered_one_to_n_along_their_parents(ctx: Ctx) -> None:
    made = []
    for n in range(5):
        made.append(
            await versions.commit(ctx.conn, ORG, ctx.plan_id, "main", "test", f"v{n}", lambda s: s)
        )
    history = await versions.history(ctx.conn, ORG, ctx.plan_id, "main")
    assert [v.number for v in history] == [1, 2, 3, 4, 5, 6]
    assert [v.parent_id for v in history[1:]] == [v.id for v in history[:-1]]
    assert (await ctx.head()).id == made[-1].id


async def test_commit_builds_the_new_state_from_the_head(ctx: Ctx) -> None:
    await versions.commit(
        ctx.conn,
        ORG,
        ctx.plan_id,
        "main",
        "test",
        "add",
        lambda s: replace(s, messages=(*s.messages, "msg_a")),
    )
    await versions.commit(
        ctx.conn,
        ORG,
        ctx.plan_id,
        "main",
        "test",
        "add",
        lambda s: replace(s, messages=(*s.messages, "msg_b")),
    )
    assert (await ctx.head()).state.messages == ("msg_a", "msg_b")
    # Old versions keep their own state: nothing is edited in place.
    history = await versions.history(ctx.conn, ORG, ctx.plan_id, "main")
    assert [v.state.messages for v in history] == [(), ("msg_a",), ("msg_a", "msg_b")]


async def test_commit_on_an_unknown_branch_is_not_found(ctx: Ctx) -> None:
    with pytest.raises(NotFound):
        await versions.commit(ctx.conn, ORG, ctx.plan_id, "nope", "test", "x", lambda s: s)


def test_plan_state_round_trips_through_json() -> None:
    state = versions.PlanState(("ctx_1",), ("msg_1", "msg_2"), (("chg_1", "pending"),))
    assert versions.PlanState.from_json(state.to_json()) == state
    moved = state.with_change_status({"chg_1"}, "applied")
    assert moved.changes == (("chg_1", "applied"),)


# -- context --------------------------------------------------------------------------------


async def test_loading_context_adds_items_in_one_version(ctx: Ctx) -> None:
    result = await ctx.load(("file", "src/a.py", "a = 1\n"), ("file", "src/b.py", "b = 2\n"))
    assert result.added == ["src/a.py", "src/b.py"]
    assert (result.updated, result.unchanged, result.version) == ([], [], 2)
    assert await ctx.names() == ["src/a.py", "src/b.py"]
    assert await ctx.numbers() == [1, 2]
    items = await context.list_items(ctx.conn, ORG, ctx.plan_id, "main", with_content=True)
    assert [i.content for i in items] == ["a = 1\n", "b = 2\n"]
    assert all(i.tokens > 0 and len(i.sha256) == 64 for i in items)


async def test_loading_a_changed_file_replaces_it_in_place(ctx: Ctx) -> None:
    await ctx.load(("file", "a.py", "one\n"), ("file", "b.py", "two\n"))
    old_ids = {i.name: i.id for i in await context.list_items(ctx.conn, ORG, ctx.plan_id, "main")}
    result = await ctx.load(("file", "a.py", "one\n"), ("file", "b.py", "TWO\n"))
    assert (result.added, result.updated, result.unchanged) == ([], ["b.py"], ["a.py"])
    assert result.version == 3
    items = await context.list_items(ctx.conn, ORG, ctx.plan_id, "main", with_content=True)
    assert [(i.name, i.content) for i in items] == [("a.py", "one\n"), ("b.py", "TWO\n")]
    assert items[0].id == old_ids["a.py"] and items[1].id != old_ids["b.py"]


async def test_loading_unchanged_files_makes_no_version(ctx: Ctx) -> None:
    await ctx.load(("file", "a.py", "one\n"))
    result = await ctx.load(("file", "a.py", "one\n"))
    assert (result.added, result.updated, result.unchanged) == ([], [], ["a.py"])
    assert result.version is None
    assert await ctx.numbers() == [1, 2]


async def test_file_paths_are_normalised_so_a_reload_matches(ctx: Ctx) -> None:
    await ctx.load(("file", "./src//a.py", "x\n"))
    result = await ctx.load(("file", "src\\a.py", "x\n"))
    assert result.unchanged == ["src/a.py"]
    assert await ctx.names() == ["src/a.py"]


async def test_notes_are_kept_beside_files(ctx: Ctx) -> None:
    result = await ctx.load(("note", "todo", "remember this"), ("stdin", "piped", "log output"))
    assert result.added == ["todo", "piped"]
    kinds = [i.kind for i in await context.list_items(ctx.conn, ORG, ctx.plan_id, "main")]
    assert kinds == ["note", "stdin"]


@pytest.mark.parametrize(
    "path", ["../x.py", "/etc/passwd", "C:/x.py", "a/../../b", ".git/config", "", "a\x00b"]
)
def test_an_unsafe_file_path_cannot_be_loaded(path: str) -> None:
    with pytest.raises(UnsafePathError):
        NewItem("file", path, "content")


@pytest.mark.parametrize(("kind", "name"), [("binary", "a"), ("note", "  ")])
def test_an_item_needs_a_known_kind_and_a_name(kind: str, name: str) -> None:
    with pytest.raises(InvalidRequest):
        NewItem(kind, name, "content")


@pytest.mark.parametrize(
    ("patterns", "removed", "left"),
    [
        (["src/a.py"], ["src/a.py"], ["src/b.py", "src/sub/c.py", "docs/x.md", "README.md"]),
        (["src"], ["src/a.py", "src/b.py", "src/sub/c.py"], ["docs/x.md", "README.md"]),
        (["src/sub/"], ["src/sub/c.py"], ["src/a.py", "src/b.py", "docs/x.md", "README.md"]),
        (["*.md"], ["docs/x.md", "README.md"], ["src/a.py", "src/b.py", "src/sub/c.py"]),
        (
            ["docs/*.md", "src/b.py"],
            ["src/b.py", "docs/x.md"],
            ["src/a.py", "src/sub/c.py", "README.md"],
        ),
        (None, ["src/a.py", "src/b.py", "src/sub/c.py", "docs/x.md", "README.md"], []),
    ],
)
async def test_removing_context_by_path_folder_or_glob(
    ctx: Ctx, patterns: list[str] | None, removed: list[str], left: list[str]
) -> None:
    files = ["src/a.py", "src/b.py", "src/sub/c.py", "docs/x.md", "README.md"]
    await ctx.load(*[("file", f, f"# {f}\n") for f in files])
    assert await context.remove(ctx.conn, ORG, ctx.plan_id, "main", patterns) == removed
    assert await ctx.names() == left
    assert await ctx.numbers() == [1, 2, 3]


async def test_removing_nothing_makes_no_version(ctx: Ctx) -> None:
    await ctx.load(("file", "a.py", "x\n"))
    assert await context.remove(ctx.conn, ORG, ctx.plan_id, "main", ["b.py", "src"]) == []
    assert await ctx.numbers() == [1, 2]


# -- changes --------------------------------------------------------------------------------

OPS = [
    WriteFile("src/app.py", "print(1)\n"),
    EditFile("README.md", "old\n", "new\n"),
    WriteFile("src/util.py", "x = 1\n"),
]


async def _propose(ctx: Ctx) -> list[str]:
    ids = await changes.insert_changes(ctx.conn, ORG, ctx.plan_id, None, OPS)
    await versions.commit(
        ctx.conn,
        ORG,
        ctx.plan_id,
        "main",
        "reply",
        "proposed",
        lambda s: replace(s, changes=s.changes + tuple((i, "pending") for i in ids)),
    )
    return ids


async def test_proposed_changes_are_listed_pending_in_order(ctx: Ctx) -> None:
    ids = await _propose(ctx)
    pending = await changes.list_changes(ctx.conn, ORG, ctx.plan_id, "main")
    assert [c.id for c in pending] == ids
    assert [c.op for c in pending] == OPS
    assert [c.position for c in pending] == [0, 1, 2]
    assert {c.status for c in pending} == {"pending"}


async def test_status_transitions_make_versions(ctx: Ctx) -> None:
    ids = await _propose(ctx)
    applied = await changes.set_status(
        ctx.conn, ORG, ctx.plan_id, "main", "applied", paths=["src/app.py"]
    )
    assert [c.id for c in applied] == [ids[0]]
    head = await ctx.head()
    assert (head.number, head.kind) == (3, "apply")
    rejected = await changes.set_status(
        ctx.conn, ORG, ctx.plan_id, "main", "rejected", ids=[ids[1]]
    )
    assert [c.id for c in rejected] == [ids[1]]
    assert (await ctx.head()).kind == "reject"

    def listed(status: str | None) -> Awaitable[list[changes.Change]]:
        return changes.list_changes(ctx.conn, ORG, ctx.plan_id, "main", status=status)

    assert [c.id for c in await listed("pending")] == [ids[2]]
    assert [c.id for c in await listed("applied")] == [ids[0]]
    assert [c.id for c in await listed("rejected")] == [ids[1]]
    assert [(c.id, c.status) for c in await listed(None)] == [
        (ids[0], "applied"),
        (ids[1], "rejected"),
        (ids[2], "pending"),
    ]
    # The earlier version still has them all pending: status lives in the version.
    history = await versions.history(ctx.conn, ORG, ctx.plan_id, "main")
    assert {s for _, s in history[1].state.changes} == {"pending"}


async def test_applying_all_then_again_moves_nothing(ctx: Ctx) -> None:
    await _propose(ctx)
    moved = await changes.set_status(ctx.conn, ORG, ctx.plan_id, "main", "applied")
    assert len(moved) == 3
    numbers = await ctx.numbers()
    assert await changes.set_status(ctx.conn, ORG, ctx.plan_id, "main", "applied") == []
    assert await ctx.numbers() == numbers


async def test_changes_that_are_not_pending_cannot_be_chosen_by_id(ctx: Ctx) -> None:
    ids = await _propose(ctx)
    await changes.set_status(ctx.conn, ORG, ctx.plan_id, "main", "rejected", ids=[ids[0]])
    with pytest.raises(InvalidRequest, match=ids[0]):
        await changes.set_status(ctx.conn, ORG, ctx.plan_id, "main", "applied", ids=[ids[0]])
    with pytest.raises(InvalidRequest):
        await changes.set_status(ctx.conn, ORG, ctx.plan_id, "main", "applied", ids=["chg_nope"])


async def test_a_change_status_must_be_applied_or_rejected(ctx: Ctx) -> None:
    await _propose(ctx)
    with pytest.raises(InvalidRequest):
        await changes.set_status(ctx.conn, ORG, ctx.plan_id, "main", "pending")


# -- the conversation -----------------------------------------------------------------------


async def test_messages_join_the_conversation_through_a_version(ctx: Ctx) -> None:
    first = await convo.insert_message(
        ctx.conn, ORG, ctx.plan_id, role="user", mode="tell", content="do it"
    )
    second = await convo.insert_message(
        ctx.conn, ORG, ctx.plan_id, role="assistant", mode="tell", content="ok", status="partial"
    )
    # Written but not in any version yet: not part of the conversation.
    assert await convo.list_messages(ctx.conn, ORG, ctx.plan_id, "main") == []
    await versions.commit(
        ctx.conn,
        ORG,
        ctx.plan_id,
        "main",
        "prompt",
        "x",
        lambda s: replace(s, messages=(first.id, second.id)),
    )
    found = await convo.list_messages(ctx.conn, ORG, ctx.plan_id, "main")
    assert found == [first, second]
    assert [(m.role, m.status) for m in found] == [("user", "complete"), ("assistant", "partial")]


# -- tenancy --------------------------------------------------------------------------------

Probe = Callable[[Ctx], Awaitable[Any]]

PROBES: dict[str, Probe] = {
    "get_project": lambda c: projects.get_project(c.conn, OTHER_ORG, c.project_id),
    "get_plan": lambda c: plans.get_plan(c.conn, OTHER_ORG, c.plan_id),
    "list_plans": lambda c: plans.list_plans(c.conn, OTHER_ORG, c.project_id),
    "create_plan": lambda c: plans.create_plan(c.conn, OTHER_ORG, c.project_id, "mine"),
    "head": lambda c: versions.head(c.conn, OTHER_ORG, c.plan_id, "main"),
    "history": lambda c: versions.history(c.conn, OTHER_ORG, c.plan_id, "main"),
    "commit": lambda c: versions.commit(
        c.conn, OTHER_ORG, c.plan_id, "main", "x", "x", lambda s: s
    ),
    "list_context": lambda c: context.list_items(c.conn, OTHER_ORG, c.plan_id, "main"),
    "load_context": lambda c: context.load(
        c.conn, OTHER_ORG, c.plan_id, "main", [NewItem("file", "a.py", "x")]
    ),
    "remove_context": lambda c: context.remove(c.conn, OTHER_ORG, c.plan_id, "main", None),
    "list_changes": lambda c: changes.list_changes(c.conn, OTHER_ORG, c.plan_id, "main"),
    "set_status": lambda c: changes.set_status(c.conn, OTHER_ORG, c.plan_id, "main", "applied"),
    "list_messages": lambda c: convo.list_messages(c.conn, OTHER_ORG, c.plan_id, "main"),
}


@pytest.mark.parametrize("probe", PROBES.values(), ids=PROBES.keys())
async def test_another_orgs_objects_are_not_found(ctx: Ctx, probe: Probe) -> None:
    await ctx.load(("file", "a.py", "mine\n"))
    before = await ctx.numbers()
    with pytest.raises(NotFound):
        await probe(ctx)
    assert await ctx.numbers() == before


async def test_another_org_sees_no_projects_and_no_content(ctx: Ctx) -> None:
    await ctx.load(("file", "a.py", "mine\n"))
    assert await projects.list_projects(ctx.conn, OTHER_ORG) == []
    # Even with ids in hand, content rows are filtered by org.
    ids = (await ctx.head()).state.context
    assert await context._items(ctx.conn, OTHER_ORG, ids, True) == []


async def test_another_orgs_stream_is_not_found(ctx: Ctx) -> None:
    await records.insert_running(
        ctx.conn,
        stream_id="st_mine",
        org_id=ORG,
        plan_id=ctx.plan_id,
        branch="main",
        mode="tell",
        model="openai/gpt-4.1",
        request_id="r1",
        owner="rep",
    )
    assert (await records.get(ctx.conn, ORG, "st_mine")).status == "running"
    with pytest.raises(NotFound):
        await records.get(ctx.conn, OTHER_ORG, "st_mine")
    assert await records.by_request_id(ctx.conn, OTHER_ORG, "r1") is None
    assert await records.list_for_plan(ctx.conn, OTHER_ORG, ctx.plan_id) == []


# -- the policy layer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        (Role.OWNER, Action.DELETE_ORG, True),
        (Role.OWNER, Action.MANAGE_OWNERS, True),
        (Role.ADMIN, Action.MANAGE_MEMBERS, True),
        (Role.ADMIN, Action.MANAGE_OWNERS, False),
        (Role.ADMIN, Action.DELETE_ORG, False),
        (Role.MEMBER, Action.READ, True),
        (Role.MEMBER, Action.WRITE, True),
        (Role.MEMBER, Action.INVITE, False),
        (Role.MEMBER, Action.SEE_ORG_USAGE, False),
    ],
)
def test_authorize_follows_the_role_table(role: Role, action: Action, allowed: bool) -> None:
    principal = Principal("usr_x", ORG, role)
    if allowed:
        authorize(principal, action)
    else:
        with pytest.raises(Forbidden):
            authorize(principal, action)
