"""Server builds: a reply's changes built as it streams, rebuilt by the builder, and stored."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.domain import changes, plans, projects, versions
from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.server.domain.context import ContextItem
from plancast.server.errors import InvalidRequest
from plancast.server.streams.builds import (
    BUILDER_SYSTEM,
    BuildNote,
    BuiltChange,
    RebuildRequest,
    ReplyBuild,
    context_files,
    extract_file,
    proposal_text,
    rebuild_messages,
)
from plancast.server.streams.live import LiveStream
from plancast.server.streams.outcome import record_reply
from plancast.server.web.rest.changes import _change
from plancast.shared import (
    DeleteFile,
    EditFile,
    FileOp,
    MoveFile,
    OpParsed,
    PlancastError,
    ReplyParser,
    WriteFile,
)

PY = "import os\n\n\ndef main():\n    return os.getcwd()\n"
FIXED = "import os\n\n\ndef main():\n    return os.getcwd() or '.'\n"
BAD_EDIT = EditFile("src/app.py", "    return cwd\n", "    return cwd or '.'\n")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_reply(path: str, text: str) -> str:
    return f'Here it is.\n<pc:file path="{path}">\n{text}</pc:file>\n'


@dataclass
class FakeBuilder:
    """A builder model: its replies (or exceptions) in order, and the requests it got."""

    replies: list[str | BaseException]

    def __post_init__(self) -> None:
        self.requests: list[RebuildRequest] = []

    async def __call__(self, request: RebuildRequest) -> str:
        self.requests.append(request)
        await asyncio.sleep(0)
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply


def build_of(context: dict[str, str], *ops: FileOp) -> tuple[ReplyBuild, list[BuildNote | None]]:
    build = ReplyBuild(context)
    notes = [build.add(f"chg_{n}", op) for n, op in enumerate(ops)]
    return build, notes


# -- as the reply streams ---------------------------------------------------------------------


def test_each_change_is_built_as_it_arrives() -> None:
    build, notes = build_of(
        {"src/app.py": PY},
        EditFile("src/app.py", "import os\n", "import os\nimport sys\n"),
        EditFile("src/app.py", "return os.getcwd()\n", "return sys.argv[0]\n"),
        WriteFile("docs/new.md", "# New\n"),
        EditFile("src/other.py", "x\n", "y\n"),
        EditFile("src/other.py", "y\n", "z\n"),
        DeleteFile("src/app.py"),
        MoveFile("docs/new.md", "docs/moved.md"),
    )
    assert len(build) == 7
    assert notes == [
        BuildNote("built", "built src/app.py (exact)"),
        BuildNote("built", "built src/app.py (whitespace)"),
        BuildNote("built", "built docs/new.md (new)"),
        BuildNote(
            "unbuilt",
            "src/other.py is not in the plan's context; it will be built against the file on "
            "disk when applied",
        ),
        None,  # nothing new about an unbuilt file
        BuildNote("built", "built src/app.py (delete)"),
        BuildNote("built", "built docs/moved.md (move)"),
    ]


def test_a_change_that_does_not_land_is_announced_once() -> None:
    _, notes = build_of(
        {"src/app.py": PY, "b.py": "b\n"},
        BAD_EDIT,
        EditFile("src/app.py", "import os\n", ""),
        MoveFile("b.py", "src/app.py"),
    )
    assert notes[0] == BuildNote(
        "rebuild",
        "src/app.py needs a rebuild: edit of src/app.py failed: the find text starting "
        "'return cwd' is not in the file",
    )
    assert notes[1] is None
    assert notes[2] == BuildNote(
        "failed",
        "b.py cannot be built: cannot move b.py to src/app.py: src/app.py already exists",
    )


# -- finishing: what is stored ----------------------------------------------------------------


async def test_the_last_change_of_a_file_carries_its_build() -> None:
    build, _ = build_of(
        {"src/app.py": PY},
        EditFile("src/app.py", "import os\n", "import os\nimport sys\n"),
        WriteFile("new.txt", "n\n"),
        EditFile("src/app.py", "return os.getcwd()\n", "return sys.argv[0]\n"),
        EditFile("unknown.py", "x\n", "y\n"),
    )
    first, new, last, unknown = await build.finish(None)
    assert first == BuiltChange(
        "chg_0",
        "src/app.py",
        EditFile("src/app.py", "import os\n", "import os\nimport sys\n"),
        None,
        None,
        {"status": "built", "result_in": "chg_2"},
        "pending",
    )
    assert last.result == "import os\nimport sys\n\n\ndef main():\n    return sys.argv[0]\n"
    assert last.base_sha256 == sha(PY)
    assert last.build == {
        "status": "built",
        "strategy": "whitespace",
        "attempts": 0,
        "reason": None,
        "path": "src/app.py",
        "source": "src/app.py",
        "steps": ["exact", "whitespace"],
        "changes": ["chg_0", "chg_2"],
    }
    assert (new.result, new.base_sha256, new.build["strategy"]) == ("n\n", None, "new")
    assert (unknown.result, unknown.base_sha256, unknown.status) == (None, None, "pending")
    assert unknown.build["status"] == "unbuilt"


async def test_a_move_stores_the_file_at_its_destination() -> None:
    build, _ = build_of(
        {"a.py": "x = 1\n"},
        MoveFile("a.py", "lib/a.py"),
        EditFile("lib/a.py", "x = 1\n", "x = 2\n"),
    )
    move, edit = await build.finish(None)
    assert (move.path, move.build) == ("a.py", {"status": "built", "result_in": "chg_1"})
    assert (edit.path, edit.result, edit.base_sha256) == ("lib/a.py", "x = 2\n", sha("x = 1\n"))
    assert (edit.build["source"], edit.build["path"]) == ("a.py", "lib/a.py")


async def test_a_delete_is_built_with_no_result() -> None:
    build, _ = build_of({"a.py": "x\n"}, DeleteFile("a.py"))
    (deleted,) = await build.finish(None)
    assert (deleted.result, deleted.base_sha256, deleted.status) == (None, sha("x\n"), "pending")
    assert deleted.build["strategy"] == "delete"


# -- finishing: rebuilds ----------------------------------------------------------------------


async def test_a_failed_file_is_rebuilt_and_the_second_attempt_lands() -> None:
    build, _ = build_of({"src/app.py": PY}, BAD_EDIT)
    builder = FakeBuilder(
        [
            file_reply("src/app.py", "import os\n\n\ndef main(:\n"),  # does not parse
            file_reply("src/app.py", FIXED),
        ]
    )
    notes: list[BuildNote] = []
    (change,) = await build.finish(builder, on_note=notes.append)
    assert change.status == "pending"
    assert (change.result, change.base_sha256) == (FIXED, sha(PY))
    assert change.build["strategy"] == "rebuilt" and change.build["attempts"] == 2
    assert change.build["reason"] is None
    first, second = builder.requests
    assert (first.path, first.original, first.attempt) == ("src/app.py", PY, 1)
    assert first.proposal_text == proposal_text([BAD_EDIT])
    assert first.reason == (
        "edit of src/app.py failed: the find text starting 'return cwd' is not in the file"
    )
    assert second.attempt == 2
    assert second.reason == (
        f"{first.reason}. The last rebuild was refused: src/app.py would not parse as Python "
        "at line 4; it did before the change"
    )
    assert notes == [
        BuildNote("rebuilding", "src/app.py (attempt 1 of 2)"),
        BuildNote("rebuilding", "src/app.py (attempt 2 of 2)"),
        BuildNote("rebuilt", "rebuilt src/app.py"),
    ]


async def test_a_rebuild_keeps_the_original_line_ends() -> None:
    build, _ = build_of({"w.txt": "a\r\nb\r\nc"}, EditFile("w.txt", "zzz\n", "y\n"))
    (change,) = await build.finish(FakeBuilder([file_reply("w.txt", "a\nB\nc\n")]))
    assert change.result == "a\r\nB\r\nc"


async def test_a_new_file_is_rebuilt_as_written() -> None:
    build, _ = build_of({}, WriteFile("n.py", "x = (\n"))
    (change,) = await build.finish(FakeBuilder([file_reply("n.py", "x = ()\n")]))
    assert (change.result, change.base_sha256, change.status) == ("x = ()\n", None, "pending")


async def test_exceptions_and_bad_replies_are_failed_attempts() -> None:
    build, _ = build_of({"src/app.py": PY}, BAD_EDIT)
    secret = "sk-should-never-be-shown"
    builder = FakeBuilder(
        [
            RuntimeError(secret),
            PlancastError("the builder model timed out"),
            "Sure! I fixed it.",  # no block
        ]
    )
    (change,) = await build.finish(builder, max_attempts=3)
    assert change.status == "failed"
    assert (change.result, change.base_sha256) == (None, None)
    assert change.build["attempts"] == 3 and change.build["strategy"] is None
    reason = change.build["reason"]
    assert reason.endswith(
        "; rebuilding it failed 3 times, last: the builder's reply held no single <pc:file> "
        "block for src/app.py"
    )
    assert builder.requests[1].reason.endswith(
        "The last rebuild was refused: the builder call failed (RuntimeError)"
    )
    assert builder.requests[2].reason.endswith(
        "The last rebuild was refused: the builder call failed (the builder model timed out)"
    )
    assert all(secret not in r.reason for r in builder.requests) and secret not in reason


async def test_attempts_run_out() -> None:
    build, _ = build_of({"src/app.py": PY}, BAD_EDIT, EditFile("src/app.py", "import os\n", ""))
    builder = FakeBuilder([file_reply("src/app.py", "# ... rest of the file unchanged ...\n")])
    notes: list[BuildNote] = []
    first, last = await build.finish(builder, max_attempts=1, on_note=notes.append)
    assert (first.status, last.status) == ("failed", "failed")
    assert first.build == {"status": "failed", "result_in": "chg_1"}
    assert (
        "rebuilding it failed once, last: src/app.py line 1 is a placeholder"
        in (last.build["reason"])
    )
    assert notes[-1].stage == "failed"
    assert len(builder.requests) == 1
    assert builder.requests[0].proposal_text == proposal_text(
        [BAD_EDIT, EditFile("src/app.py", "import os\n", "")]
    )


async def test_what_is_never_sent_to_the_builder() -> None:
    build, _ = build_of(
        {"a.py": "a\n", "b.py": "b\n", "c.py": "c\n"},
        MoveFile("a.py", "b.py"),  # structural: no text fixes it
        EditFile("c.py", "nope\n", ""),
        DeleteFile("c.py"),  # ends deleted: no text to write
        EditFile("d.py", "x\n", ""),  # unbuilt
    )
    builder = FakeBuilder([])
    stored = await build.finish(builder)
    assert builder.requests == []
    assert [c.status for c in stored] == ["failed", "failed", "failed", "pending"]
    assert stored[0].build["reason"] == "cannot move a.py to b.py: b.py already exists"


async def test_without_a_builder_failed_files_stay_failed() -> None:
    build, _ = build_of({"src/app.py": PY}, BAD_EDIT)
    (change,) = await build.finish(None)
    assert change.status == "failed" and change.build["attempts"] == 0
    assert "is not in the file" in change.build["reason"]


async def test_rebuilds_run_at_most_concurrency_at_once() -> None:
    files = {f"f{n}.py": f"x = {n}\n" for n in range(4)}
    build, _ = build_of(files, *(EditFile(p, "nope\n", "") for p in files))
    running = peak = 0

    async def builder(request: RebuildRequest) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return file_reply(request.path, "y = 1\n")

    stored = await build.finish(builder, concurrency=2)
    assert [c.result for c in stored] == ["y = 1\n"] * 4
    assert peak == 2


async def test_a_cancelled_rebuild_is_not_a_failed_attempt() -> None:
    build, _ = build_of({"src/app.py": PY}, BAD_EDIT)
    with pytest.raises(asyncio.CancelledError):
        await build.finish(FakeBuilder([asyncio.CancelledError()]))


async def test_finish_checks_its_arguments_and_runs_once() -> None:
    build, _ = build_of({}, WriteFile("a", "x\n"))
    with pytest.raises(ValueError, match="max_attempts"):
        await build.finish(None, max_attempts=0)
    with pytest.raises(ValueError, match="concurrency"):
        await build.finish(None, concurrency=0)
    await build.finish(None)
    with pytest.raises(RuntimeError, match="called already"):
        await build.finish(None)
    with pytest.raises(RuntimeError):
        build.add("chg_x", WriteFile("b", ""))


# -- the builder's prompt and reply -----------------------------------------------------------


def test_the_builder_is_asked_for_one_whole_file() -> None:
    request = RebuildRequest("src/app.py", "x = 1", "<pc:edit ...>", "the find is missing", 2)
    system, user = rebuild_messages(request)
    assert system == BUILDER_SYSTEM
    assert "exactly one block" in system and "Never leave anything out" in system
    assert '<pc:original path="src/app.py">\nx = 1\n</pc:original>' in user
    assert "<pc:edit ...>" in user and "the find is missing" in user
    assert user.endswith(
        'Write the whole of src/app.py after the change, in one <pc:file path="src/app.py"> block.'
    )
    _, new = rebuild_messages(RebuildRequest("n.py", None, "p", "r"))
    assert "The file n.py does not exist yet." in new and "<pc:original" not in new


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (file_reply("a.py", "x = 1\n"), "x = 1\n"),
        ('<pc:file path="./a.py">\n```python\nx = 1\n```\n</pc:file>', "x = 1\n"),
        ("no block at all", None),
        (file_reply("b.py", "x = 1\n"), None),
        (file_reply("a.py", "1\n") + file_reply("a.py", "2\n"), None),
        ('<pc:file path="a.py">\ncut short', None),
        ('<pc:delete path="a.py" />', None),
    ],
)
def test_the_file_is_taken_from_the_builder_reply(reply: str, text: str | None) -> None:
    assert extract_file(reply, "a.py") == text


def test_the_proposal_reads_back_as_the_same_ops() -> None:
    ops: list[FileOp] = [
        WriteFile("a.py", "x = 1\n"),
        WriteFile("empty.txt", ""),
        EditFile("a.py", "x = 1\n", "x = 2\ny = 3\n"),
        EditFile("a.py", "y = 3", ""),
        MoveFile("a.py", "b.py"),
        DeleteFile("c.py"),
    ]
    parser = ReplyParser()
    text = proposal_text(ops)
    parsed = [e.op for e in parser.feed(text) + parser.finish() if isinstance(e, OpParsed)]
    assert parsed[:3] == ops[:3]
    assert parsed[3] == EditFile("a.py", "y = 3\n", "")  # the format ends every line
    assert parsed[4:] == ops[4:]


def test_context_files_are_the_file_items_with_content() -> None:
    items = [
        ContextItem("c1", "file", "a.py", "s", 1, 0.0, "x\n"),
        ContextItem("c2", "note", "todo", "s", 1, 0.0, "note"),
        ContextItem("c3", "file", "b.py", "s", 1, 0.0, None),
    ]
    assert context_files(items) == {"a.py": "x\n"}


# -- storage ----------------------------------------------------------------------------------

ORG = LOCAL_ORG_ID


@pytest.fixture
async def conn(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as connection:
        yield connection


async def _stored_reply(conn: AsyncConnection) -> tuple[LiveStream, list[BuiltChange]]:
    project = await projects.create_project(conn, ORG, "demo")
    plan = await plans.create_plan(conn, ORG, project.id, None)
    live = LiveStream("st_1", ORG, plan.id, "main")
    build, _ = build_of(
        {"src/app.py": PY},
        EditFile("src/app.py", "import os\n", "import os\nimport sys\n"),
        BAD_EDIT,
        WriteFile("new.txt", "n\n"),
    )
    built = await build.finish(None)
    ops = [(c.change_id, c.op) for c in built]
    await record_reply(conn, live, "tell", "the reply", ops, "finished", built)
    return live, built


async def test_builds_are_stored_and_failed_changes_are_not_pending(conn: AsyncConnection) -> None:
    live, built = await _stored_reply(conn)
    head = await versions.head(conn, ORG, live.plan_id, "main")
    assert head.state.changes == (("chg_0", "failed"), ("chg_1", "failed"), ("chg_2", "pending"))
    assert head.description == "reply (finished) with 3 change(s), 2 of them failed to build"
    (pending,) = await changes.list_changes(conn, ORG, live.plan_id, "main")
    assert (pending.id, pending.result, pending.base_sha256) == ("chg_2", "n\n", None)
    assert pending.build == built[2].build
    failed = await changes.list_changes(conn, ORG, live.plan_id, "main", status="failed")
    assert [c.build for c in failed] == [built[0].build, built[1].build]
    both = await changes.list_changes(conn, ORG, live.plan_id, "main", status=("failed",))
    assert both == failed
    serialized = _change(failed[1])
    assert serialized["build"]["status"] == "failed" and serialized["status"] == "failed"
    assert (serialized["result"], serialized["base_sha256"]) == (None, None)
    assert serialized["op"] == {
        "op": "edit",
        "path": "src/app.py",
        "find": BAD_EDIT.find,
        "replace": BAD_EDIT.replace,
    }


async def test_failed_changes_are_rejected_only_when_named_and_never_applied(
    conn: AsyncConnection,
) -> None:
    live, _ = await _stored_reply(conn)
    plan = live.plan_id
    with pytest.raises(InvalidRequest, match="can be rejected, not applied"):
        await changes.set_status(conn, ORG, plan, "main", "applied", ids=["chg_0"])
    assert [c.id for c in await changes.set_status(conn, ORG, plan, "main", "applied")] == ["chg_2"]
    assert await changes.set_status(conn, ORG, plan, "main", "rejected") == []
    # chg_0 and chg_1 failed as one build of src/app.py: naming one lets both go.
    moved = await changes.set_status(conn, ORG, plan, "main", "rejected", ids=["chg_0"])
    assert [c.id for c in moved] == ["chg_0", "chg_1"]
    assert await changes.list_changes(conn, ORG, plan, "main", status="failed") == []
    with pytest.raises(InvalidRequest, match="not pending: chg_nope$"):
        await changes.set_status(conn, ORG, plan, "main", "rejected", ids=["chg_nope"])


async def test_a_failed_build_is_rejected_whole_by_any_path_it_touches(
    conn: AsyncConnection,
) -> None:
    project = await projects.create_project(conn, ORG, "moves")
    plan = await plans.create_plan(conn, ORG, project.id, None)
    live = LiveStream("st_m", ORG, plan.id, "main")
    build, _ = build_of(
        {"src/app.py": PY},
        MoveFile("src/app.py", "src/main.py"),
        EditFile("src/main.py", "    return cwd\n", "    return cwd or '.'\n"),  # not there
    )
    built = await build.finish(None)
    assert [b.status for b in built] == ["failed", "failed"]
    await record_reply(
        conn, live, "tell", "r", [(b.change_id, b.op) for b in built], "finished", built
    )
    # The move's destination names the edit and, through its build, the move too.
    moved = await changes.set_status(conn, ORG, plan.id, "main", "rejected", paths=["src/main.py"])
    assert [c.id for c in moved] == ["chg_0", "chg_1"]


async def test_changes_without_builds_are_stored_as_before(conn: AsyncConnection) -> None:
    project = await projects.create_project(conn, ORG, "demo")
    plan = await plans.create_plan(conn, ORG, project.id, None)
    live = LiveStream("st_2", ORG, plan.id, "main")
    ops: list[tuple[str, FileOp]] = [("chg_a", WriteFile("a", "x\n")), ("chg_b", DeleteFile("b"))]
    await record_reply(conn, live, "tell", "text", ops, "interrupted")
    listed = await changes.list_changes(conn, ORG, plan.id, "main")
    assert [(c.id, c.op, c.result, c.base_sha256, c.build) for c in listed] == [
        ("chg_a", WriteFile("a", "x\n"), None, None, None),
        ("chg_b", DeleteFile("b"), None, None, None),
    ]
    with pytest.raises(ValueError, match="one build"):
        await changes.insert_changes(conn, ORG, plan.id, None, [WriteFile("a", "")], builds=[])
