"""Unified diffs: headers, hunks, missing final newlines, and stats."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plancast.shared import UnsafePathError, diff_stats, unified_diff


def test_equal_texts_give_no_diff() -> None:
    assert unified_diff("a.py", "x\n", "x\n") == ""
    assert unified_diff("a.py", None, None) == ""
    assert diff_stats("x\n", "x\n") == (0, 0)


def test_a_change() -> None:
    old = "a\nb\nc\nd\ne\nf\ng\nh\n"
    new = "a\nb\nc\nD\ne\nf\ng\nh\n"
    assert unified_diff("src/a.py", old, new) == (
        "--- a/src/a.py\n+++ b/src/a.py\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n"
    )
    assert unified_diff("src/a.py", old, new, context=0) == (
        "--- a/src/a.py\n+++ b/src/a.py\n@@ -4 +4 @@\n-d\n+D\n"
    )
    assert diff_stats(old, new) == (1, 1)


def test_create_and_delete_use_dev_null() -> None:
    assert unified_diff("n.txt", None, "one\ntwo\n") == (
        "--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n"
    )
    assert unified_diff("n.txt", "one\n", None) == (
        "--- a/n.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-one\n"
    )
    assert diff_stats(None, "one\ntwo\n") == (2, 0)
    assert diff_stats("one\n", None) == (0, 1)


def test_an_empty_file_created_or_deleted_still_shows() -> None:
    assert unified_diff("e", None, "") == "--- /dev/null\n+++ b/e\n"
    assert unified_diff("e", "", None) == "--- a/e\n+++ /dev/null\n"
    assert diff_stats(None, "") == (0, 0)


@pytest.mark.parametrize(
    ("old", "new", "diff"),
    [
        ("a\nb", "a\nb\n", "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"),
        ("a\nb\n", "a\nb", "@@ -1,2 +1,2 @@\n a\n-b\n+b\n\\ No newline at end of file\n"),
        (
            "a\nb",
            "a\nc",
            "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n"
            "+c\n\\ No newline at end of file\n",
        ),
        ("a\nb", "A\nb", "@@ -1,2 +1,2 @@\n-a\n+A\n b\n\\ No newline at end of file\n"),
        (None, "x", "@@ -0,0 +1 @@\n+x\n\\ No newline at end of file\n"),
    ],
)
def test_no_newline_at_end_of_file(old: str | None, new: str, diff: str) -> None:
    header = ("--- /dev/null\n" if old is None else "--- a/f\n") + "+++ b/f\n"
    assert unified_diff("f", old, new) == header + diff


def test_carriage_returns_stay_in_their_lines() -> None:
    assert unified_diff("w.txt", "a\r\nb\r\n", "a\r\nc\r\n") == (
        "--- a/w.txt\n+++ b/w.txt\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n+c\r\n"
    )


def test_the_path_is_checked_and_normalised() -> None:
    assert unified_diff("./src//a.py", None, "x\n").startswith("--- /dev/null\n+++ b/src/a.py\n")
    with pytest.raises(UnsafePathError):
        unified_diff("../a.py", None, "x\n")
    with pytest.raises(UnsafePathError):
        unified_diff("a\n+++ b/evil", None, "x\n")


def test_context_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="context"):
        unified_diff("a", "x\n", "y\n", context=-1)


# -- properties: the diff applies, and the stats count its lines ------------------------------

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@\n")


def _split(text: str | None) -> list[str]:
    if not text:
        return []
    lines = [line + "\n" for line in text.split("\n")]
    last = lines.pop()
    if last != "\n":
        lines.append(last[:-1])
    return lines


def apply_patch(old: str | None, diff: str) -> str:
    """A small, strict unified-diff applier, enough to check ours."""
    lines = _split(old)
    body = diff.split("\n", 2)[2]
    out: list[str] = []
    at = 0
    pos = 0
    while pos < len(body):
        m = _HUNK.match(body, pos)
        assert m, body[pos:]
        pos = m.end()
        start = int(m[1]) - (0 if m[2] == "0" else 1)
        out += lines[at:start]
        at = start
        while pos < len(body) and not body.startswith("@@", pos):
            end = body.index("\n", pos) + 1
            line, pos = body[pos:end], end
            if body.startswith("\\ No newline at end of file\n", pos):
                line = line[:-1]
                pos += len("\\ No newline at end of file\n")
            kind, text = line[0], line[1:]
            if kind in " -":
                assert lines[at] == text
                at += 1
            if kind in " +":
                out.append(text)
    return "".join(out + lines[at:])


_TEXT = st.one_of(
    st.none(),
    st.lists(st.sampled_from(["a", "b", "c", "", " x", "a\r"]), max_size=12).map("\n".join),
    st.lists(st.sampled_from(["a\n", "b\n", "c\n", "\n"]), max_size=12).map("".join),
)


@given(old=_TEXT, new=_TEXT, context=st.integers(0, 4))
def test_the_diff_turns_old_into_new(old: str | None, new: str | None, context: int) -> None:
    diff = unified_diff("p/f.txt", old, new, context=context)
    if old == new:
        assert diff == ""
        return
    assert diff.startswith("--- ")
    assert diff.endswith("\n")
    assert apply_patch(old, diff) == (new or "")
    hunk_lines = [line for line in diff.split("\n")[2:] if line and line[0] in "+-"]
    added = sum(line.startswith("+") for line in hunk_lines)
    assert diff_stats(old, new) == (added, len(hunk_lines) - added)
