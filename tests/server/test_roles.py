"""A stream's other model calls, through the provider emulator: namer, committer, summarizer,
auto-continue, the large-context model, and the usage row each call leaves.

Every stream here may make several model calls (planner, namer, committer, summarizer), so
waits are wider than one call's. Provider calls are tried once (``provider_attempts=1``), so
that one scripted failure is the call's failure rather than a retried success.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.domain import plan_names, plans, projects
from plancast.server.domain.accounts import LOCAL_ORG_ID
from plancast.server.llm import prompts
from plancast.server.store.schema import plans as plans_table
from plancast.server.streams.roles import (
    MAX_NAME_CHARS,
    clean_commit_message,
    clean_name,
    clean_summary,
)
from plancast.shared import ChangeEvent, End, Status, StreamEvent
from tests.emulator.script import ROLE_DEFAULT_TEXT, Reply
from tests.emulator.server import Emulator, RecordedRequest
from tests.server.helpers import (
    FILE_REPLY,
    Server,
    anthropic_creds,
    check_sequence,
    expect_error,
    load_settings,
    openai_creds,
    query,
    running,
    send,
    start_message,
)

WAIT_S = 30.0
"""A bound for a stream of several model calls on a busy machine."""


@pytest.fixture
def srv(data_dir: Path) -> Iterator[Server]:
    with running(load_settings(data_dir, provider_attempts=1)) as server:
        yield server


def run(
    server: Server,
    emulator: Emulator,
    plan_id: str,
    prompt: str = "Add a main function.",
    *,
    mode: str = "tell",
    **fields: Any,
) -> tuple[list[StreamEvent], End]:
    start = start_message(plan_id, openai_creds(emulator), mode=mode, prompt=prompt, **fields)
    events = server.run_stream(start, timeout=WAIT_S)
    end = check_sequence(events)
    return events, end


def finished(server: Server, emulator: Emulator, plan_id: str, *args: Any, **kw: Any) -> End:
    events, end = run(server, emulator, plan_id, *args, **kw)
    assert end.status == "finished", end
    return end


def stages(events: list[StreamEvent]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events:
        if isinstance(e, Status):
            out.setdefault(e.stage, []).append(e.detail)
    return out


def put_models(server: Server, plan_id: str, settings: dict[str, Any]) -> None:
    server.ok("PUT", f"/api/v1/plans/{plan_id}/models", {"settings": settings})


def plan_name(server: Server, plan_id: str) -> str:
    return str(server.ok("GET", f"/api/v1/plans/{plan_id}")["name"])


def texts(request: RecordedRequest) -> list[tuple[str, str]]:
    """(role, content) of each chat message (OpenAI form: the system prompt is the first)."""
    return [(m["role"], m["content"]) for m in request.messages]


def sent(request: RecordedRequest) -> str:
    return json.dumps(request.body)


def kinds(server: Server, plan_id: str) -> list[str]:
    found = server.ok("GET", f"/api/v1/plans/{plan_id}/versions")["versions"]
    return [v["kind"] for v in found]


def usage_rows(server: Server, stream_id: str) -> list[tuple[Any, ...]]:
    return query(
        server.data_dir,
        "SELECT role, model, input_tokens, output_tokens FROM usage WHERE stream_id = ? "
        "ORDER BY rowid",
        stream_id,
    )


# -- cleaning what a role returns ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Add Login Rate-Limit!", "add-login-rate-limit"),
        ("\n\n  `fix_the_parser`\nbecause it breaks", "fix-the-parser"),
        ("Grüße über Café-Öffnung", "grusse-uber-cafe-offnung"),
        ("   ", None),
        ("!!! ???", None),
        ("word " * 30, "-".join(["word"] * 9)),  # whole words, at most 48 characters
        ("x" * 60, "x" * 48),
    ],
)
def test_clean_name(text: str, name: str | None) -> None:
    assert clean_name(text) == name
    assert name is None or len(name) <= MAX_NAME_CHARS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Add a parser", "Add a parser"),
        ('"Add a parser"', "Add a parser"),
        ("'Add a parser'\n", "Add a parser"),
        ("```\nAdd a parser\n\nBody line.\n```", "Add a parser\n\nBody line."),
        ('```text\n"Add a parser"\n```', "Add a parser"),
        ("Subject\n\nBody.   \n\n", "Subject\n\nBody."),
        ("Subject\n   \n", "Subject"),
        ('""', None),
        ("```\n```", None),
        ("   ", None),
    ],
)
def test_clean_commit_message(text: str, message: str | None) -> None:
    assert clean_commit_message(text) == message


def test_a_long_commit_subject_is_cut_to_72_characters() -> None:
    cleaned = clean_commit_message("A" * 100 + "\n\nbody")
    assert cleaned is not None
    subject, body = cleaned.split("\n", 1)
    assert len(subject) == 72 and subject.endswith("…")
    assert body == "\nbody"


def test_clean_summary() -> None:
    assert clean_summary("  they agreed.\n") == "they agreed."
    assert clean_summary(" \n ") is None


# -- the namer --------------------------------------------------------------------------------


def test_the_namer_names_a_draft_plan_from_its_first_prompt(
    srv: Server, emulator: Emulator
) -> None:
    project = srv.new_project()
    first, second = srv.new_plan(project), srv.new_plan(project)
    assert (plan_name(srv, first), plan_name(srv, second)) == ("plan-1", "plan-2")

    emulator.push(Reply(text="Add Login Rate-Limit!\n", role="namer"))
    events, _ = run(srv, emulator, first, "Please rate-limit the login endpoint.")
    assert plan_name(srv, first) == "add-login-rate-limit"
    assert stages(events)["named"] == ["add-login-rate-limit"]
    (asked,) = emulator.role_requests("namer")
    assert texts(asked)[0][0] in ("system", "developer")
    assert texts(asked)[0][1].startswith("You are plancast's namer.")
    assert texts(asked)[1:] == [("user", "Please rate-limit the login endpoint.")]

    emulator.push(Reply(text="add-login-rate-limit", role="namer"))
    finished(srv, emulator, second, "Limit login attempts.")
    assert plan_name(srv, second) == "add-login-rate-limit-2"

    # Named once: the next tell does not ask again.
    finished(srv, emulator, first, "And log the refusals.")
    assert len(emulator.role_requests("namer")) == 2
    assert plan_name(srv, first) == "add-login-rate-limit"


def test_a_plan_the_user_named_is_never_renamed(srv: Server, emulator: Emulator) -> None:
    project = srv.new_project()
    named = srv.new_plan(project, name="my-work")
    renamed = srv.new_plan(project)
    srv.ok("POST", f"/api/v1/plans/{renamed}/rename", {"name": "plan-9"})  # draft-like, but theirs
    for plan_id in (named, renamed):
        events, _ = run(srv, emulator, plan_id)
        assert "named" not in stages(events) and "name_failed" not in stages(events)
    assert emulator.role_requests("namer") == []
    assert (plan_name(srv, named), plan_name(srv, renamed)) == ("my-work", "plan-9")


def test_a_plan_created_with_a_draft_like_name_keeps_it(srv: Server, emulator: Emulator) -> None:
    """The user chose ``plan-7`` when creating the plan: it is theirs, not a draft."""
    plan_id = srv.new_plan(name="plan-7")
    finished(srv, emulator, plan_id)
    assert emulator.role_requests("namer") == []
    assert plan_name(srv, plan_id) == "plan-7"


def test_a_failed_namer_leaves_the_name_and_continue_never_names(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    emulator.push(Reply(role="namer", status=500))
    events, end = run(srv, emulator, plan_id)
    assert end.status == "finished" and end.error_code is None
    assert "name_failed" in stages(events)
    assert plan_name(srv, plan_id) == "plan-1"
    assert len(emulator.role_requests("namer")) == 1

    # Still a draft name, and the plan has a first prompt, but `continue` does not name.
    events, end = run(srv, emulator, plan_id, "", mode="continue")
    assert end.status == "finished"
    assert len(emulator.role_requests("namer")) == 1
    assert plan_name(srv, plan_id) == "plan-1"


def test_a_namer_reply_with_nothing_usable_leaves_the_name(srv: Server, emulator: Emulator) -> None:
    plan_id = srv.new_plan()
    emulator.push(Reply(text="  \n!!!\n", role="namer"))
    events, end = run(srv, emulator, plan_id)
    assert end.status == "finished"
    assert "name_failed" in stages(events)
    assert plan_name(srv, plan_id) == "plan-1"


class RacingConnection:
    """A connection on which another plan takes ``name`` right after the taken names are read.

    It stands for a second stream's namer committing between ``give_name``'s read and write.
    """

    def __init__(self, conn: AsyncConnection, other_plan_id: str, name: str) -> None:
        self._conn, self._other, self._name = conn, other_plan_id, name
        self._raced = False

    async def scalar(self, statement: Any) -> Any:
        return await self._conn.scalar(statement)

    async def execute(self, statement: Any) -> Any:
        result = await self._conn.execute(statement)
        if not self._raced:
            self._raced = True
            await self._conn.execute(
                plans_table.update()
                .where(plans_table.c.id == self._other)
                .values(name=self._name, name_source="namer")
            )
        return result

    def begin_nested(self) -> Any:
        return self._conn.begin_nested()


async def test_a_name_taken_meanwhile_leaves_the_draft(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, LOCAL_ORG_ID, "race")
        ours = await plans.create_plan(conn, LOCAL_ORG_ID, project.id, None)
        theirs = await plans.create_plan(conn, LOCAL_ORG_ID, project.id, None)
        racing = RacingConnection(conn, theirs.id, "fix-the-race")
        given = await plan_names.give_name(
            racing,  # type: ignore[arg-type]
            LOCAL_ORG_ID,
            ours.id,
            ours.name,
            "fix-the-race",
        )
        assert given is None
        assert (await plans.get_plan(conn, LOCAL_ORG_ID, ours.id)).name == ours.name
        assert (await plans.get_plan(conn, LOCAL_ORG_ID, theirs.id)).name == "fix-the-race"
        assert await plan_names.draft_name(conn, LOCAL_ORG_ID, ours.id) == ours.name
        # Not raced: the next free suffix, once; then it is no draft any more.
        again = await plan_names.give_name(conn, LOCAL_ORG_ID, ours.id, ours.name, "fix-the-race")
        assert again == "fix-the-race-2"
        assert await plan_names.draft_name(conn, LOCAL_ORG_ID, ours.id) is None
        assert await plan_names.give_name(conn, LOCAL_ORG_ID, ours.id, ours.name, "again") is None


# -- the committer ----------------------------------------------------------------------------


def test_the_committers_message_is_kept_cleaned_when_the_reply_has_changes(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    emulator.push(
        Reply(text=FILE_REPLY),
        Reply(text='```text\n"Add a main function\n\nIt returns 42."\n```\n', role="committer"),
    )
    events, end = run(srv, emulator, plan_id, "Add main, fix the readme.")
    assert end.status == "finished" and end.changes == 2
    row = srv.stream_row(end.stream_id)
    assert row["commit_message"] == "Add a main function\n\nIt returns 42."
    (asked,) = emulator.role_requests("committer")
    assert texts(asked)[0][1].startswith("You are plancast's committer.")
    request = texts(asked)[1][1]
    assert "Add main, fix the readme." in request
    assert "- README.md\n- src/app.py" in request
    assert "I will add a module" in request
    assert "return 42" not in request  # the file blocks are left out


def test_no_changes_no_committer(srv: Server, emulator: Emulator) -> None:
    plan_id = srv.new_plan()
    emulator.push(Reply(text="Nothing to change here."))
    _, end = run(srv, emulator, plan_id)
    assert end.status == "finished" and end.changes == 0
    assert srv.stream_row(end.stream_id)["commit_message"] is None
    assert emulator.role_requests("committer") == []
    emulator.push(Reply(text=FILE_REPLY))  # chat mode: blocks are no changes
    _, end = run(srv, emulator, plan_id, "What would you change?", mode="chat")
    assert end.changes == 0 and srv.stream_row(end.stream_id)["commit_message"] is None
    assert emulator.role_requests("committer") == []


def test_a_failed_committer_leaves_no_message_and_the_stream_finishes(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    emulator.push(Reply(text=FILE_REPLY), Reply(role="committer", status=500))
    events, end = run(srv, emulator, plan_id)
    assert end.status == "finished" and end.changes == 2 and end.error_code is None
    assert "commit_message_failed" in stages(events)
    assert srv.stream_row(end.stream_id)["commit_message"] is None
    assert len(srv.changes(plan_id)) == 2  # the changes are there all the same


# -- the summarizer ---------------------------------------------------------------------------

OLDEST = "OLDEST-PROMPT-7f3a " + "alpha " * 400
OLD_REPLY = "beta " * 400


def long_conversation(server: Server, emulator: Emulator, plan_id: str) -> None:
    """Two turns of well over 1,000 tokens, with summaries due past 1,000."""
    put_models(server, plan_id, {"summary_tokens": 1_000})
    emulator.push(Reply(text=OLD_REPLY, chunk_chars=200))
    finished(server, emulator, plan_id, OLDEST)
    emulator.push(Reply(text="second answer"))
    finished(server, emulator, plan_id, "second question")
    assert emulator.role_requests("summarizer") == []  # three messages: nothing to condense yet


def test_a_long_conversation_is_summarized_before_the_last_two_messages(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    long_conversation(srv, emulator, plan_id)
    emulator.push(
        Reply(text="  SUMMARY-9c1e: they discussed alpha and beta.  ", role="summarizer"),
        Reply(text="third answer"),
    )
    events, end = run(srv, emulator, plan_id, "third question")
    assert end.status == "finished"
    assert stages(events)["summarized"] == ["3 messages"]

    convo = srv.convo(plan_id)
    assert [(m["role"], m["content"][:14]) for m in convo[3:]] == [
        ("summary", "SUMMARY-9c1e: "),
        ("assistant", "second answer"),
        ("user", "third question"),
        ("assistant", "third answer"),
    ]
    assert convo[3]["content"] == "SUMMARY-9c1e: they discussed alpha and beta."
    assert [m["role"] for m in convo[:3]] == ["user", "assistant", "user"]  # kept, not shown
    assert kinds(srv, plan_id).count("summary") == 1

    (asked,) = emulator.role_requests("summarizer")
    assert texts(asked)[0][1].startswith("You are plancast's summarizer.")
    assert "OLDEST-PROMPT-7f3a" in sent(asked) and "second question" in sent(asked)
    assert "third question" not in sent(asked) and "second answer" not in sent(asked)

    planner = emulator.last_request
    assert texts(planner)[1:] == [
        ("user", prompts.SUMMARY_INTRO + "SUMMARY-9c1e: they discussed alpha and beta."),
        ("assistant", "second answer"),
        ("user", "third question"),
    ]
    assert "OLDEST-PROMPT-7f3a" not in sent(planner) and "beta beta" not in sent(planner)

    # The next tell starts from the summary: nothing more to condense yet.
    emulator.push(Reply(text="fourth answer"))
    finished(srv, emulator, plan_id, "fourth question")
    assert len(emulator.role_requests("summarizer")) == 1
    assert texts(emulator.last_request)[1][1].startswith(prompts.SUMMARY_INTRO)

    assert [r[0] for r in usage_rows(srv, end.stream_id)] == ["summarizer", "planner"]


def test_a_failed_summary_sends_the_whole_conversation(srv: Server, emulator: Emulator) -> None:
    plan_id = srv.new_plan()
    long_conversation(srv, emulator, plan_id)
    emulator.push(Reply(role="summarizer", status=500), Reply(text="third answer"))
    events, end = run(srv, emulator, plan_id, "third question")
    assert end.status == "finished" and end.error_code is None
    assert "summary_failed" in stages(events) and "summarized" not in stages(events)
    assert "summary" not in kinds(srv, plan_id)
    assert "summary" not in [m["role"] for m in srv.convo(plan_id)]
    planner = emulator.last_request
    assert "OLDEST-PROMPT-7f3a" in sent(planner) and "second answer" in sent(planner)
    assert not any(prompts.SUMMARY_INTRO in content for _, content in texts(planner))


# -- auto-continue ----------------------------------------------------------------------------

PART_ONE = "Step one: the parser.\n" + prompts.CONTINUE_MARKER + "\n"
PART_TWO = "Step two: the tests. All done.\n"


def test_a_reply_that_asks_to_continue_gets_a_second_part(srv: Server, emulator: Emulator) -> None:
    plan_id = srv.new_plan()
    emulator.push(Reply(text=PART_ONE), Reply(text=PART_TWO))
    events, end = run(srv, emulator, plan_id, "Do it in steps.")
    assert end.status == "finished"
    first, second = emulator.requests
    assert texts(second)[:-2] == texts(first)
    assert texts(second)[-2:] == [("assistant", PART_ONE), ("user", prompts.CONTINUE_PROMPT)]
    assert stages(events)["continuing"] == ["part 2 of at most 5"]
    assert srv.convo(plan_id)[-1]["content"] == PART_ONE + PART_TWO
    rows = usage_rows(srv, end.stream_id)
    assert [r[0] for r in rows].count("planner") == 2


def test_auto_continue_stops_at_its_bound(srv: Server, emulator: Emulator) -> None:
    plan_id = srv.new_plan()
    put_models(srv, plan_id, {"auto_continue": 1})
    third = "Step three.\n" + prompts.CONTINUE_MARKER + "\n"
    emulator.push(Reply(text=PART_ONE), Reply(text=PART_ONE), Reply(text=third))
    _, end = run(srv, emulator, plan_id)
    assert end.status == "finished"
    assert len(emulator.requests) == 2
    assert emulator.pending == 1  # the third part was never asked for
    assert srv.convo(plan_id)[-1]["content"] == PART_ONE * 2


def test_auto_continue_zero_never_continues(srv: Server, emulator: Emulator) -> None:
    plan_id = srv.new_plan()
    put_models(srv, plan_id, {"auto_continue": 0})
    emulator.push(Reply(text=PART_ONE), Reply(text=PART_TWO))
    finished(srv, emulator, plan_id)
    assert len(emulator.requests) == 1 and emulator.pending == 1


def test_chat_never_continues(srv: Server, emulator: Emulator) -> None:
    plan_id = srv.new_plan()
    emulator.push(Reply(text=PART_ONE), Reply(text=PART_TWO))
    events, _ = run(srv, emulator, plan_id, "Explain it in steps.", mode="chat")
    assert len(emulator.requests) == 1 and emulator.pending == 1
    assert "continuing" not in stages(events)


@pytest.mark.parametrize(
    "text",
    [
        "All done.\n",
        "Say <pc:continue/> when you want more.\n",  # not alone on its line
        prompts.CONTINUE_MARKER + "\nAnd then I finished.\n",  # not the last line
    ],
)
def test_a_reply_without_the_marker_at_its_end_is_one_call(
    srv: Server, emulator: Emulator, text: str
) -> None:
    plan_id = srv.new_plan()
    emulator.push(Reply(text=text), Reply(text=PART_TWO))
    events, _ = run(srv, emulator, plan_id)
    assert len(emulator.requests) == 1 and emulator.pending == 1
    assert "continuing" not in stages(events)


def test_a_block_left_open_is_continued_and_completed(srv: Server, emulator: Emulator) -> None:
    plan_id = srv.new_plan()
    emulator.push(
        Reply(text='Writing it.\n<pc:file path="a.py">\nline1\n', finish="length"),
        Reply(text="line2\n</pc:file>\nDone.\n"),
    )
    events, end = run(srv, emulator, plan_id)
    assert end.status == "finished" and end.changes == 1
    assert len(emulator.requests) == 2
    assert [e.path for e in events if isinstance(e, ChangeEvent)] == ["a.py"]
    (change,) = srv.changes(plan_id)
    assert change["path"] == "a.py"
    assert "problem" not in stages(events)


def test_a_marker_without_a_final_newline_does_not_swallow_the_next_parts_block(
    srv: Server, emulator: Emulator
) -> None:
    """Models often end a reply without a newline: the next part still starts on a new line."""
    plan_id = srv.new_plan()
    emulator.push(
        Reply(text="Step one.\n" + prompts.CONTINUE_MARKER),
        Reply(text='<pc:file path="b.py">\nx = 1\n</pc:file>\nDone.\n'),
    )
    events, end = run(srv, emulator, plan_id)
    assert end.status == "finished"
    assert len(emulator.requests) == 2
    assert "problem" not in stages(events), stages(events)
    assert end.changes == 1
    assert [c["path"] for c in srv.changes(plan_id)] == ["b.py"]


# -- the large-context model ------------------------------------------------------------------

BIG = "y = 1  # filler\n" * 600  # ~9,600 characters, ~2,400 tokens


def load_big_context(server: Server, plan_id: str) -> None:
    item = {"kind": "file", "name": "big.py", "content": BIG}
    server.ok("POST", f"/api/v1/plans/{plan_id}/context", {"items": [item]})


def test_input_too_big_for_the_planner_goes_to_the_large_context_model(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    put_models(
        srv,
        plan_id,
        {
            "roles": {"planner": {"model": "openai/gpt-4.1", "max_input_tokens": 1_000}},
            "large_context": {"model": "openai/gpt-4.1-long", "max_input_tokens": 1_000_000},
        },
    )
    emulator.push(Reply(text="fits now"))
    finished(srv, emulator, plan_id, "small prompt")
    assert [r.model for r in emulator.requests] == ["gpt-4.1"]  # small input: the planner's

    load_big_context(srv, plan_id)
    emulator.push(Reply(text="read it all"))
    end = finished(srv, emulator, plan_id, "read the big file")
    assert [r.model for r in emulator.requests] == ["gpt-4.1", "gpt-4.1-long"]
    assert "filler" in sent(emulator.last_request)
    planner_rows = [r for r in usage_rows(srv, end.stream_id) if r[0] == "planner"]
    assert [r[1] for r in planner_rows] == ["openai/gpt-4.1-long"]


def test_input_too_big_for_every_model_fails_the_stream_with_the_numbers(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    put_models(  # a custom pack with no large-context model
        srv,
        plan_id,
        {
            "pack": "tight",
            "roles": {"planner": {"model": "openai/gpt-4.1", "max_input_tokens": 1_000}},
        },
    )
    load_big_context(srv, plan_id)
    events, end = run(srv, emulator, plan_id, "read the big file")
    assert end.status == "failed"
    assert end.error_code == "context_too_large"
    message = end.error_message or ""
    assert "planner" in message and "(1,000)" in message and "plancast rm" in message
    assert emulator.requests == []
    assert srv.stream_row(end.stream_id)["error_code"] == "context_too_large"


# -- usage, one row per call ------------------------------------------------------------------


def test_every_call_leaves_one_usage_row_with_its_role_and_no_text(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    marker = "PRIVATE-8d2b"
    emulator.push(
        Reply(text=f"{marker} reply.\n" + FILE_REPLY, input_tokens=321, output_tokens=54),
        Reply(text=f"{marker}-name", role="namer", input_tokens=11, output_tokens=3),
        Reply(text=f"Commit {marker}", role="committer", input_tokens=77, output_tokens=9),
    )
    _, end = run(srv, emulator, plan_id, f"prompt {marker}")
    assert end.status == "finished"
    rows = usage_rows(srv, end.stream_id)
    assert sorted(rows) == sorted(
        [
            ("planner", "openai/gpt-4.1", 321, 54),
            ("namer", "openai/gpt-5-mini", 11, 3),
            ("committer", "openai/gpt-5-mini", 77, 9),
        ]
    )
    every = query(srv.data_dir, "SELECT * FROM usage WHERE stream_id = ?", end.stream_id)
    assert len(every) == 3
    assert not any(marker.lower() in str(value).lower() for row in every for value in row)


# -- credentials for every provider a role may call -------------------------------------------


def test_a_role_on_another_provider_needs_its_key_before_any_work(
    srv: Server, emulator: Emulator
) -> None:
    plan_id = srv.new_plan()
    put_models(srv, plan_id, {"pack": "openai", "roles": {"namer": "anthropic/claude-emulated"}})
    before = kinds(srv, plan_id)
    start = start_message(plan_id, openai_creds(emulator))
    with srv.connect() as ws:
        send(ws, start)
        error = expect_error(ws)
    assert error.code == "missing_credentials"
    assert "ANTHROPIC_API_KEY" in error.message
    assert error.request_id == start.request_id
    assert srv.streams(plan_id) == []
    assert srv.convo(plan_id) == [] and kinds(srv, plan_id) == before
    assert emulator.all_requests == []

    # With both keys, the namer's call goes to Anthropic and the planner's to OpenAI.
    emulator.push(Reply(text="anthropic named it", role="namer"))
    both = start.with_fields(request_id="r-both-keys-1").with_credentials(
        openai_creds(emulator), anthropic_creds(emulator)
    )
    end = check_sequence(srv.run_stream(both, timeout=WAIT_S))
    assert end.status == "finished"
    assert [r.provider for r in emulator.requests] == ["openai"]
    (named,) = emulator.role_requests("namer")
    assert (named.provider, named.model, named.max_tokens) == ("anthropic", "claude-emulated", 32)
    assert plan_name(srv, plan_id) == "anthropic-named-it"


def test_unscripted_roles_get_the_emulators_defaults(srv: Server, emulator: Emulator) -> None:
    """The defaults the other tests lean on: a draft plan gets the namer's default name."""
    plan_id = srv.new_plan()
    emulator.push(Reply(text=FILE_REPLY))
    _, end = run(srv, emulator, plan_id)
    assert plan_name(srv, plan_id) == ROLE_DEFAULT_TEXT["namer"].replace(" ", "-")
    assert srv.stream_row(end.stream_id)["commit_message"] == ROLE_DEFAULT_TEXT["committer"]
