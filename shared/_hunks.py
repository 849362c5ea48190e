"""One file's change as hunks, and the text that a chosen subset of them gives.

This is what reviewing by hunk (``plancast apply --review``, like ``git add -p``) rests on:
the client shows each hunk, the user takes some, and the file gets exactly those.

Rules:

1. Lines are read as ``unified_diff`` reads them: a line ends at ``"\\n"`` (a ``"\\r"`` stays
   part of its line) and the last line may have no end.
2. The hunks are the ones ``unified_diff`` shows with the same ``context``, in order: changes
   fewer than ``2 * context + 1`` unchanged lines apart share a hunk. ``Hunk.text`` is the
   hunk as shown there, from its ``@@`` line, so ``diff_header`` plus every hunk's text is
   ``unified_diff``.
3. A file created (``old`` is None) is one hunk, even when it is empty. Equal texts have no
   hunks. Deleting a file is not a change a reply can make, so ``new`` is never None.
4. A hunk knows the old lines it replaces and the lines it puts in their place.
   ``apply_hunks`` makes those replacements for the hunks it is given and keeps every other
   line of ``old`` as it is: all the hunks give ``new``, none gives ``old``, and no line a
   left-out hunk adds is written.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from ._diff import _NO_NEWLINE, _lines


@dataclass(frozen=True, slots=True)
class Hunk:
    """One hunk of a file's change.

    ``changes`` holds the replacements it makes, in order: each is ``(start, stop, lines)``,
    the 0-based old lines ``start`` to ``stop`` (exclusive) and the new lines that replace
    them, each with its line end. ``text`` is the hunk as ``unified_diff`` shows it.
    """

    text: str
    changes: tuple[tuple[int, int, tuple[str, ...]], ...]

    def __post_init__(self) -> None:
        if not self.changes:
            raise ValueError("a hunk makes at least one change")
        after = -1  # each change starts after the one before ends: an equal line parts them
        for start, stop, _ in self.changes:
            if not after < start <= stop:
                raise ValueError("a hunk's changes must be in order, with lines between them")
            after = stop

    @property
    def added(self) -> int:
        """How many lines the hunk adds (its ``+`` lines)."""
        return sum(len(lines) for _, _, lines in self.changes)

    @property
    def removed(self) -> int:
        """How many lines the hunk removes (its ``-`` lines)."""
        return sum(stop - start for start, stop, _ in self.changes)


def split_hunks(old: str | None, new: str, *, context: int = 3) -> tuple[Hunk, ...]:
    """The hunks that turn ``old`` into ``new``.

    Args:
        old: the file's text before, or None when the change creates the file.
        new: the file's text after.
        context: how many unchanged lines to show around each change (as ``unified_diff``).

    Returns:
        The hunks in file order; one for a file created; none when nothing changes.

    Raises:
        ValueError: ``context`` is negative.
    """
    if context < 0:
        raise ValueError("context must be >= 0")
    if old == new:
        return ()
    a, b = _lines(old), _lines(new)
    if old is None and not b:  # an empty file created: one hunk that changes no line
        return (Hunk("", ((0, 0, ()),)),)
    matcher = difflib.SequenceMatcher(None, a, b)
    return tuple(_hunk(a, b, group) for group in matcher.get_grouped_opcodes(context))


def apply_hunks(old: str | None, hunks: Iterable[Hunk]) -> str | None:
    """``old`` with the replacements of ``hunks`` made, and no others.

    Args:
        old: the text the hunks were split from (None: the file does not exist).
        hunks: some of the hunks ``split_hunks`` gave for ``old``, in any order.

    Returns:
        The new text; None when ``old`` is None and no hunk is given (the file is not created).

    Raises:
        ValueError: the hunks overlap (one was given twice) or reach past the end of ``old``;
            they were not split from this text.
    """
    changes = sorted((c for hunk in hunks for c in hunk.changes), key=lambda c: (c[0], c[1]))
    if old is None and not changes:
        return None
    lines = _lines(old)
    out: list[str] = []
    at, after = 0, -1
    for start, stop, replacement in changes:
        if start <= after or stop > len(lines):
            raise ValueError("these hunks overlap or were not split from this text")
        out += lines[at:start]
        out += replacement
        at = after = stop
    out += lines[at:]
    return "".join(out)


# -- internals --------------------------------------------------------------------------------


def _hunk(a: list[str], b: list[str], group: list[tuple[str, int, int, int, int]]) -> Hunk:
    first, last = group[0], group[-1]
    shown = [f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n"]
    changes: list[tuple[int, int, tuple[str, ...]]] = []
    for tag, i1, i2, j1, j2 in group:
        if tag == "equal":
            shown += [_shown(" ", line) for line in a[i1:i2]]
            continue
        shown += [_shown("-", line) for line in a[i1:i2]]
        shown += [_shown("+", line) for line in b[j1:j2]]
        changes.append((i1, i2, tuple(b[j1:j2])))
    return Hunk("".join(shown), tuple(changes))


def _shown(mark: str, line: str) -> str:
    return mark + line if line.endswith("\n") else f"{mark}{line}\n{_NO_NEWLINE}\n"


def _range(start: int, stop: int) -> str:
    """A side of the ``@@`` line, as ``difflib.unified_diff`` writes it."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start if length == 0 else start + 1},{length}"
