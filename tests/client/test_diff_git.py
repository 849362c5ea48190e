"""``plancast diff --git`` and ``--color``: git's extended format, checked against real git.

The format is compared with what ``git diff`` itself writes for the same change, and the
command's output is fed to ``git apply`` in a copy of the project: the files it gives must be
the files ``plancast apply`` writes.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from plancast.client.apply.gitdiff import EXECUTABLE, GitFile, git_diff
from plancast.shared import (
    DeleteFile,
    EditFile,
    MoveFile,
    UnsafePathError,
    WriteFile,
    op_to_dict,
)
from tests.client.commands_helpers import PLAN, FakeTerminal, Harness, make_harness

GIT = shutil.which("git") or "git"
HUNK_CONTEXT = re.compile(r"^(@@ [^@]* @@) .*$", re.MULTILINE)


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [GIT, "-c", "core.autocrlf=false", *args],
        cwd=repo,
        input=None if stdin is None else stdin.encode(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout.decode()  # as bytes: a "\r" stays


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.com")
    return path


def write_tree(
    root: Path, files: dict[str, str | None], executable: frozenset[str] | set[str] = frozenset()
) -> None:
    for name, text in files.items():
        path = root / name
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        path.chmod(0o755 if name in executable else 0o644)


def what_git_writes(
    tmp_path: Path, before: dict[str, str], after: dict[str, str | None], executable: set[str]
) -> str:
    repo = new_repo(tmp_path / "repo")
    write_tree(repo, before, executable)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "before")
    write_tree(repo, after, executable)
    git(repo, "add", "-A")
    written = git(repo, "diff", "--cached", "-M", "--no-color", "--no-ext-diff")
    return HUNK_CONTEXT.sub(r"\1", written)  # git adds the enclosing line; apply ignores it


TEXT = "".join(f"line {n}\n" for n in range(1, 12))
CASES: dict[str, tuple[dict[str, str], dict[str, str | None], GitFile]] = {
    "modified": (
        {"app.py": TEXT},
        {"app.py": TEXT.replace("line 6\n", "six\n")},
        GitFile("app.py", TEXT, TEXT.replace("line 6\n", "six\n")),
    ),
    "created": ({}, {"src/new.py": "a\nb\n"}, GitFile("src/new.py", None, "a\nb\n")),
    "deleted": ({"old.py": "x\ny\n"}, {"old.py": None}, GitFile("old.py", "x\ny\n", None)),
    "empty created": ({}, {"empty": ""}, GitFile("empty", None, "")),
    "empty deleted": ({"empty": ""}, {"empty": None}, GitFile("empty", "", None)),
    "moved unchanged": (
        {"a.py": TEXT},
        {"a.py": None, "pkg/b.py": TEXT},
        GitFile("pkg/b.py", TEXT, TEXT, source="a.py"),
    ),
    "no newline at the end": (
        {"n.txt": "one\ntwo"},
        {"n.txt": "one\nTWO"},
        GitFile("n.txt", "one\ntwo", "one\nTWO"),
    ),
    "newline added at the end": (
        {"n.txt": "one\ntwo"},
        {"n.txt": "one\ntwo\n"},
        GitFile("n.txt", "one\ntwo", "one\ntwo\n"),
    ),
    "crlf lines": (
        {"w.txt": "a\r\nb\r\nc\r\n"},
        {"w.txt": "a\r\nB\r\nc\r\n"},
        GitFile("w.txt", "a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n"),
    ),
    "a space in the path": (
        {"my dir/my file.txt": "a\n"},
        {"my dir/my file.txt": "b\n"},
        GitFile("my dir/my file.txt", "a\n", "b\n"),
    ),
    "a quote and non-ascii in the path": (
        {},
        {'q"uoté s.txt': "x\n"},
        GitFile('q"uoté s.txt', None, "x\n"),
    ),
    "executable deleted": (
        {"run.sh": "echo 1\n"},
        {"run.sh": None},
        GitFile("run.sh", "echo 1\n", None, mode=EXECUTABLE),
    ),
    "executable modified": (
        {"run.sh": "echo 1\n"},
        {"run.sh": "echo 2\n"},
        GitFile("run.sh", "echo 1\n", "echo 2\n", mode=EXECUTABLE),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_format_is_what_git_writes(
    tmp_path: Path, case: tuple[dict[str, str], dict[str, str | None], GitFile]
) -> None:
    before, after, change = case
    executable = {"run.sh"}
    assert git_diff(change) == what_git_writes(tmp_path, before, after, executable)


def test_a_move_with_changes_applies_with_git(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    write_tree(repo, {"a.py": TEXT, "keep.py": "k\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "before")
    moved = TEXT.replace("line 2\n", "two\n")
    patch = git_diff(GitFile("lib/b.py", TEXT, moved, source="a.py"))
    assert "rename from a.py\nrename to lib/b.py\n" in patch
    assert "similarity index" not in patch  # git's own estimate; left out when it changed
    git(repo, "apply", "--check", "--index", "-", stdin=patch)
    git(repo, "apply", "--index", "-", stdin=patch)
    assert not (repo / "a.py").exists()
    assert (repo / "lib" / "b.py").read_text() == moved
    assert "R" in git(repo, "status", "--porcelain")  # git sees the rename


def test_the_index_line_lets_git_apply_three_way(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    write_tree(repo, {"app.py": TEXT})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "before")
    patch = git_diff(GitFile("app.py", TEXT, TEXT.replace("line 2\n", "two\n")))
    mine = TEXT.replace("line 5\n", "five\n")  # the user edited a line of the hunk's context
    (repo / "app.py").write_text(mine)
    git(repo, "commit", "-q", "-a", "-m", "mine")
    plain = subprocess.run(
        [GIT, "apply", "--check", "-"], cwd=repo, input=patch.encode(), capture_output=True
    )
    assert plain.returncode != 0  # the context no longer matches
    git(repo, "apply", "--3way", "-", stdin=patch)  # git finds both blobs by their ids
    assert (repo / "app.py").read_text() == mine.replace("line 2\n", "two\n")


def test_nothing_changed_gives_nothing_and_nonsense_is_refused() -> None:
    assert git_diff(GitFile("same.py", "x\n", "x\n")) == ""
    with pytest.raises(ValueError, match="before or after"):
        git_diff(GitFile("ghost.py", None, None))
    with pytest.raises(UnsafePathError):
        git_diff(GitFile("../out.py", None, "x\n"))
    with pytest.raises(UnsafePathError):
        git_diff(GitFile("in.py", "x\n", "x\n", source="/etc/passwd"))


# -- the command -----------------------------------------------------------------------------


class PendingApi:
    """The server's pending changes for ``diff`` and ``apply`` (which marks them applied)."""

    def __init__(self, *ops: Any) -> None:
        self.pending = [
            {"id": f"chg_{n}", "path": op.path, "op": op_to_dict(op), "stream_id": None}
            for n, op in enumerate(ops)
        ]

    def get(self, path: str, **params: Any) -> Any:
        assert path == f"/plans/{PLAN}/changes", path
        return {"changes": list(self.pending)}

    def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        assert path == f"/plans/{PLAN}/changes/apply", path
        ids = set((body or {})["ids"])
        moved = [c for c in self.pending if c["id"] in ids]
        self.pending = [c for c in self.pending if c["id"] not in ids]
        return {"changes": moved}

    def close(self) -> None:
        pass


