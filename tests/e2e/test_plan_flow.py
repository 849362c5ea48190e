"""A plan from start to end, the way a user runs it: the real server process, the real CLI, a
real git repository, and replies from the provider emulator (the builder's and the committer's
included).

One run: ``new``, ``load``, ``tell`` (a reply whose edit needs the builder, a new file, and two
edits of another file), ``diff`` and ``diff --git``, ``reject --review`` of one hunk, ``apply
--commit``, then ``log``, a ``rewind --revert`` to before the reply and its ``--undo``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cli
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

GIT = shutil.which("git") or "git"

APP = """import sys


def greet_all(names):
    for name in names:
        print("hello", name)


if __name__ == "__main__":
    greet_all(sys.argv[1:])
"""
APP_REBUILT = APP.replace("import sys\n", "import sys\n\nfrom greet import greet\n").replace(
    'print("hello", name)', "print(greet(name))"
)
SETTINGS = "".join(f"value_{n} = {n}\n" for n in range(1, 31))
SETTINGS_KEPT = SETTINGS.replace("value_28 = 28\n", "value_28 = 2800\n")
GREET = 'def greet(name):\n    return f"hello {name}"\n'

# The edit of app.py quotes the file wrongly (single quotes, no import), so it does not land
# on the server: the builder writes the file again.
REPLY = f"""Greet through a function, and change two settings.

<pc:edit path="app.py">
<pc:find>
    for name in names:
        print('hello', name)
</pc:find>
<pc:replace>
    for name in names:
        print(greet(name))
</pc:replace>
</pc:edit>

<pc:file path="greet.py">
{GREET}</pc:file>

<pc:edit path="settings.py">
<pc:find>
value_2 = 2
</pc:find>
<pc:replace>
value_2 = 200
</pc:replace>
</pc:edit>

<pc:edit path="settings.py">
<pc:find>
value_28 = 28
</pc:find>
<pc:replace>
value_28 = 2800
</pc:replace>
</pc:edit>

That is all.
"""
BUILDER = f'<pc:file path="app.py">\n{APP_REBUILT}</pc:file>\n'
COMMITTER = "Greet through greet()\n\nMoves the greeting into greet.py and raises value_28."


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [GIT, *args], cwd=repo, input=stdin, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def columns(line: str) -> list[str]:
    """A ``log`` line's words after its mark (``*`` the head, ``·`` off the branch, or blank)."""
    return line[2:].split()


def versions(cli: Cli, *flags: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(cli("log", "--json", *flags)))
    return data


