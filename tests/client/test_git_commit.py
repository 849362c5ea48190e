"""``apply --commit``: exactly the applied files, committed with real git in a temp repository.

Each repository sets its own ``user.name`` and ``user.email``; the suite's environment points
git's global config into a temp folder (``tests/conftest.py``), so nothing global is read or
written.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from plancast.client.apply import gitcommit
from plancast.client.apply.gitcommit import FileChange, GitCommitError, default_message
from plancast.shared import (
    DeleteFile,
    EditFile,
    FileOp,
    MoveFile,
    PlancastError,
    WriteFile,
    op_to_dict,
)
from tests.client.commands_helpers import PLAN, Harness, make_harness

GIT = shutil.which("git") or "git"
APP = "def main():\n    return 1\n"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([GIT, *args], cwd=repo, capture_output=True, text=True, check=False)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


class CommitApi:
    """Pending changes (made by streams), the streams' commit messages, and the conversation."""

    def __init__(
        self,
        *ops: FileOp,
        stream_id: str | None = "st_1",
        commit_messages: dict[str, str | None] | None = None,
        prompts: tuple[str, ...] = ("add a main function",),
    ) -> None:
        self.pending = [
            {"id": f"chg_{n}", "path": op.path, "op": op_to_dict(op), "stream_id": stream_id}
            for n, op in enumerate(ops)
        ]
        self.applied: list[str] = []
        self.commit_messages = commit_messages or {}
        self.prompts = prompts
        self.calls: list[str] = []

    def get(self, path: str, **params: Any) -> Any:
        self.calls.append(path)
        if path == f"/plans/{PLAN}/changes":
            return {"changes": list(self.pending)}
        if path.startswith("/streams/"):
            stream_id = path.removeprefix("/streams/")
            return {"id": stream_id, "commit_message": self.commit_messages.get(stream_id)}
        if path == f"/plans/{PLAN}/convo":
            messages = [{"role": "user", "content": p} for p in self.prompts]
            return {"messages": messages + [{"role": "assistant", "content": "sure"}]}
        raise AssertionError(f"unexpected GET {path}")

    def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        ids = list((body or {})["ids"])
        if path == f"/plans/{PLAN}/changes/apply":
            self.applied += ids
        else:
            assert path == f"/plans/{PLAN}/changes/reject", path
        self.pending = [c for c in self.pending if c["id"] not in ids]
        return {"changes": []}

    def close(self) -> None:
        pass


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    """A project that is a git repository with one commit (app.py), bound to a plan."""
    h = make_harness(tmp_path / "project")
    git(h.root, "init", "-q")
    git(h.root, "config", "user.name", "Test User")
    git(h.root, "config", "user.email", "test@example.com")
    h.write("app.py", APP)
    h.write(".gitignore", ".plancast/\n*.log\n")
    git(h.root, "add", "-A")
    git(h.root, "commit", "-q", "-m", "start")
    return h


def use(h: Harness, api: CommitApi) -> CommitApi:
    h.session.__dict__["api"] = api
    return api


def last_commit(h: Harness) -> tuple[str, list[str]]:
    """The message of HEAD and the paths it changed."""
    message = git(h.root, "log", "-1", "--format=%B")
    files = git(h.root, "show", "--name-status", "--format=", "HEAD").split("\n")
    return message, sorted(line for line in files if line)


OPS = (
    EditFile("app.py", "return 1\n", "return 2\n"),
    WriteFile("src/greet.py", "def greet():\n    return 'hi'\n"),
)


def test_exactly_the_applied_files_are_committed_with_the_message_given(h: Harness) -> None:
    h.write("unrelated.txt", "mine\n")
    git(h.root, "add", "unrelated.txt")  # staged by the user: must stay staged, uncommitted
    h.write("notes.txt", "untracked\n")
    api = use(h, CommitApi(*OPS))
    assert h.run("apply", "--commit", "-m", "Bump main and add greet") == 0
    message, files = last_commit(h)
    assert message == "Bump main and add greet\n\n"
    assert files == ["A\tsrc/greet.py", "M\tapp.py"]
    status = git(h.root, "status", "--porcelain")
    assert "A  unrelated.txt" in status and "?? notes.txt" in status
    assert api.applied == ["chg_0", "chg_1"]
    assert "/streams/st_1" not in api.calls  # -m wins: no need to ask
    out = h.out.getvalue()
    sha = git(h.root, "rev-parse", "--short", "HEAD").strip()
    assert f"committed {sha} Bump main and add greet" in out


