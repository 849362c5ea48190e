"""Pattern semantics, one rule at a time, checked against our engine *and* against git.

Each row is (lines of a .gitignore, path below it, is the path a directory, ignored by git?).
The expected column was produced by git 2.39 and is re-checked against the installed git by
``test_table_agrees_with_git``, so the table cannot drift from git's behaviour unnoticed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plancast.client.context.ignore import IgnoreEngine
from tests.client.context.context_helpers import git, git_init

TABLE: list[tuple[list[str], str, bool, bool]] = [
    # basename vs anchored
    (["foo"], "foo", False, True),
    (["foo"], "a/foo", False, True),
    (["foo"], "a/foo", True, True),
    (["/foo"], "foo", False, True),
    (["/foo"], "a/foo", False, False),
    (["a/foo"], "a/foo", False, True),
    (["a/foo"], "b/a/foo", False, False),
    (["foo/"], "foo", False, False),
    (["foo/"], "foo", True, True),
    (["foo/"], "a/foo", True, True),
    (["a/b/"], "a/b", True, True),
    (["a/b/"], "a/b", False, False),
    # star / question
    (["*.log"], "x.log", False, True),
    (["*.log"], "d/x.log", False, True),
    (["*.log"], ".log", False, True),
    (["a*"], "abc", False, True),
    (["a/*"], "a/b", False, True),
    (["a/*"], "a/b/c", False, True),
    (["a/*.c"], "a/x/y.c", False, False),
    (["?.txt"], "a.txt", False, True),
    (["?.txt"], "ab.txt", False, False),
    (["?.txt"], "é.txt", False, False),
    (["??.txt"], "é.txt", False, True),
    (["a?c"], "a/c", False, False),
    # double star
    (["**/foo"], "foo", False, True),
    (["**/foo"], "a/b/foo", False, True),
    (["**/a/b"], "x/a/b", False, True),
    (["**/a/b"], "a/b", False, True),
    (["a/**"], "a/x", False, True),
    (["a/**"], "a/x/y", False, True),
    (["a/**"], "a", True, False),
    (["a/**/b"], "a/b", False, True),
    (["a/**/b"], "a/x/b", False, True),
    (["a/**/b"], "a/x/y/b", False, True),
    (["a/**/b"], "a/xb", False, False),
    (["a**b"], "a/x/b", False, False),
    (["a**b"], "axxb", False, True),
    (["x/a**b"], "x/a/y/b", False, False),
    (["x/a**b"], "x/aqb", False, True),
    (["foo**/bar"], "foo/bar", False, True),
    (["foo**/bar"], "foo/a/b/bar", False, True),
    (["foo**/bar"], "fooX/bar", False, True),
    (["x/foo**/bar"], "x/foo/a/b/bar", False, True),
    (["**"], "anything", False, True),
    (["/**"], "a/b", False, True),
    (["***/foo"], "a/b/foo", False, True),
    (["a/***"], "a/b/c", False, True),
    (["**/"], "d", True, True),
    (["**/"], "f", False, False),
    (["a/**\\/b"], "a/x/b", False, True),
    (["a/**\\/b"], "a/b", False, False),
    # classes
    (["[a-c].txt"], "b.txt", False, True),
    (["[a-c].txt"], "d.txt", False, False),
    (["[!a-c].txt"], "d.txt", False, True),
    (["[!a-c].txt"], "a.txt", False, False),
    (["[^a].txt"], "b.txt", False, True),
    (["[]a].txt"], "].txt", False, True),
    (["[!]a].txt"], "b.txt", False, True),
    (["[!]a].txt"], "].txt", False, False),
    (["[a-].txt"], "-.txt", False, True),
    (["[z-a].txt"], "m.txt", False, False),
    (["[[:alpha:]].txt"], "q.txt", False, True),
    (["[[:alpha:]].txt"], "1.txt", False, False),
    (["[[:digit:]x].txt"], "x.txt", False, True),
    (["[[:digit:]x].txt"], "5.txt", False, True),
    (["[[:foo:]].txt"], "f.txt", False, False),
    (["[[:a].txt"], ":.txt", False, True),
    (["[[:a].txt"], "a.txt", False, True),
    (["[abc"], "[abc", False, False),
    (["[abc"], "a", False, False),
    (["a[/]b"], "a/b", False, False),
    (["d/a[!x]b"], "d/a/b", False, False),
    (["[\\]].txt"], "].txt", False, True),
    (["[a\\-c].txt"], "-.txt", False, True),
    (["[a\\-c].txt"], "b.txt", False, False),
    (["[a-c-e].txt"], "-.txt", False, True),
    (["[a-c-e].txt"], "d.txt", False, False),
    (["[a-c-e].txt"], "e.txt", False, True),
    (["[é].txt"], "é.txt", False, False),
    # escapes and comments
    (["\\#h"], "#h", False, True),
    (["#h"], "#h", False, False),
    (["\\!bang"], "!bang", False, True),
    (["!bang"], "bang", False, False),
    (["a\\*b"], "a*b", False, True),
    (["a\\*b"], "axb", False, False),
    (["trail\\"], "trail\\", False, False),
    (["foo\\ "], "foo ", False, True),
    (["foo "], "foo", False, True),
    (["foo \\ "], "foo  ", False, True),
    (["foo\t"], "foo\t", False, True),
    (["foo\t"], "foo", False, False),
    (["a\\b"], "ab", False, True),
    # negation and order
    (["*.log", "!keep.log"], "keep.log", False, False),
    (["!keep.log", "*.log"], "keep.log", False, True),
    (["build/", "!build/keep"], "build/keep", False, True),
    (["build/*", "!build/keep"], "build/keep", False, False),
    (["/*", "!/src/"], "src/x", False, False),
    (["/*", "!/src/"], "lib/x", False, True),
    (["*", "!*/", "!*.py"], "a/b/c.py", False, False),
    (["*", "!*/", "!*.py"], "a/b/c.txt", False, True),
    (["a/", "!a/b"], "a/b", False, True),
    # empty / odd
    ([""], "x", False, False),
    (["   "], "x", False, False),
    (["!"], "x", False, False),
    (["/"], "x", True, False),
    (["foo//"], "foo", True, False),
    (["//foo"], "foo", False, False),
    (["*"], "x", False, True),
    (["*/"], "x", True, True),
    (["*/"], "x", False, False),
    (["*/x"], "a/x", False, True),
    (["*/x"], "a/b/x", False, False),
]


def _build(root: Path) -> list[str]:
    """One directory per row, holding the row's .gitignore and its path; returns the paths."""
    paths = []
    for i, (lines, path, is_dir, _expected) in enumerate(TABLE):
        case = root / f"c{i}"
        case.mkdir(parents=True)
        (case / ".gitignore").write_bytes(("\n".join(lines) + "\n").encode())
        full = case / path
        if is_dir:
            full.mkdir(parents=True, exist_ok=True)
        else:
            full.parent.mkdir(parents=True, exist_ok=True)
            full.touch()
        paths.append(f"c{i}/{path}")
    return paths


