"""Builds through a whole stream: a reply's changes built against the plan's context as it
streams, sent to the builder model when they do not land, and stored with their builds.

The in-process server and the provider emulator: the planner's reply and the builder's are
scripted (``Reply(role="builder")``), and every assertion reads what a client can read (the
events, the REST routes) or what the database kept (usage rows). Provider calls are tried once
(``provider_attempts=1``), so one scripted failure is one failed builder attempt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plancast.server.streams.builds import BUILDER_SYSTEM
from plancast.server.streams.run import REBUILD_ATTEMPTS
from plancast.shared import ChangeEvent, End, Status, Stop, StreamEvent
from tests.emulator.script import Reply
from tests.emulator.server import Emulator, RecordedRequest
from tests.server.helpers import (
    Server,
    check_sequence,
    collect,
    load_settings,
    openai_creds,
    query,
    running,
    send,
    start_message,
    start_stream,
    wait_until,
)

WAIT_S = 30.0
"""A bound for a stream of several model calls (planner, builder, namer, committer)."""

PY = "import os\n\n\ndef main():\n    return os.getcwd()\n"
FIXED = "import os\n\n\ndef main():\n    return os.getcwd() or '.'\n"
NOT_FOUND = "edit of src/app.py failed: the find text starting 'return cwd' is not in the file"


@pytest.fixture
def srv(data_dir: Path) -> Iterator[Server]:
    with running(load_settings(data_dir, provider_attempts=1)) as server:
        yield server


# -- helpers ----------------------------------------------------------------------------------


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def edit(path: str, find: str, replace: str) -> str:
    return (
        f'<pc:edit path="{path}">\n<pc:find>\n{find}</pc:find>\n'
        f"<pc:replace>\n{replace}</pc:replace>\n</pc:edit>\n"
    )


def write(path: str, text: str) -> str:
    return f'<pc:file path="{path}">\n{text}</pc:file>\n'


def reply(*blocks: str) -> str:
    return "Here is the change.\n\n" + "\n".join(blocks) + "\nDone.\n"


def load(server: Server, plan_id: str, files: dict[str, str]) -> None:
    items = [{"kind": "file", "name": name, "content": text} for name, text in files.items()]
    server.ok("POST", f"/api/v1/plans/{plan_id}/context", {"items": items})


def run(server: Server, emulator: Emulator, plan_id: str) -> tuple[list[StreamEvent], End]:
    start = start_message(plan_id, openai_creds(emulator), prompt="Change the app.")
    events = server.run_stream(start, timeout=WAIT_S)
    return events, check_sequence(events)


def finished(server: Server, emulator: Emulator, plan_id: str) -> list[StreamEvent]:
    events, end = run(server, emulator, plan_id)
    assert (end.status, end.error_code) == ("finished", None), end
    return events


def stages(events: list[StreamEvent]) -> list[tuple[str, str]]:
    """(stage, detail) of the build's status events, in order."""
    build = {"built", "rebuild", "rebuilding", "rebuilt", "failed", "unbuilt"}
    return [(e.stage, e.detail) for e in events if isinstance(e, Status) and e.stage in build]


def change_events(events: list[StreamEvent]) -> list[ChangeEvent]:
    return [e for e in events if isinstance(e, ChangeEvent)]


def builder_user_message(request: RecordedRequest) -> str:
    """The builder request's one user message (OpenAI form: the system prompt comes first)."""
    system, user = request.messages
    assert system["role"] in ("system", "developer") and system["content"] == BUILDER_SYSTEM
    assert user["role"] == "user"
    return str(user["content"])


def usage_roles(server: Server, stream_id: str) -> list[str]:
    rows = query(
        server.data_dir, "SELECT role FROM usage WHERE stream_id = ? ORDER BY rowid", stream_id
    )
    return [str(role) for (role,) in rows]


def versions(server: Server, plan_id: str) -> list[dict[str, Any]]:
    return list(server.ok("GET", f"/api/v1/plans/{plan_id}/versions")["versions"])