def project(tmp_path: Path, name: str) -> Harness:
    h = make_harness(tmp_path / name)
    h.write("app.py", TEXT)
    h.write("docs/notes.md", "# Notes\n\nsome text\n")
    h.write("crlf.txt", "one\r\ntwo\r\n")
    h.write("my file.txt", "spaced\n")
    h.write("lib/util.py", TEXT)
    h.write("obsolete.txt", "gone soon\n")
    h.write("run.sh", "echo run\n").chmod(0o755)
    h.write("same/name.txt", "kept as it is\n")
    return h


OPS = (
    EditFile("app.py", "line 5\n", "five\n"),
    EditFile("app.py", "line 10\n", "ten\n"),
    WriteFile("src/new.py", "def f():\n    return 1\n"),
    WriteFile("docs/notes.md", "# Notes\n\nother text\n"),
    EditFile("crlf.txt", "two\n", "TWO\n"),
    WriteFile("my file.txt", "spaced out\n"),
    WriteFile("empty.txt", ""),
    MoveFile("lib/util.py", "pkg/util.py"),
    EditFile("pkg/util.py", "line 3\n", "three\n"),
    DeleteFile("obsolete.txt"),
    DeleteFile("run.sh"),
    MoveFile("same/name.txt", "renamed/name.txt"),
)


def run_diff(h: Harness, *args: str) -> str:
    h.session.__dict__["api"] = PendingApi(*OPS)
    assert h.run("diff", *args) == 0, h.err.getvalue()
    return h.out.getvalue()