@pytest.fixture(scope="module")
def table_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("table")
    return root, _build(root)


def test_table_matches_engine(table_root: tuple[Path, list[str]]) -> None:
    root, paths = table_root
    engine = IgnoreEngine(root, default_ignores=False)
    wrong = []
    for (lines, path, is_dir, expected), rel in zip(TABLE, paths, strict=True):
        verdict = engine.verdict(rel.encode(), is_dir)
        if verdict.included == expected:
            wrong.append((lines, path, is_dir, expected, verdict.reason))
    assert wrong == []


def test_table_agrees_with_git(table_root: tuple[Path, list[str]]) -> None:
    root, paths = table_root
    git_init(root)
    try:
        out = git(
            root,
            "check-ignore",
            "--stdin",
            "-z",
            "-v",
            "-n",
            input_=b"\0".join(os.fsencode(p) for p in paths) + b"\0",
        )
    finally:
        import shutil

        shutil.rmtree(root / ".git")
    fields = out.split(b"\0")
    by_path = {
        os.fsdecode(fields[j + 3]): os.fsdecode(fields[j + 2]) for j in range(0, len(fields) - 1, 4)
    }
    wrong = []
    for (lines, path, is_dir, expected), rel in zip(TABLE, paths, strict=True):
        pattern = by_path[rel]
        ignored = bool(pattern) and not pattern.startswith("!")
        if ignored != expected:
            wrong.append((lines, path, is_dir, expected))
    assert wrong == []


@pytest.mark.parametrize(
    ("lines", "path", "is_dir", "expected"),
    [row for row in TABLE if any("!" in line or "/" in line for line in row[0])][:12],
)
def test_explain_names_the_deciding_line(
    tmp_path: Path, lines: list[str], path: str, is_dir: bool, expected: bool
) -> None:
    root = tmp_path
    (root / ".gitignore").write_text("\n".join(lines) + "\n")
    engine = IgnoreEngine(root, default_ignores=False)
    verdict = engine.verdict(path.encode(), is_dir)
    assert verdict.included is not expected
    if verdict.source is not None:
        assert verdict.source == ".gitignore"
        assert lines[verdict.line - 1].rstrip() == verdict.pattern