# -- built as the reply streams ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("find", "replace", "strategy"),
    [
        ("    return os.getcwd()\n", "    return os.getcwd() or '.'\n", "exact"),
        # Indented by four spaces less than the file, with trailing blanks: re-indented.
        ("return os.getcwd()  \n", "return os.getcwd() or '.'\n", "whitespace"),
    ],
    ids=["exact", "whitespace"],
)
def test_an_edit_that_lands_is_built_against_the_context(
    srv: Server, emulator: Emulator, find: str, replace: str, strategy: str
) -> None:
    plan_id = srv.new_plan()
    load(srv, plan_id, {"src/app.py": PY})
    emulator.push(Reply(text=reply(edit("src/app.py", find, replace)), chunk_chars=13))
    events = finished(srv, emulator, plan_id)

    (change,) = srv.changes(plan_id)
    assert (change["path"], change["op"]["op"], change["status"]) == (
        "src/app.py",
        "edit",
        "pending",
    )
    assert change["result"] == FIXED
    assert change["base_sha256"] == sha(PY)
    build = change["build"]
    assert (build["status"], build["strategy"], build["attempts"]) == ("built", strategy, 0)
    assert (build["reason"], build["changes"]) == (None, [change["id"]])
    assert build["steps"] == [strategy]

    assert stages(events) == [("built", f"built src/app.py ({strategy})")]
    (announced,) = change_events(events)
    assert (announced.change_id, announced.status, announced.op) == (
        change["id"],
        "pending",
        "edit",
    )
    assert emulator.role_requests("builder") == []
    assert srv.changes(plan_id, "failed") == []


# -- rebuilt by the builder model -------------------------------------------------------------


def test_an_edit_that_does_not_land_is_rebuilt_by_the_builder(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    load(srv, plan_id, {"src/app.py": PY})
    proposal = edit("src/app.py", "    return cwd\n", "    return cwd or '.'\n")
    emulator.push(
        Reply(text=reply(proposal)),
        Reply(text="Here it is.\n" + write("src/app.py", FIXED), role="builder"),
    )
    events = finished(srv, emulator, plan_id)

    (asked,) = emulator.role_requests("builder")
    user = builder_user_message(asked)
    assert f'<pc:original path="src/app.py">\n{PY}</pc:original>' in user  # the original
    assert f"The proposed change, in the reply format:\n{proposal}" in user  # the proposal
    assert f"Why it could not be applied as written: {NOT_FOUND}\n" in user  # the reason

    (change,) = srv.changes(plan_id)
    assert change["status"] == "pending"
    assert (change["result"], change["base_sha256"]) == (FIXED, sha(PY))
    build = change["build"]
    assert (build["status"], build["strategy"], build["attempts"]) == ("built", "rebuilt", 1)
    assert build["reason"] is None
    assert stages(events) == [
        ("rebuild", f"src/app.py needs a rebuild: {NOT_FOUND}"),
        ("rebuilding", f"src/app.py (attempt 1 of {REBUILD_ATTEMPTS})"),
        ("rebuilt", "rebuilt src/app.py"),
    ]
    assert [e.status for e in change_events(events)] == ["pending"]
    end = events[-1]
    assert usage_roles(srv, end.stream_id).count("builder") == 1
    assert "planner" in usage_roles(srv, end.stream_id)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(Reply(text="Sure, I fixed the file for you.", role="builder"), id="no-block"),
        pytest.param(Reply(role="builder", status=500), id="http-500"),
    ],
)
def test_a_builder_that_fails_every_attempt_leaves_the_change_failed(
    srv: Server, emulator: Emulator, failure: Reply
) -> None:
    plan_id = srv.new_plan()
    load(srv, plan_id, {"src/app.py": PY})
    bad = edit("src/app.py", "    return cwd\n", "    return cwd or '.'\n")
    emulator.push(
        Reply(text=reply(bad, write("docs/new.md", "# New\n"))),
        *[failure] * REBUILD_ATTEMPTS,
    )
    events = finished(srv, emulator, plan_id)  # a failed build does not fail the stream
    assert len(emulator.role_requests("builder")) == REBUILD_ATTEMPTS
    assert emulator.pending == 0

    (failed,) = srv.changes(plan_id, "failed")
    (pending,) = srv.changes(plan_id)
    assert (failed["path"], failed["status"]) == ("src/app.py", "failed")
    assert (failed["result"], failed["base_sha256"]) == (None, None)
    reason = failed["build"]["reason"]
    assert failed["build"]["status"] == "failed" and failed["build"]["strategy"] is None
    assert failed["build"]["attempts"] == REBUILD_ATTEMPTS
    assert reason.startswith(f"{NOT_FOUND}; rebuilding it failed {REBUILD_ATTEMPTS} times, last: ")
    if failure.is_error:
        assert "the builder call failed (" in reason
    else:
        assert "held no single <pc:file> block for src/app.py" in reason
    second = builder_user_message(emulator.role_requests("builder")[1])
    assert "The last rebuild was refused: " in second

    # Announced twice: pending as it was parsed, failed once the builds were done.
    announced = [(e.change_id, e.status, e.detail) for e in change_events(events)]
    assert announced == [
        (failed["id"], "pending", ""),
        (pending["id"], "pending", ""),
        (failed["id"], "failed", reason),
    ]
    assert stages(events)[-1] == ("failed", f"src/app.py cannot be built: {reason}")

    (pending_build, reply_version) = pending["build"], versions(srv, plan_id)[-1]
    assert pending["path"] == "docs/new.md" and pending_build["strategy"] == "new"
    assert reply_version["kind"] == "reply"
    assert reply_version["description"] == (
        "reply (finished) with 2 change(s), 1 of them failed to build"
    )
    assert usage_roles(srv, events[-1].stream_id).count("builder") == REBUILD_ATTEMPTS

    # Applying everything that is pending never takes the failed change.
    applied = srv.ok("POST", f"/api/v1/plans/{plan_id}/changes/apply", None)["changes"]
    assert applied == [{"id": pending["id"], "path": "docs/new.md", "status": "applied"}]
    assert [c["id"] for c in srv.changes(plan_id, "failed")] == [failed["id"]]
    assert srv.changes(plan_id) == []