def test_the_committer_message_of_the_stream_is_used(h: Harness) -> None:
    committer = "Return 2 from main\n\nAlso add a greeting helper.\n"
    use(h, CommitApi(*OPS, commit_messages={"st_1": committer}))
    assert h.run("apply", "--commit") == 0
    message, _ = last_commit(h)
    assert message.strip() == committer.strip()


def test_the_messages_of_several_streams_are_joined_in_order(h: Harness) -> None:
    api = CommitApi(*OPS, commit_messages={"st_1": "First", "st_2": "Second"})
    api.pending[1]["stream_id"] = "st_2"
    use(h, api)
    assert h.run("apply", "--commit") == 0
    assert last_commit(h)[0].strip() == "First\n\nSecond"


def test_without_a_committer_message_one_is_made_from_the_prompt(h: Harness) -> None:
    prompt = "  make main return two and add a greeting helper   \nwith details below\n"
    use(h, CommitApi(*OPS, commit_messages={"st_1": None}, prompts=("older", prompt)))
    assert h.run("apply", "--commit") == 0
    message, _ = last_commit(h)
    assert message == (
        "make main return two and add a greeting helper\n\n"
        "Applied with plancast:\n  M app.py\n  A src/greet.py\n\n"
    )


def test_moves_and_deletions_are_committed_as_git_sees_them(h: Harness) -> None:
    h.write("lib/tool.py", "def tool():\n    pass\n")
    h.write("old.py", "old\n")
    git(h.root, "add", "-A")
    git(h.root, "commit", "-q", "-m", "more")
    ops = (MoveFile("lib/tool.py", "pkg/tool.py"), DeleteFile("old.py"), *OPS)
    use(h, CommitApi(*ops, prompts=("reorganise the tools",)))
    assert h.run("apply", "--commit") == 0
    message, _ = last_commit(h)
    assert message == (
        "reorganise the tools\n\nApplied with plancast:\n"
        "  M app.py\n  D old.py\n  R lib/tool.py -> pkg/tool.py\n  A src/greet.py\n\n"
    )
    status = git(h.root, "show", "--name-status", "-M", "--format=", "HEAD").split("\n")
    assert sorted(s for s in status if s) == [
        "A\tsrc/greet.py",
        "D\told.py",
        "M\tapp.py",
        "R100\tlib/tool.py\tpkg/tool.py",
    ]
    assert git(h.root, "status", "--porcelain") == ""


def test_not_a_git_repository_stops_before_anything_is_written(tmp_path: Path) -> None:
    h = make_harness(tmp_path / "plain")
    h.write("app.py", APP)
    api = use(h, CommitApi(*OPS))
    with pytest.raises(GitCommitError, match="needs a git repository"):
        h.run("apply", "--commit")
    assert (h.root / "app.py").read_text() == APP
    assert not (h.root / "src").exists()
    assert api.applied == []


def test_git_missing_stops_before_anything_is_written(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(h.root / "no-such-bin"))
    api = use(h, CommitApi(*OPS))
    with pytest.raises(GitCommitError, match="git is not installed"):
        h.run("apply", "-m", "msg")  # -m alone asks for a commit
    assert (h.root / "app.py").read_text() == APP
    assert api.applied == []


def test_nothing_applied_is_nothing_to_commit(h: Harness) -> None:
    api = use(h, CommitApi(EditFile("app.py", "nowhere\n", "x\n")))
    head = git(h.root, "rev-parse", "HEAD")
    with pytest.raises(GitCommitError, match="nothing was applied"):
        h.run("apply", "--commit")
    assert git(h.root, "rev-parse", "HEAD") == head
    assert api.applied == []
    assert "not applied: app.py" in h.err.getvalue()


def test_a_failed_commit_leaves_the_apply_done_and_says_so(h: Harness) -> None:
    hook = h.root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint failed' >&2\nexit 1\n")
    hook.chmod(0o755)
    api = use(h, CommitApi(*OPS))
    head = git(h.root, "rev-parse", "HEAD")
    with pytest.raises(PlancastError) as caught:
        h.run("apply", "--commit", "-m", "x")
    message = caught.value.message
    assert "lint failed" in message and "applied" in message and "not committed" in message
    assert git(h.root, "rev-parse", "HEAD") == head
    assert (h.root / "app.py").read_text() == APP.replace("return 1", "return 2")
    assert (h.root / "src" / "greet.py").exists()
    assert api.applied == ["chg_0", "chg_1"]  # the apply stays done
    assert "?? src/" in git(h.root, "status", "--porcelain")  # the new file is unstaged again


