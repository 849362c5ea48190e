"""A stream's other model calls and parts, as a user meets them through the real CLI: the
summarizer (``summary``, ``convo``), a failed summary, chat that changes nothing, auto-continue
and its bound, and the namer's plan name in ``plans``.

The real server process and the real ``plancast`` command, with replies from the provider
emulator. The server-level tests of the same behaviour are in ``tests/server/test_roles.py``;
these check that what the server does reaches the user, and that the CLI's settings reach the
server (``set-model --summary-tokens``, ``set-model --auto-continue``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from plancast.server.config import Settings
from plancast.server.llm import prompts
from tests.e2e.conftest import Cli
from tests.emulator.script import Reply
from tests.emulator.server import Emulator, RecordedRequest

pytestmark = pytest.mark.e2e

CONTINUE = "<pc:continue/>"
"""The line a reply ends with to ask for another part (docs/protocol.md, "The reply format")."""

OLDEST = "OLDEST-PROMPT-7f3a " + "alpha " * 400  # ~600 tokens
OLD_REPLY = "OLD-REPLY-51d0 " + "beta " * 400  # ~500 tokens: the two pass a budget of 1,000
SUMMARY = "SUMMARY-9c1e: they discussed alpha and beta."

PROVIDER_ATTEMPTS = Settings().provider_attempts
"""How often the live server (default settings) tries a call the provider refuses with a 5xx."""


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def texts(request: RecordedRequest) -> list[tuple[str, str]]:
    """(role, content) of each chat message (OpenAI form: the system prompt is the first)."""
    return [(m["role"], m["content"]) for m in request.messages]


def sent(request: RecordedRequest) -> str:
    return json.dumps(request.body)


def convo_json(cli: Cli) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads(ok(cli("convo", "--json")))
    return messages


def project_files(root: Path) -> dict[str, bytes]:
    """Every file of the project but plancast's own binding, with its bytes."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".plancast" not in path.relative_to(root).parts
    }


def long_conversation(cli: Cli, emulator: Emulator) -> None:
    """A plan summarized past 1,000 tokens, and two turns that pass that (nothing due yet)."""
    ok(cli("new"))
    ok(cli("set-model", "--summary-tokens", "1000"))
    assert "summarize past 1,000 tokens" in ok(cli("models"))
    emulator.push(Reply(text=OLD_REPLY, chunk_chars=200))
    told = ok(cli("tell", OLDEST))
    assert "OLD-REPLY-51d0" in told
    emulator.push(Reply(text="second answer"))
    assert "second answer" in ok(cli("chat", "second question"))
    # Three messages when the second turn was planned: too few to condense any.
    assert emulator.role_requests("summarizer") == []


# -- the summarizer ---------------------------------------------------------------------------


def test_summary_before_any_conversation(cli: Cli) -> None:
    ok(cli("new"))
    shown = cli("summary")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("no summary yet: the conversation (0 messages)")
    assert "`plancast models`" in shown.stdout
    assert json.loads(ok(cli("summary", "--json"))) is None


def test_a_long_conversation_is_summarized_and_shown_by_summary_and_convo(
    cli: Cli, emulator: Emulator
) -> None:
    long_conversation(cli, emulator)
    within = cli("summary")
    assert within.returncode == 0, within.stderr
    assert within.stdout.startswith("no summary yet: the conversation (4 messages)")
    assert json.loads(ok(cli("summary", "--json"))) is None

    emulator.push(
        Reply(text=f"  {SUMMARY}  \n", role="summarizer"),
        Reply(text="third answer"),
    )
    told = cli("tell", "third question")
    assert told.returncode == 0, told.stderr
    assert "third answer" in told.stdout
    assert "── done" in told.stderr

    # What the summarizer was asked: the three older messages, not the two kept.
    (asked,) = emulator.role_requests("summarizer")
    assert texts(asked)[0][1].startswith("You are plancast's summarizer.")
    assert "OLDEST-PROMPT-7f3a" in sent(asked) and "OLD-REPLY-51d0" in sent(asked)
    assert "second question" in sent(asked)
    assert "second answer" not in sent(asked) and "third question" not in sent(asked)

    # The planner got the summary in place of the older turns.
    planner = emulator.last_request
    assert texts(planner)[1:] == [
        ("user", prompts.SUMMARY_INTRO + SUMMARY),
        ("assistant", "second answer"),
        ("user", "third question"),
    ]
    assert "OLDEST-PROMPT-7f3a" not in sent(planner) and "OLD-REPLY-51d0" not in sent(planner)

    # `summary`: the summarizer's text (cleaned), and how many messages it covers.
    shown = cli("summary")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"summary of 3 earlier messages (3 since)\n{SUMMARY}\n"
    data = json.loads(ok(cli("summary", "--json")))
    assert (data["role"], data["content"], data["covers"], data["after"]) == (
        "summary",
        SUMMARY,
        3,
        3,
    )

    # `convo`: every message is still there, the summary before the turns it kept.
    messages = convo_json(cli)
    assert [m["role"] for m in messages] == [
        "user",
        "assistant",
        "user",
        "summary",
        "assistant",
        "user",
        "assistant",
    ]
    assert messages[3]["content"] == SUMMARY
    listed = ok(cli("convo"))
    header = "── summary (of the messages above)\n"
    assert listed.count(header) == 1
    at = listed.index(header)
    assert listed[at + len(header) :].startswith(SUMMARY + "\n")
    assert listed.index("second question") < at < listed.index("second answer")
    assert listed.index("OLDEST-PROMPT-7f3a") < at < listed.index("third question")

    # The next tell starts from the summary: nothing more to condense, no second summary.
    emulator.push(Reply(text="fourth answer"))
    assert "fourth answer" in ok(cli("tell", "fourth question"))
    assert len(emulator.role_requests("summarizer")) == 1
    after = texts(emulator.last_request)
    assert after[1] == ("user", prompts.SUMMARY_INTRO + SUMMARY)
    assert after[-1] == ("user", "fourth question")
    assert ok(cli("summary")).startswith("summary of 3 earlier messages (5 since)\n")