def test_a_rewrite_that_breaks_python_syntax_is_sent_to_the_builder(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    load(srv, plan_id, {"src/app.py": PY})
    broken = "import os\n\n\ndef main(:\n    return os.getcwd()\n"
    emulator.push(
        Reply(text=reply(write("src/app.py", broken))),
        Reply(text=write("src/app.py", FIXED), role="builder"),
    )
    events = finished(srv, emulator, plan_id)

    syntax = "src/app.py would not parse as Python at line 4; it did before the change"
    (asked,) = emulator.role_requests("builder")
    assert f"Why it could not be applied as written: {syntax}\n" in builder_user_message(asked)
    assert stages(events) == [  # the edit lands; the syntax is checked once the reply is done
        ("built", "built src/app.py (write)"),
        ("rebuilding", "src/app.py (attempt 1 of 2)"),
        ("rebuilt", "rebuilt src/app.py"),
    ]
    (change,) = srv.changes(plan_id)
    assert (change["result"], change["build"]["strategy"]) == (FIXED, "rebuilt")


LONG = "".join(f"def f{n}():\n    return {n}\n\n\n" for n in range(12))
ELIDED = "def f0():\n    return 100\n\n\n# ... rest of the file unchanged ...\n"


def test_an_elided_rewrite_is_never_taken_as_the_file(srv: Server, emulator: Emulator) -> None:
    plan_id = srv.new_plan()
    load(srv, plan_id, {"src/funcs.py": LONG})
    whole = LONG.replace("return 0\n", "return 100\n", 1)
    emulator.push(
        Reply(text=reply(write("src/funcs.py", ELIDED))),
        Reply(text=write("src/funcs.py", ELIDED), role="builder"),  # the builder elides too
        Reply(text=write("src/funcs.py", whole), role="builder"),
    )
    events = finished(srv, emulator, plan_id)

    placeholder = (
        "src/funcs.py line 5 is a placeholder where code was left out, which the file did "
        "not have; the whole text must be written out"
    )
    first, second = (builder_user_message(r) for r in emulator.role_requests("builder"))
    assert f"Why it could not be applied as written: {placeholder}\n" in first
    assert f"{placeholder}. The last rebuild was refused: {placeholder}" in second
    (change,) = srv.changes(plan_id)
    assert change["result"] == whole and "rest of the file" not in change["result"]
    assert (change["build"]["strategy"], change["build"]["attempts"]) == ("rebuilt", 2)
    assert stages(events) == [
        ("built", "built src/funcs.py (write)"),
        ("rebuilding", "src/funcs.py (attempt 1 of 2)"),
        ("rebuilding", "src/funcs.py (attempt 2 of 2)"),
        ("rebuilt", "rebuilt src/funcs.py"),
    ]


# -- moves, deletes, and files the server does not know ---------------------------------------


def test_moves_and_deletes_are_built(srv: Server, emulator: Emulator) -> None:
    plan_id = srv.new_plan()
    load(srv, plan_id, {"a.py": "x = 1\n", "old.txt": "old\n"})
    emulator.push(
        Reply(text=reply('<pc:move path="a.py" to="lib/a.py" />', '<pc:delete path="old.txt" />'))
    )
    events = finished(srv, emulator, plan_id)

    move, delete = srv.changes(plan_id)
    assert move["op"] == {"op": "move", "path": "a.py", "to": "lib/a.py"}
    assert (move["result"], move["base_sha256"]) == ("x = 1\n", sha("x = 1\n"))
    assert move["build"]["status"] == "built" and move["build"]["strategy"] == "move"
    assert (move["build"]["source"], move["build"]["path"]) == ("a.py", "lib/a.py")
    assert delete["op"] == {"op": "delete", "path": "old.txt"}
    assert (delete["result"], delete["base_sha256"]) == (None, sha("old\n"))
    assert delete["build"]["status"] == "built" and delete["build"]["strategy"] == "delete"
    assert [(e.op, e.path, e.status) for e in change_events(events)] == [
        ("move", "a.py", "pending"),
        ("delete", "old.txt", "pending"),
    ]
    assert stages(events) == [
        ("built", "built lib/a.py (move)"),
        ("built", "built old.txt (delete)"),
    ]
    assert emulator.role_requests("builder") == []


def test_an_edit_to_a_file_not_in_context_is_left_for_the_client(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    load(srv, plan_id, {"src/app.py": PY})
    emulator.push(Reply(text=reply(edit("src/other.py", "x = 1\n", "x = 2\n"))))
    events = finished(srv, emulator, plan_id)

    (change,) = srv.changes(plan_id)
    assert (change["path"], change["status"]) == ("src/other.py", "pending")
    assert (change["result"], change["base_sha256"]) == (None, None)
    assert (change["build"]["status"], change["build"]["strategy"]) == ("unbuilt", None)
    assert stages(events) == [
        (
            "unbuilt",
            "src/other.py is not in the plan's context; it will be built against the file on "
            "disk when applied",
        )
    ]
    assert emulator.role_requests("builder") == []
    assert srv.changes(plan_id, "failed") == []


# -- stopped while the builder works ----------------------------------------------------------


def test_a_stop_during_a_rebuild_ends_stopped_and_keeps_the_changes(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    load(srv, plan_id, {"src/app.py": PY})
    text = reply(
        edit("src/app.py", "    return cwd\n", "    return cwd or '.'\n"),
        write("docs/new.md", "# New\n"),
    )
    emulator.push(
        Reply(text=text),
        Reply(text=write("src/app.py", FIXED), role="builder", first_byte_delay=WAIT_S),
    )
    with srv.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator)))
        head = collect(
            ws,
            started.stream_id,
            until=lambda e: isinstance(e, Status) and e.stage == "rebuilding",
            timeout=WAIT_S,
        )
        wait_until(lambda: len(emulator.role_requests("builder")) == 1, WAIT_S)
        send(ws, Stop(stream_id=started.stream_id))
        events = head + collect(ws, started.stream_id, timeout=WAIT_S)
    end = check_sequence(events)
    assert (end.status, end.error_code, end.changes) == ("stopped", None, 2)
    assert srv.stream_row(started.stream_id)["status"] == "stopped"
    assert not any(isinstance(e, Status) and e.stage == "rebuilt" for e in events)
    assert [e.status for e in change_events(events)] == ["pending", "pending"]

    # The reply and its changes are kept, unbuilt: the client builds them against the disk.
    stored = srv.changes(plan_id)
    assert [(c["path"], c["op"]["op"]) for c in stored] == [
        ("src/app.py", "edit"),
        ("docs/new.md", "write"),
    ]
    assert all((c["result"], c["base_sha256"], c["build"]) == (None, None, None) for c in stored)
    assert srv.changes(plan_id, "failed") == []
    last = srv.convo(plan_id)[-1]
    assert (last["role"], last["content"]) == ("assistant", text)
    assert versions(srv, plan_id)[-1]["description"] == "reply (stopped) with 2 change(s)"
    assert usage_roles(srv, started.stream_id).count("builder") == 1

    # Nothing was left broken: the plan takes the next stream as usual.
    emulator.push(Reply(text="All good."))
    finished(srv, emulator, plan_id)
    assert len(srv.changes(plan_id)) == 2