def test_an_ignored_new_file_is_left_out_and_named(h: Harness) -> None:
    use(h, CommitApi(*OPS, WriteFile("debug.log", "noise\n")))
    assert h.run("apply", "--commit", "-m", "x") == 0
    _, files = last_commit(h)
    assert files == ["A\tsrc/greet.py", "M\tapp.py"]
    assert "git ignores them: debug.log" in h.err.getvalue()
    assert (h.root / "debug.log").exists()


def test_a_project_in_a_subfolder_of_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    h = make_harness(repo / "sub" / "project")
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    h.write("app.py", APP)
    (repo / "other.txt").write_text("o\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    (repo / "other.txt").write_text("changed\n")
    use(h, CommitApi(*OPS))
    assert h.run("apply", "--commit", "-m", "sub") == 0
    files = git(repo, "show", "--name-status", "--format=", "HEAD").split()
    assert files == ["M", "sub/project/app.py", "A", "sub/project/src/greet.py"]
    assert " M other.txt" in git(repo, "status", "--porcelain")


def test_apply_review_commits_what_it_wrote(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    use(h, CommitApi(*OPS))
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\ny\n"))  # skip app.py, take greet.py
    assert h.run("apply", "--review", "--commit", "-m", "only greet") == 0
    assert last_commit(h)[1] == ["A\tsrc/greet.py"]
    assert (h.root / "app.py").read_text() == APP


# -- the module ------------------------------------------------------------------------------


def test_deleted_and_moved_paths_are_committed_when_git_tracks_them(h: Harness) -> None:
    h.write("old.py", "old\n")
    h.write("move_me.py", "m\n")
    git(h.root, "add", "-A")
    git(h.root, "commit", "-q", "-m", "more")
    (h.root / "old.py").unlink()
    (h.root / "move_me.py").rename(h.root / "moved.py")
    (h.root / "never_tracked.py").write_text("x\n")
    (h.root / "never_tracked.py").unlink()  # gone, and git never knew it
    changes = [
        FileChange("old.py", "D"),
        FileChange("moved.py", "R", source="move_me.py"),
        FileChange("never_tracked.py", "D"),
    ]
    done = gitcommit.commit(gitcommit.check(h.root), h.root, changes, "tidy\n")
    assert done.paths == ("move_me.py", "moved.py", "old.py")
    status = git(h.root, "show", "--name-status", "-M", "--format=", "HEAD").split("\n")
    assert sorted(s for s in status if s) == ["D\told.py", "R100\tmove_me.py\tmoved.py"]


def test_paths_are_taken_literally(h: Harness) -> None:
    h.write("*.py", "a star\n")
    h.write("b.py", "b\n")
    git(h.root, "add", "-A")
    git(h.root, "commit", "-q", "-m", "odd names")
    h.write("*.py", "still a star\n")
    h.write("b.py", "changed\n")
    done = gitcommit.commit(gitcommit.check(h.root), h.root, [FileChange("*.py", "M")], "x")
    assert done.paths == ("*.py",)
    assert " M b.py" in git(h.root, "status", "--porcelain")


def test_nothing_to_commit_is_an_error(h: Harness) -> None:
    with pytest.raises(GitCommitError, match="nothing"):
        gitcommit.commit(gitcommit.check(h.root), h.root, [FileChange("app.py", "M")], "x")
    with pytest.raises(GitCommitError, match="nothing was applied"):
        gitcommit.commit(gitcommit.check(h.root), h.root, [], "x")


def test_the_default_subject_is_cut_at_a_word_to_72_characters() -> None:
    files = [FileChange("b.py", "M"), FileChange("a.py", "A"), FileChange("c.py", "R", "z.py")]
    long = "refactor " + "the configuration loader " * 5
    message = default_message(long, files)
    subject, blank, *body = message.split("\n")
    assert len(subject) <= 72 and subject.endswith("…") and blank == ""
    assert subject == "refactor the configuration loader the configuration loader the…"
    assert body == ["Applied with plancast:", "  A a.py", "  M b.py", "  R z.py -> c.py", ""]
    assert default_message(long, files) == message  # the same input, the same message
    word = default_message("x" * 100, files).split("\n")[0]
    assert word == "x" * 71 + "…"
    assert default_message(None, files).startswith("Apply plancast changes to 3 files\n\n")
    assert default_message("   \n\n", files[:1]).startswith("Apply plancast changes to 1 file\n")
