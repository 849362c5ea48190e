"""Reviewing changes end to end: ``diff --git`` into real git, ``apply --commit``,
``reject --review`` hunk by hunk, and ``usage``: the real server, the real CLI, files on disk.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

GIT = shutil.which("git") or "git"
LINES = "".join(f"value_{n} = {n}\n" for n in range(1, 31))
APP = "import os\n\nx = 1\nprint(x)\n"

REPLY = """I'll add a greeting, bump x and rewrite the notes.

<pc:file path="src/greet.py">
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

<pc:file path="docs/notes.md">
# Notes

Rewritten.
</pc:file>

<pc:move path="lib/tool.py" to="pkg/tool.py" />
<pc:delete path="obsolete.txt" />

Done.
"""

TWO_EDITS = """Two changes to the settings.

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
"""

COMMITTER = "Greet people and bump x\n\nAdds src/greet.py and rewrites the notes."


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [GIT, *args], cwd=repo, input=stdin, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def init_repo(path: Path) -> None:
    git(path, "init", "-q")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")


def files_of(root: Path, skip: str) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and skip not in p.relative_to(root).parts
        and ".plancast" not in p.relative_to(root).parts
    }  # fmt: skip


def project_files(project: Path) -> Path:
    """The files ``REPLY`` changes, as they are before it."""
    (project / "app.py").write_text(APP)
    (project / "docs").mkdir()
    (project / "docs" / "notes.md").write_text("# Notes\n\nOld.\n")
    (project / "lib").mkdir()
    (project / "lib" / "tool.py").write_text("def tool():\n    return 1\n")
    (project / "obsolete.txt").write_text("old\n")
    return project


def test_the_git_diff_applies_with_git_and_apply_commits_it(
    cli: Cli, emulator: Emulator, tmp_path: Path
) -> None:
    project = project_files(cli.project)
    init_repo(project)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    ok(cli("new", "-n", "review"))
    assert git(project, "status", "--porcelain") == ""  # .plancast/ stays out of git

    emulator.push(Reply(text=REPLY, chunk_chars=11))
    emulator.push(Reply(text=COMMITTER, role="committer"))
    ok(cli("tell", "add a greeting and bump x"))

    patch = ok(cli("diff", "--git"))
    assert "diff --git a/src/greet.py b/src/greet.py\nnew file mode 100644\n" in patch
    assert "rename from lib/tool.py\nrename to pkg/tool.py\n" in patch
    assert "diff --git a/obsolete.txt b/obsolete.txt\ndeleted file mode 100644\n" in patch
    assert "\x1b[" not in patch  # piped: no colour
    coloured = ok(cli("diff", "--git", "--color=always"))
    assert "\x1b[32m+x = 2\x1b[0m" in coloured

    copy = tmp_path / "copy"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".plancast"))
    git(copy, "update-index", "-q", "--refresh")  # a copied index: new inodes, same files
    git(copy, "apply", "--check", "--index", "-", stdin=patch)
    git(copy, "apply", "--index", "-", stdin=patch)

    applied = ok(cli("apply", "--commit"))
    sha = git(project, "rev-parse", "--short", "HEAD").strip()
    assert f"committed {sha} Greet people and bump x" in applied
    assert git(project, "log", "-1", "--format=%B").strip() == COMMITTER
    changed = git(project, "show", "--name-status", "-M", "--format=", "HEAD").split("\n")
    assert sorted(c for c in changed if c) == [
        "A\tsrc/greet.py",
        "D\tobsolete.txt",
        "M\tapp.py",
        "M\tdocs/notes.md",
        "R100\tlib/tool.py\tpkg/tool.py",
    ]
    assert git(project, "status", "--porcelain") == ""
    assert files_of(project, ".git") == files_of(copy, ".git")


def test_apply_commit_outside_a_repository_applies_nothing(cli: Cli, emulator: Emulator) -> None:
    project_files(cli.project)
    ok(cli("new"))
    emulator.push(Reply(text=REPLY))
    ok(cli("tell", "go"))
    result = cli("apply", "--commit", "-m", "never")
    assert result.returncode == 1
    assert "needs a git repository" in result.stderr
    assert (cli.project / "app.py").read_text() == APP
    assert not (cli.project / "src").exists()
    assert (cli.project / "obsolete.txt").exists() and (cli.project / "lib" / "tool.py").exists()
    assert "src/greet.py" in ok(cli("diff"))  # still pending


def test_reject_review_drops_one_hunk_and_usage_counts_the_calls(
    cli: Cli, emulator: Emulator
) -> None:
    settings = cli.project / "settings.py"
    settings.write_text(LINES)
    ok(cli("new", "-n", "settings"))
    emulator.push(Reply(text=TWO_EDITS, input_tokens=1234, output_tokens=56))
    ok(cli("tell", "change two settings"))

    # The first hunk is rejected, the second kept: it stays pending as one write.
    reviewed = cli("reject", "--review", input="y\nn\n")
    assert reviewed.returncode == 0, reviewed.stderr
    assert "rejected 1 of 2 hunks of settings.py" in reviewed.stdout
    assert "reject hunk 1/2?" in reviewed.stderr and "reject hunk 2/2?" in reviewed.stderr
    assert settings.read_text() == LINES  # rejecting writes nothing
    diff = ok(cli("diff"))
    assert "+value_28 = 2800" in diff and "value_2 = 200" not in diff
    ok(cli("apply"))
    assert settings.read_text() == LINES.replace("value_28 = 28\n", "value_28 = 2800\n")
    assert "no pending changes" in ok(cli("diff"))

    report = json.loads(ok(cli("usage", "--json")))
    (planner,) = [g for g in report["by_role"] if g["key"] == "planner"]
    assert (planner["calls"], planner["input_tokens"], planner["output_tokens"]) == (1, 1234, 56)
    assert report["total"]["calls"] >= 1
    assert any(g["key"] == "openai/gpt-4.1" for g in report["by_model"])
    table = ok(cli("usage"))
    assert "by model" in table and "planner" in table and "1,234" in table
    project = json.loads(ok(cli("usage", "--project", "--json")))
    assert project["total"] == report["total"]
    assert [g["name"] for g in project["by_plan"]] == ["settings"]
