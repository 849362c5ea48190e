"""``check_relative_path``: the lexical guard on every path a model proposes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plancast.shared import ErrorCode, UnsafePathError, check_relative_path
from plancast.shared._paths import MAX_PATH_CHARS


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("a.py", "a.py"),
        ("src/app.py", "src/app.py"),
        ("./src/app.py", "src/app.py"),
        ("src//app.py", "src/app.py"),
        ("src/./app.py", "src/app.py"),
        ("src/app/", "src/app"),
        ("src\\app.py", "src/app.py"),
        (".gitignore", ".gitignore"),
        (".github/workflows/ci.yml", ".github/workflows/ci.yml"),
        ("docs/.git-notes", "docs/.git-notes"),
        ("..foo", "..foo"),
        ("foo..", "foo.."),
        ("a/..b/c", "a/..b/c"),
        ("données/ünïcode.txt", "données/ünïcode.txt"),
        ("a" * MAX_PATH_CHARS, "a" * MAX_PATH_CHARS),
    ],
)
def test_safe_paths_are_normalised(path: str, normal: str) -> None:
    assert check_relative_path(path) == normal


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a" * (MAX_PATH_CHARS + 1), "longer than 4096"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\x7fb", "control character"),
        ("/etc/passwd", "absolute"),
        ("\\\\server\\share\\x", "absolute"),
        ("C:/Windows/x", "absolute"),
        ("c:x", "absolute"),
        ("..", "climbs out"),
        ("../a.py", "climbs out"),
        ("a/../../b", "climbs out"),
        ("a/../b", "climbs out"),  # refused even though it stays inside
        ("a\\..\\b", "climbs out"),
        (".", "project root"),
        ("./", "project root"),
        (".git", "inside .git/"),
        (".git/config", "inside .git/"),
        ("./.git/hooks/pre-commit", "inside .git/"),
        ("sub/.git/config", "inside .git/"),
        (".GIT/config", "inside .GIT/"),
        (".plancast/state", "inside .plancast/"),
    ],
)
def test_unsafe_paths_are_refused(path: str, reason: str) -> None:
    with pytest.raises(UnsafePathError) as info:
        check_relative_path(path)
    assert reason in info.value.message
    assert info.value.code is ErrorCode.UNSAFE_PATH


def test_a_control_character_path_is_shown_cut_short() -> None:
    with pytest.raises(UnsafePathError) as info:
        check_relative_path("x" * 500 + "\x01")
    assert info.value.message == f"path {'x' * 80!r} contains a control character"


_PART = st.sampled_from(["a", "b.py", ".", "..", ".git", "", "src", ".hidden", "ab:c", "C:", "c:x"])


@given(st.lists(_PART, min_size=1, max_size=6).map("/".join))
def test_a_safe_path_never_leaves_the_project(path: str) -> None:
    try:
        normal = check_relative_path(path)
    except UnsafePathError:
        return
    parts = normal.split("/")
    assert ".." not in parts and "." not in parts and "" not in parts
    assert ".git" not in parts
    assert not normal.startswith("/")
    assert check_relative_path(normal) == normal  # normal forms are fixed points


@pytest.mark.parametrize("path", ["./C:/x", "./c:evil", "./C:", ".\\D:\\x"])
def test_a_drive_letter_behind_dot_slash_is_refused(path: str) -> None:
    # './C:/x' normalises to 'C:/x', which a Windows client would join as an absolute path.
    with pytest.raises(UnsafePathError, match="absolute"):
        check_relative_path(path)