def test_a_failed_summary_does_not_block_the_tell(cli: Cli, emulator: Emulator) -> None:
    long_conversation(cli, emulator)
    emulator.push(
        *[Reply(role="summarizer", status=500, retry_after=0) for _ in range(PROVIDER_ATTEMPTS)],
        Reply(text="third answer despite it"),
    )
    told = cli("tell", "third question")
    assert told.returncode == 0, f"{told.stdout}\n{told.stderr}"
    assert "third answer despite it" in told.stdout
    assert "── done" in told.stderr
    assert len(emulator.role_requests("summarizer")) == PROVIDER_ATTEMPTS
    assert emulator.pending == 0

    # The planner got the whole conversation instead, and no summary was kept.
    planner = emulator.last_request
    assert "OLDEST-PROMPT-7f3a" in sent(planner) and "second answer" in sent(planner)
    assert not any(prompts.SUMMARY_INTRO in content for _, content in texts(planner))
    messages = convo_json(cli)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert messages[-1]["content"] == "third answer despite it"
    assert "── summary" not in ok(cli("convo"))
    shown = cli("summary")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("no summary yet: the conversation (6 messages)")


# -- chat changes nothing ---------------------------------------------------------------------

CHAT_REPLY = """You could add a module like this:

<pc:file path="greet.py">
def greet(name):
    return f"hello {name}"
</pc:file>

<pc:edit path="app.py">
<pc:find>
x = 1
</pc:find>
<pc:replace>
x = 2
</pc:replace>
</pc:edit>

Switch to tell mode when you want it.
"""


def test_chat_with_file_blocks_leaves_no_changes_and_writes_nothing(
    cli: Cli, emulator: Emulator
) -> None:
    project = cli.project
    (project / "app.py").write_text("x = 1\n")
    ok(cli("new"))
    ok(cli("load", "app.py"))
    before = project_files(project)

    emulator.push(Reply(text=CHAT_REPLY, chunk_chars=13))
    chatted = cli("chat", "how would you add a greeting?")
    assert chatted.returncode == 0, chatted.stderr
    assert "Switch to tell mode when you want it." in chatted.stdout
    assert "pending change" not in chatted.stdout
    assert emulator.role_requests("committer") == []  # no changes, no commit message
    assert emulator.role_requests("builder") == []

    shown = cli("diff")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "no pending changes\n"
    git_patch = cli("diff", "--git")
    assert git_patch.returncode == 0, git_patch.stderr
    assert git_patch.stdout == ""
    assert "no pending changes" in git_patch.stderr
    assert "0 pending change(s)" in ok(cli("current"))
    assert project_files(project) == before
    assert not (project / "greet.py").exists()

    # The reply is kept as said, blocks and all: it is a conversation, not a change.
    (_, reply) = convo_json(cli)
    assert reply["role"] == "assistant" and reply["mode"] == "chat"
    assert '<pc:file path="greet.py">' in reply["content"]


# -- auto-continue ----------------------------------------------------------------------------

PART_ONE = "Step one: the parser.\n" + CONTINUE + "\n"
PART_TWO = "Step two: the tests.\n" + CONTINUE + "\n"
PART_THREE = "Step three: the docs. All done.\n"


