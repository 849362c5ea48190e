"""History, branches and the plan's lifecycle, end to end: the real server process, the real
CLI, real streams from the provider emulator, and the files on disk.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

APP = "x = 1\n"
NOTES = "notes\n"
REPLY = """Add a greeting, bump x, extend the notes.

<pc:file path="greet.py">
def greet():
    return "hi"
</pc:file>

<pc:edit path="app.py">
<pc:find>
x = 1
</pc:find>
<pc:replace>
x = 2
</pc:replace>
</pc:edit>

<pc:file path="notes.md">
notes, by the model
</pc:file>
"""


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def head(cli: Cli) -> int:
    return int(json.loads(ok(cli("log", "--json")))["head"]["number"])


def _project(cli: Cli) -> Path:
    (cli.project / "app.py").write_text(APP)
    (cli.project / "notes.md").write_text(NOTES)
    return cli.project


def test_rewind_reverts_the_applied_files_and_undo_applies_them_again(
    cli: Cli, emulator: Emulator
) -> None:
    project = _project(cli)
    ok(cli("new", "-n", "history"))
    emulator.push(Reply(text=REPLY, chunk_chars=9))
    ok(cli("tell", "greet, bump, notes"))
    before_apply = head(cli)
    ok(cli("apply"))
    applied = head(cli)
    assert (project / "app.py").read_text() == "x = 2\n"
    (project / "notes.md").write_text("notes, by the model\nand by me\n")  # edited since

    log = ok(cli("log")).splitlines()
    assert log[0].startswith(f"* {applied:>4}  apply")
    assert any(line.split()[:2] == [str(before_apply), "reply"] for line in log)

    result = cli("rewind", str(before_apply), "--revert")
    assert result.returncode == 1, result.stderr  # one file is skipped, said so
    assert "reverted app.py" in result.stdout and "removed greet.py" in result.stdout
    assert "not restored: notes.md" in result.stderr and "changed on disk" in result.stderr
    assert (project / "app.py").read_text() == APP
    assert not (project / "greet.py").exists()
    assert (project / "notes.md").read_text() == "notes, by the model\nand by me\n"
    assert head(cli) == before_apply
    pending = ok(cli("diff"))
    assert "+++ b/greet.py" in pending  # the changes are pending again at that version

    every = ok(cli("log", "--all")).splitlines()
    assert any(line.startswith(f"· {applied:>4}") and "(on no branch)" in line for line in every)

    result = cli("rewind", "--undo", "--revert")
    assert result.returncode == 1  # notes.md is still not as the rewind left it
    assert "re-applied app.py" in result.stdout and "re-applied greet.py" in result.stdout
    assert (project / "app.py").read_text() == "x = 2\n"
    assert (project / "greet.py").read_text() == 'def greet():\n    return "hi"\n'
    assert head(cli) == applied
    assert "no pending changes" in ok(cli("diff"))


def test_without_a_terminal_a_rewind_leaves_the_files_and_says_how(
    cli: Cli, emulator: Emulator
) -> None:
    project = _project(cli)
    ok(cli("new"))
    emulator.push(Reply(text=REPLY))
    ok(cli("tell", "go"))
    before_apply = head(cli)
    ok(cli("apply"))
    result = cli("rewind", str(before_apply))
    assert result.returncode == 0
    assert "no terminal to ask" in result.stderr and "--revert" in result.stderr
    assert (project / "app.py").read_text() == "x = 2\n"  # left as it is


def test_branches_keep_their_changes_apart(cli: Cli, emulator: Emulator) -> None:
    project = _project(cli)
    ok(cli("new"))
    ok(cli("load", "app.py"))
    ok(cli("checkout", "-b", "experiment"))
    assert "branch experiment" in ok(cli("current"))
    ok(cli("load", "notes.md"))  # context belongs to the branch it was loaded on
    emulator.push(Reply(text=REPLY))
    ok(cli("tell", "try it on a branch"))
    assert "+++ b/greet.py" in ok(cli("diff"))
    branches = ok(cli("branches")).splitlines()
    assert branches[0].startswith("  main") and branches[1].startswith("* experiment")

    ok(cli("checkout", "main"))
    assert "no pending changes" in ok(cli("diff"))
    assert "no conversation yet" in ok(cli("convo"))
    listed = ok(cli("ls"))
    assert "app.py" in listed  # loaded before the branch: on both
    assert "notes.md" not in listed  # loaded on the experiment only

    emulator.push(Reply(text="Only a thought on main."))
    ok(cli("chat", "and on main?"))
    ok(cli("checkout", "experiment"))
    convo = ok(cli("convo"))
    assert "try it on a branch" in convo and "and on main?" not in convo
    assert "notes.md" in ok(cli("ls"))

    assert cli("delete-branch", "experiment").returncode == 1  # the current one
    ok(cli("checkout", "main"))
    ok(cli("delete-branch", "experiment"))
    assert [line.split()[:2] for line in ok(cli("branches")).splitlines()] == [["*", "main"]]
    assert not (project / "greet.py").exists()  # nothing was ever applied
    bad = cli("checkout", "-b", "no/slashes")
    assert bad.returncode == 1 and "bad branch name" in bad.stderr


def test_a_running_stream_keeps_its_branch_and_plan_in_place(cli: Cli, emulator: Emulator) -> None:
    _project(cli)
    ok(cli("new"))
    ok(cli("load", "app.py"))
    emulator.push(Reply(text="word " * 200, chunk_chars=5, trickle=0.05))
    stream_id = ok(cli("tell", "--bg", "go slowly")).strip()
    busy = cli("rewind", "1")
    assert busy.returncode == 1 and stream_id in busy.stderr
    busy = cli("delete-plan", "--yes")
    assert busy.returncode == 1 and stream_id in busy.stderr
    ok(cli("checkout", "-b", "elsewhere"))
    ok(cli("rewind", "1"))  # another branch is free
    ok(cli("checkout", "main"))
    assert f"stream {stream_id} running" in ok(cli("branches"))
    ok(cli("stop", stream_id))


def test_rename_archive_and_delete_a_plan(cli: Cli) -> None:
    _project(cli)
    ok(cli("new", "-n", "first"))
    ok(cli("new", "-n", "second"))
    ok(cli("rename", "checkout-flow"))
    assert "checkout-flow" in ok(cli("current"))
    clash = cli("rename", "first")
    assert clash.returncode == 1 and "already has a plan named 'first'" in clash.stderr

    ok(cli("archive", "first"))
    assert ok(cli("plans", "-q")).split() == ["checkout-flow"]
    assert "(archived)" in ok(cli("plans", "--archived"))
    ok(cli("cd", "first"))  # an archived plan can still be read
    assert "first" in ok(cli("current")) and "archived" in ok(cli("current"))
    ok(cli("unarchive", "first"))
    assert ok(cli("plans", "-q")).split() == ["first", "checkout-flow"]

    refused = cli("delete-plan")  # no terminal and no --yes
    assert refused.returncode == 1 and "--yes" in refused.stderr
    ok(cli("delete-plan", "--yes"))
    assert ok(cli("plans", "-q", "--archived")).split() == ["checkout-flow"]
    assert cli("current").returncode == 1  # no current plan any more
    ok(cli("cd", "checkout-flow"))