def test_a_plan_from_tell_to_commit_to_rewind_and_back(cli: Cli, emulator: Emulator) -> None:
    project = cli.project
    (project / "app.py").write_text(APP)
    (project / "settings.py").write_text(SETTINGS)
    git(project, "init", "-q")
    git(project, "config", "user.name", "Plan Tester")
    git(project, "config", "user.email", "plan-tester@example.com")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    start = git(project, "rev-parse", "HEAD").strip()

    ok(cli("new", "-n", "greetings"))
    loaded = ok(cli("load", "app.py", "settings.py"))
    assert "app.py" in loaded and "settings.py" in loaded
    assert git(project, "status", "--porcelain") == ""  # plancast's own files stay out of git

    emulator.push(
        Reply(text=REPLY, chunk_chars=17),
        Reply(text=BUILDER, role="builder"),
        Reply(text=COMMITTER, role="committer"),
    )
    told = ok(cli("tell", "greet through a function and change two settings"))
    assert "4 pending change(s) to 3 file(s)" in told
    (rebuild,) = emulator.role_requests("builder")
    assert "print('hello', name)" in json.dumps(rebuild.body)  # the proposal went to it
    assert (project / "app.py").read_text() == APP  # nothing is written before `apply`

    # -- what is pending: everything the reply proposed, the builder's app.py included
    shown = ok(cli("diff"))
    assert '-        print("hello", name)\n+        print(greet(name))\n' in shown
    assert "+from greet import greet\n" in shown
    assert "+++ b/greet.py" in shown and '+    return f"hello {name}"\n' in shown
    assert "-value_2 = 2\n+value_2 = 200\n" in shown
    assert "-value_28 = 28\n+value_28 = 2800\n" in shown
    assert shown.count("@@ ") == 4  # app.py, greet.py, and settings.py's two hunks

    patch = ok(cli("diff", "--git"))
    assert "diff --git a/greet.py b/greet.py\nnew file mode 100644\n" in patch
    assert "diff --git a/app.py b/app.py\n" in patch
    git(project, "apply", "--check", "-", stdin=patch)

    # -- drop one hunk: the first of settings.py (app.py and greet.py are kept)
    reviewed = cli("reject", "--review", input="n\nn\ny\nn\n")
    assert reviewed.returncode == 0, reviewed.stderr
    questions = [q for q in reviewed.stderr.split("? [") if "reject" in q]
    assert len(questions) == 4, reviewed.stderr
    assert "reject hunk 1/2?" in reviewed.stderr and "reject hunk 2/2?" in reviewed.stderr
    assert "rejected 1 of 2 hunks of settings.py; the other 1 stay pending" in reviewed.stdout
    assert (project / "settings.py").read_text() == SETTINGS  # rejecting writes nothing
    kept = ok(cli("diff"))
    assert "value_2 = 200" not in kept and "+value_28 = 2800\n" in kept
    assert "+++ b/greet.py" in kept and "+        print(greet(name))\n" in kept

    # -- apply and commit exactly what was kept, with the committer's message
    applied = ok(cli("apply", "--commit"))
    sha = git(project, "rev-parse", "--short", "HEAD").strip()
    assert f"committed {sha} Greet through greet()" in applied
    assert git(project, "log", "-1", "--format=%B").strip() == COMMITTER
    assert git(project, "rev-parse", "HEAD~1").strip() == start
    assert git(project, "log", "--format=%an <%ae>", "-1").strip() == (
        "Plan Tester <plan-tester@example.com>"
    )
    changed = git(project, "show", "--name-status", "--format=", "HEAD").split("\n")
    assert sorted(c for c in changed if c) == ["A\tgreet.py", "M\tapp.py", "M\tsettings.py"]
    assert git(project, "show", "HEAD:app.py") == APP_REBUILT
    assert git(project, "show", "HEAD:greet.py") == GREET
    assert git(project, "show", "HEAD:settings.py") == SETTINGS_KEPT
    assert git(project, "status", "--porcelain") == ""
    assert "no pending changes" in ok(cli("diff"))

    # -- the log: every step is a version
    history = versions(cli)
    kinds = [v["kind"] for v in history["versions"]]
    assert kinds[-4:] == ["prompt", "reply", "reject", "apply"], kinds
    numbers = {v["kind"]: v["number"] for v in history["versions"]}
    before_reply, applied_at = numbers["prompt"], numbers["apply"]
    assert history["head"]["number"] == applied_at
    log = ok(cli("log")).splitlines()
    assert log[0].startswith(f"* {applied_at:>4}  apply")
    for kind in ("prompt", "reply", "reject", "apply"):
        assert any(columns(line)[:2] == [str(numbers[kind]), kind] for line in log), log
    every_number = [v["number"] for v in versions(cli, "--all")["versions"]]
    assert sorted(every_number) == list(range(1, applied_at + 1))

    # -- rewind to before the reply: the files on disk go back to what they were
    rewound = cli("rewind", str(before_reply), "--revert")
    assert rewound.returncode == 0, rewound.stderr
    assert f"is at version {before_reply} (was {applied_at})" in rewound.stdout
    assert "reverted app.py" in rewound.stdout and "reverted settings.py" in rewound.stdout
    assert "removed greet.py" in rewound.stdout
    assert (project / "app.py").read_bytes() == APP.encode()
    assert (project / "settings.py").read_bytes() == SETTINGS.encode()
    assert not (project / "greet.py").exists()
    assert git(project, "diff", "--name-status", start).split("\n")[:-1] == []  # as at the start
    assert versions(cli)["head"]["number"] == before_reply
    assert "no pending changes" in ok(cli("diff"))
    on_branch = [v["number"] for v in versions(cli)["versions"]]
    assert max(on_branch) == before_reply
    left = [line for line in ok(cli("log", "--all")).splitlines() if "(on no branch)" in line]
    assert sorted(int(columns(line)[0]) for line in left) == list(
        range(before_reply + 1, applied_at + 1)
    )

    # -- undo the rewind: the plan and its applied files come back
    undone = cli("rewind", "--undo", "--revert")
    assert undone.returncode == 0, undone.stderr
    assert f"undid the last rewind: branch main is at version {applied_at}" in undone.stdout
    assert "re-applied app.py" in undone.stdout and "re-applied greet.py" in undone.stdout
    assert "re-applied settings.py" in undone.stdout
    assert (project / "app.py").read_text() == APP_REBUILT
    assert (project / "greet.py").read_text() == GREET
    assert (project / "settings.py").read_text() == SETTINGS_KEPT
    assert git(project, "status", "--porcelain") == ""  # the commit's files, exactly
    assert versions(cli)["head"]["number"] == applied_at
    assert "no pending changes" in ok(cli("diff"))

    # Nothing was lost on the way: every version is still listed, and on the branch again.
    every = versions(cli, "--all")["versions"]
    assert sorted(v["number"] for v in every) == list(range(1, applied_at + 1))
    assert all(v["on_branch"] for v in every)
    listed = ok(cli("log", "--all"))
    assert "(on no branch)" not in listed
    for number in range(1, applied_at + 1):
        assert any(columns(line)[:1] == [str(number)] for line in listed.splitlines()), number