def test_a_reply_that_asks_to_continue_is_shown_whole_in_one_tell(
    cli: Cli, emulator: Emulator
) -> None:
    ok(cli("new"))
    emulator.push(Reply(text=PART_ONE), Reply(text=PART_THREE))
    told = cli("tell", "do it in steps")
    assert told.returncode == 0, f"{told.stdout}\n{told.stderr}"
    out = told.stdout
    assert "Step one: the parser." in out and "Step three: the docs. All done." in out
    assert out.index("Step one") < out.index("Step three")
    assert "── done" in told.stderr

    first, second = emulator.requests
    assert texts(second)[:-2] == texts(first)
    assert texts(second)[-2:] == [("assistant", PART_ONE), ("user", prompts.CONTINUE_PROMPT)]
    assert emulator.pending == 0
    messages = convo_json(cli)
    assert [m["role"] for m in messages] == ["user", "assistant"]  # one reply, in two parts
    assert messages[1]["content"] == PART_ONE + PART_THREE


def test_auto_continue_stops_at_the_bound_set_through_the_cli(cli: Cli, emulator: Emulator) -> None:
    ok(cli("new"))
    ok(cli("set-model", "--auto-continue", "1"))
    assert "auto-continue up to 1 times" in ok(cli("models"))
    emulator.push(Reply(text=PART_ONE), Reply(text=PART_TWO), Reply(text=PART_THREE))
    told = cli("tell", "do it in steps")
    assert told.returncode == 0, f"{told.stdout}\n{told.stderr}"
    assert "Step one" in told.stdout and "Step two" in told.stdout
    assert "Step three" not in told.stdout
    assert len(emulator.requests) == 2  # the first part and one continuation
    assert emulator.pending == 1  # the third part was never asked for
    assert convo_json(cli)[-1]["content"] == PART_ONE + PART_TWO

    # `continue` carries on from there: the third part, in a stream of its own.
    carried = cli("continue")
    assert carried.returncode == 0, f"{carried.stdout}\n{carried.stderr}"
    assert "Step three: the docs. All done." in carried.stdout
    assert len(emulator.requests) == 3 and emulator.pending == 0


def test_auto_continue_zero_never_continues(cli: Cli, emulator: Emulator) -> None:
    ok(cli("new"))
    ok(cli("set-model", "--auto-continue", "0"))
    emulator.push(Reply(text=PART_ONE), Reply(text=PART_THREE))
    told = ok(cli("tell", "do it in steps"))
    assert "Step one" in told and "Step three" not in told
    assert len(emulator.requests) == 1 and emulator.pending == 1


# -- the namer --------------------------------------------------------------------------------


def plan_rows(cli: Cli) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(cli("plans", "--json")))
    return rows


def test_the_namer_names_a_new_plan_after_its_first_prompt(cli: Cli, emulator: Emulator) -> None:
    created = ok(cli("new"))
    assert created.startswith("created plan plan-1 (")
    assert ok(cli("plans", "-q")) == "plan-1\n"

    emulator.push(
        Reply(text="Sure, here is how I would rate-limit it."),
        Reply(text="Add Login Rate-Limit!\n", role="namer"),
    )
    ok(cli("tell", "Please rate-limit the login endpoint."))
    (asked,) = emulator.role_requests("namer")
    assert texts(asked)[0][1].startswith("You are plancast's namer.")
    assert texts(asked)[1:] == [("user", "Please rate-limit the login endpoint.")]

    listed = ok(cli("plans"))
    assert listed.startswith("*   1  add-login-rate-limit  (pl_"), listed
    assert "plan-1" not in listed
    assert ok(cli("current")).startswith("add-login-rate-limit (pl_")
    (row,) = plan_rows(cli)
    assert (row["name"], row["current"], row["number"]) == ("add-login-rate-limit", True, 1)

    # Named once: a second prompt does not ask the namer again.
    emulator.push(Reply(text="And logged."))
    ok(cli("chat", "And log the refusals?"))
    assert len(emulator.role_requests("namer")) == 1
    assert ok(cli("plans", "-q")) == "add-login-rate-limit\n"

    # A plan the user named keeps its name; the next draft takes the name with a suffix.
    ok(cli("new", "-n", "my-work"))
    ok(cli("tell", "rate-limit the signup endpoint too"))
    assert len(emulator.role_requests("namer")) == 1
    ok(cli("new"))
    emulator.push(Reply(text="add-login-rate-limit", role="namer"))
    ok(cli("tell", "limit login attempts"))
    assert len(emulator.role_requests("namer")) == 2
    names = [row["name"] for row in plan_rows(cli)]
    assert sorted(names) == ["add-login-rate-limit", "add-login-rate-limit-2", "my-work"]
    current = [row["name"] for row in plan_rows(cli) if row["current"]]
    assert current == ["add-login-rate-limit-2"]