def test_the_git_output_applies_with_git_as_plancast_applies(tmp_path: Path) -> None:
    h = project(tmp_path, "project")
    patch = run_diff(h, "--git")
    assert patch.startswith("diff --git a/app.py b/app.py\n")
    assert "new file mode 100644\n" in patch and "--- a/my file.txt\t\n" in patch
    assert "rename from lib/util.py\nrename to pkg/util.py\n" in patch
    assert "-line 3\n+three\n" in patch
    assert "diff --git a/obsolete.txt b/obsolete.txt\ndeleted file mode 100644\n" in patch
    assert "deleted file mode 100755\n" in patch  # run.sh was executable
    assert "similarity index 100%\nrename from same/name.txt\nrename to renamed/name.txt\n" in patch

    # A git repository holding the project as it is now gets the patch from git.
    repo = new_repo(tmp_path / "copy")
    for path in h.root.rglob("*"):
        if path.is_file() and ".plancast" not in path.parts:
            target = repo / path.relative_to(h.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    for path in h.root.rglob("*"):
        if path.is_file() and ".plancast" not in path.parts:
            (repo / path.relative_to(h.root)).chmod(path.stat().st_mode)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "before")
    git(repo, "apply", "--check", "--index", "-", stdin=patch)
    git(repo, "apply", "--index", "-", stdin=patch)
    status = git(repo, "status", "--porcelain").splitlines()
    assert "R  lib/util.py -> pkg/util.py" in status and "D  run.sh" in status

    # plancast writes the same files.
    h.session.__dict__["api"] = PendingApi(*OPS)
    assert h.run("apply") == 0
    ours = {
        p.relative_to(h.root).as_posix(): p.read_bytes()
        for p in h.root.rglob("*")
        if p.is_file() and ".plancast" not in p.parts
    }
    theirs = {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.parts
    }
    assert ours == theirs
    assert ours["crlf.txt"] == b"one\r\nTWO\r\n"
    assert "lib/util.py" not in ours and "run.sh" not in ours
    out = h.out.getvalue()
    assert "moved lib/util.py → pkg/util.py" in out and "deleted obsolete.txt" in out


def test_the_git_output_is_only_the_patch(tmp_path: Path) -> None:
    h = make_harness(tmp_path / "project")
    h.session.__dict__["api"] = PendingApi()
    assert h.run("diff", "--git") == 0
    assert h.out.getvalue() == ""  # an empty patch; the note goes to stderr
    assert "no pending changes" in h.err.getvalue()


def test_the_plain_diff_keeps_carriage_returns(tmp_path: Path) -> None:
    out = run_diff(project(tmp_path, "project"))
    assert "-two\r\n+TWO\r\n" in out


def test_the_plain_diff_shows_a_move_as_a_rename_and_a_deletion_whole(tmp_path: Path) -> None:
    out = run_diff(project(tmp_path, "project"))
    assert "rename from lib/util.py\nrename to pkg/util.py\n" in out
    assert "--- a/lib/util.py\n+++ b/pkg/util.py\n" in out
    assert "--- a/obsolete.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone soon\n" in out
    assert "+++ b/lib/util.py" not in out and "--- a/pkg/util.py" not in out


def test_diff_of_named_files_includes_a_move_named_by_either_end(tmp_path: Path) -> None:
    out = run_diff(project(tmp_path, "project"), "pkg/util.py")
    assert out.startswith("diff --git a/lib/util.py b/pkg/util.py\n")
    assert "app.py" not in out and "obsolete" not in out


def coloured(out: str) -> bool:
    return "\x1b[32m+five\x1b[0m" in out and "\x1b[31m-line 5\x1b[0m" in out


@pytest.mark.parametrize("flag", ["--git", None])
def test_a_colour_terminal_gets_colour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str | None
) -> None:
    from plancast.client.ui.output import Output

    monkeypatch.delenv("NO_COLOR", raising=False)
    h = project(tmp_path, "project")
    terminal = FakeTerminal()
    h.session.output = Output(terminal, io.StringIO())  # colour decided by the terminal
    h.out = terminal
    out = run_diff(h, *([flag] if flag else []))
    assert coloured(out)
    assert "\x1b[36m@@ -2,10 +2,10 @@\x1b[0m" in out
    assert "\x1b[1m--- a/app.py\x1b[0m" in out
    if flag:
        assert "\x1b[1mdiff --git a/src/new.py b/src/new.py\x1b[0m" in out
        assert "\x1b[1mnew file mode 100644\x1b[0m" in out


def test_no_colour_with_no_color_or_a_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plancast.client.ui.output import Output

    monkeypatch.setenv("NO_COLOR", "1")
    h = project(tmp_path, "project")
    terminal = FakeTerminal()
    h.session.output = Output(terminal, io.StringIO())
    h.out = terminal
    assert "\x1b[" not in run_diff(h)
    monkeypatch.delenv("NO_COLOR")
    piped = project(tmp_path, "piped")
    piped.session.output = Output(piped.out, io.StringIO())
    assert "\x1b[" not in run_diff(piped)


def test_color_always_and_never_decide(tmp_path: Path) -> None:
    from plancast.client.ui.output import Output

    piped = project(tmp_path, "piped")  # NO_COLOR is set and stdout is a pipe
    assert coloured(run_diff(piped, "--color=always"))
    h = project(tmp_path, "tty")
    terminal = FakeTerminal()
    h.session.output = Output(terminal, io.StringIO(), color=True)
    h.out = terminal
    out = run_diff(h, "--color", "never")
    assert "\x1b[" not in out and "+five\n" in out
