"""Hunks: splitting one file's change, and rebuilding its text from the hunks taken."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plancast.shared import Hunk, apply_hunks, diff_header, split_hunks, unified_diff

OLD = "".join(f"line {n}\n" for n in range(1, 21))


def test_changes_far_apart_are_separate_hunks() -> None:
    new = OLD.replace("line 2\n", "LINE 2\n").replace("line 18\n", "LINE 18\nextra\n")
    first, second = split_hunks(OLD, new)
    assert first.text == ("@@ -1,5 +1,5 @@\n line 1\n-line 2\n+LINE 2\n line 3\n line 4\n line 5\n")
    assert second.text.startswith("@@ -15,6 +15,7 @@\n line 15\n")
    assert (first.added, first.removed, second.added, second.removed) == (1, 1, 2, 1)
    assert apply_hunks(OLD, [first]) == OLD.replace("line 2\n", "LINE 2\n")
    assert apply_hunks(OLD, [second]) == OLD.replace("line 18\n", "LINE 18\nextra\n")
    assert apply_hunks(OLD, [second, first]) == new  # in any order


def test_changes_close_together_share_a_hunk_unless_context_is_smaller() -> None:
    new = OLD.replace("line 5\n", "five\n").replace("line 9\n", "nine\n")
    (hunk,) = split_hunks(OLD, new)
    assert len(hunk.changes) == 2 and hunk.added == hunk.removed == 2
    assert len(split_hunks(OLD, new, context=1)) == 2


def test_a_new_file_is_one_hunk_even_when_empty() -> None:
    (hunk,) = split_hunks(None, "a\nb\nc\n", context=0)
    assert hunk.text == "@@ -0,0 +1,3 @@\n+a\n+b\n+c\n"
    assert apply_hunks(None, [hunk]) == "a\nb\nc\n"
    assert apply_hunks(None, []) is None  # not taken: the file is not created
    (empty,) = split_hunks(None, "")
    assert empty.text == "" and (empty.added, empty.removed) == (0, 0)
    assert apply_hunks(None, [empty]) == ""


def test_equal_texts_have_no_hunks() -> None:
    assert split_hunks("a\n", "a\n") == ()
    assert split_hunks("", "") == ()


def test_line_ends_are_kept_as_they_are() -> None:
    old = "a\r\nb\r\n-\nc"
    new = "a\r\nB\r\n-\nc\n"
    hunks = split_hunks(old, new, context=0)
    assert [h.text for h in hunks] == [
        "@@ -2 +2 @@\n-b\r\n+B\r\n",
        "@@ -4 +4 @@\n-c\n\\ No newline at end of file\n+c\n",
    ]
    assert apply_hunks(old, hunks[:1]) == "a\r\nB\r\n-\nc"
    assert apply_hunks(old, hunks[1:]) == "a\r\nb\r\n-\nc\n"


def test_hunks_from_another_text_or_given_twice_are_refused() -> None:
    hunks = split_hunks(OLD, OLD + "more\n")
    with pytest.raises(ValueError, match="overlap"):
        apply_hunks(OLD[: len(OLD) // 2], hunks)
    with pytest.raises(ValueError, match="overlap"):
        apply_hunks(OLD, [*hunks, *hunks])
    (swap,) = split_hunks(OLD, OLD.replace("line 3\n", "three\n"))
    with pytest.raises(ValueError, match="overlap"):
        apply_hunks(OLD, [swap, swap])


def test_a_hunk_is_checked_when_built() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Hunk("@@", ())
    with pytest.raises(ValueError, match="in order"):
        Hunk("@@", ((3, 4, ()), (1, 2, ())))
    with pytest.raises(ValueError, match="in order"):
        Hunk("@@", ((1, 2, ()), (2, 2, ("x\n",))))  # no unchanged line between them
    with pytest.raises(ValueError, match="in order"):
        Hunk("@@", ((2, 1, ()),))


def test_context_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="context"):
        split_hunks("a\n", "b\n", context=-1)


# -- properties ------------------------------------------------------------------------------


def _split(text: str | None) -> list[str]:
    if not text:
        return []
    lines = [line + "\n" for line in text.split("\n")]
    last = lines.pop()
    if last != "\n":
        lines.append(last[:-1])
    return lines


_TEXT = st.one_of(
    st.lists(st.sampled_from(["a", "b", "c", "", " x", "a\r"]), max_size=14).map("\n".join),
    st.lists(st.sampled_from(["a\n", "b\n", "c\n", "\n", "b\r\n"]), max_size=14).map("".join),
)
_OLD = st.one_of(st.none(), _TEXT)


@given(old=_OLD, new=_TEXT, context=st.integers(0, 4))
def test_all_hunks_give_new_and_none_give_old(old: str | None, new: str, context: int) -> None:
    hunks = split_hunks(old, new, context=context)
    assert apply_hunks(old, hunks) == new
    assert apply_hunks(old, []) == old
    assert bool(hunks) == (old != new)
    if old is None:
        assert len(hunks) == 1


@given(old=_OLD, new=_TEXT, context=st.integers(0, 4))
def test_the_hunks_are_the_unified_diff(old: str | None, new: str, context: int) -> None:
    hunks = split_hunks(old, new, context=context)
    shown = diff_header("f", old, new) + "".join(h.text for h in hunks)
    assert shown == unified_diff("f", old, new, context=context) or old == new


@st.composite
def _edited(draw: st.DrawFn, unique: bool) -> tuple[str, str]:
    """An old text, and a new one made from it whose added lines are all new (``+n``)."""
    if unique:
        old_lines = [f"o{n}" for n in range(draw(st.integers(0, 16)))]
    else:
        old_lines = draw(st.lists(st.sampled_from(["a", "b", "", "a\r"]), max_size=16))
    markers = (f"+{n}" for n in itertools.count())
    new_lines: list[str] = []
    for line in old_lines:
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "swap", "add"]))
        if action in ("keep", "add"):
            new_lines.append(line)
        if action in ("swap", "add"):
            new_lines.append(next(markers))
    new_lines += [next(markers) for _ in range(draw(st.integers(0, 2)))]
    old = "\n".join(old_lines) + ("\n" if old_lines and draw(st.booleans()) else "")
    new = "\n".join(new_lines) + ("\n" if new_lines and draw(st.booleans()) else "")
    return old, new


def _bare(lines: list[str] | tuple[str, ...]) -> list[str]:
    return [line.rstrip("\n").rstrip("\r") for line in lines]


def _marked(lines: tuple[str, ...]) -> set[str]:
    """The lines an edit added (``+n``): each is in the new text once, and never in the old."""
    return {line for line in _bare(lines) if line.startswith("+")}


def _unique(lines: list[str]) -> set[str]:
    """The old lines that are each in the old text once (``on``)."""
    return {line for line in _bare(lines) if line.startswith("o")}


@given(
    edit=st.one_of(_edited(unique=False), _edited(unique=True)),
    picks=st.lists(st.booleans(), min_size=20, max_size=20),
    context=st.integers(0, 3),
)
def test_only_the_hunks_taken_are_applied(
    edit: tuple[str, str], picks: list[bool], context: int
) -> None:
    old, new = edit
    hunks = split_hunks(old, new, context=context)
    taken = [h for h, pick in zip(hunks, picks, strict=False) if pick]
    skipped = [h for h, pick in zip(hunks, picks, strict=False) if not pick]
    result = apply_hunks(old, taken)
    assert result is not None
    lines = _split(result)
    shown = set(_bare(lines))
    old_lines = _split(old)
    for hunk in skipped:  # no line a skipped hunk adds is written, and what it removes stays
        for start, stop, added in hunk.changes:
            assert not shown & _marked(added)
            assert _unique(old_lines[start:stop]) <= shown
    for hunk in taken:  # every line a taken hunk adds is written, and what it removes goes
        for start, stop, added in hunk.changes:
            assert _marked(added) <= shown
            assert not shown & (_unique(old_lines[start:stop]) - set(_bare(added)))
    change = sum(h.added - h.removed for h in taken)
    assert len(lines) == len(old_lines) + change
    assert "".join(lines) == result  # a line without an end can only be the last
