"""``plancast ignore why PATH…``: in or out, and the rule that decided, like git check-ignore -v."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.commands_helpers import Harness, make_harness


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    h = make_harness(tmp_path / "project")
    h.write(".gitignore", "build/\n*.log\n!keep.log\n")
    h.write("sub/.plancastignore", "# mine\nprivate.md\n")
    h.write("sub/private.md", "mine\n")
    h.write("sub/notes.md", "shared\n")
    h.write("build/out.txt", "generated\n")
    h.write("debug.log", "noise\n")
    h.write("keep.log", "kept\n")
    h.write(".env", "KEY=1\n")
    h.write("app.py", "x = 1\n")
    (h.root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    return h


def test_each_path_gets_one_line_like_git_check_ignore(h: Harness) -> None:
    paths = ["build/out.txt", "debug.log", "keep.log", "sub/private.md", "sub/notes.md", "app.py"]
    assert h.run("ignore", "why", *paths, ".env", "build", "logo.png", ".git/config") == 0
    assert h.out.getvalue().splitlines() == [
        "out\t.gitignore:1:build/\tbuild/out.txt",
        "out\t.gitignore:2:*.log\tdebug.log",
        "in\t.gitignore:3:!keep.log\tkeep.log",
        "out\tsub/.plancastignore:2:private.md\tsub/private.md",
        "in\t::\tsub/notes.md",
        "in\t::\tapp.py",
        "out\t<default>:1:.env\t.env",
        "out\t.gitignore:1:build/\tbuild",
        "out\t<scan>::binary\tlogo.png",
        "out\t<builtin>::.git/\t.git/config",
    ]


def test_json_for_scripts(h: Harness) -> None:
    assert h.run("ignore", "why", "--json", "build/out.txt", "app.py", ".env") == 0
    answer = json.loads(h.out.getvalue())
    assert answer["root"] == str(h.root.resolve())
    build, app, env = answer["paths"]
    assert build == {
        "path": "build/out.txt",
        "included": False,
        "source": ".gitignore",
        "line": 1,
        "pattern": "build/",
        "matched": "build/",
        "reason": "ignored by .gitignore:1 'build/' (matches the directory build/)",
        "skipped": None,
    }
    assert app["included"] is True and app["source"] is None and app["line"] is None
    assert env["source"] == "<default>" and "dotenv" in env["reason"]


def test_without_default_ignores(h: Harness) -> None:
    assert h.run("ignore", "why", "--no-default-ignores", ".env") == 0
    assert h.out.getvalue() == "in\t::\t.env\n"


def test_tracked_files_stay_in(h: Harness) -> None:
    # The suite's clean environment (tests/conftest.py) keeps the user's git config out.
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=h.root, check=True)
    subprocess.run(["git", "add", "-f", "debug.log"], cwd=h.root, check=True)
    assert h.run("ignore", "why", "debug.log") == 0
    assert h.out.getvalue() == "in\t<tracked>::\tdebug.log\n"


def test_paths_relative_to_a_subfolder(h: Harness) -> None:
    h.session.cwd = h.root / "sub"
    assert h.run("ignore", "why", "private.md", "../app.py") == 0
    assert h.out.getvalue().splitlines() == [
        "out\tsub/.plancastignore:2:private.md\tsub/private.md",
        "in\t::\tapp.py",
    ]


def test_a_path_outside_the_project_is_an_error(h: Harness, tmp_path: Path) -> None:
    assert h.run("ignore", "why", "app.py", str(tmp_path / "elsewhere.txt")) == 1
    assert h.out.getvalue() == "in\t::\tapp.py\n"
    assert "elsewhere.txt: outside the project" in h.err.getvalue()


def test_needs_no_server(h: Harness) -> None:
    h.run("ignore", "why", "app.py")
    assert h.api.calls == []


def test_why_needs_a_path(h: Harness) -> None:
    with pytest.raises(SystemExit):
        h.run("ignore", "why")
    with pytest.raises(SystemExit):
        h.run("ignore")
