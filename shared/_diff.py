"""Unified diffs of one file, as git shows them.

Rules:

1. Headers are ``--- a/<path>`` and ``+++ b/<path>``; a side that does not exist (a file
   created or deleted) is ``/dev/null``.
2. Lines end at ``"\\n"`` only; a ``"\\r"`` stays part of its line, as in git.
3. A last line without a newline is followed by ``\\ No newline at end of file``.
4. Equal texts give ``""``. Creating or deleting an empty file gives the two header lines
   and no hunk, so the change still shows.
5. ``diff_stats`` counts the same lines the diff marks with ``+`` and ``-``.
"""

from __future__ import annotations

import difflib

from ._paths import check_relative_path

_NO_NEWLINE = "\\ No newline at end of file"


def unified_diff(path: str, old: str | None, new: str | None, *, context: int = 3) -> str:
    """The unified diff that turns ``old`` into ``new``.

    Args:
        path: the file's project-relative path, shown in the headers.
        old: the text before, or None when the file did not exist.
        new: the text after, or None when the file is deleted.
        context: how many unchanged lines to show around each change.

    Returns:
        The diff, every line ending in ``"\\n"``; ``""`` when nothing changes.

    Raises:
        UnsafePathError: ``path`` is not a safe project-relative path.
        ValueError: ``context`` is negative.
    """
    path = check_relative_path(path)
    if context < 0:
        raise ValueError("context must be >= 0")
    if old == new:
        return ""
    fromfile = "/dev/null" if old is None else f"a/{path}"
    tofile = "/dev/null" if new is None else f"b/{path}"
    lines = list(
        difflib.unified_diff(_lines(old), _lines(new), fromfile, tofile, n=context, lineterm="\n")
    )
    if not lines:  # an empty file created or deleted
        return diff_header(path, old, new)
    out: list[str] = []
    for line in lines:
        out.append(line)
        if not line.endswith("\n"):
            out.append(f"\n{_NO_NEWLINE}\n")
    return "".join(out)


def diff_header(path: str, old: str | None, new: str | None) -> str:
    """The two header lines of ``unified_diff`` (rule 1), for showing a file's hunks one by one.

    Args:
        path: the file's project-relative path.
        old: the text before, or None when the file did not exist.
        new: the text after, or None when the file is deleted.

    Returns:
        ``"--- a/<path>\\n+++ b/<path>\\n"``, with ``/dev/null`` for a side that does not exist.

    Raises:
        UnsafePathError: ``path`` is not a safe project-relative path.
    """
    path = check_relative_path(path)
    fromfile = "/dev/null" if old is None else f"a/{path}"
    tofile = "/dev/null" if new is None else f"b/{path}"
    return f"--- {fromfile}\n+++ {tofile}\n"


def diff_stats(old: str | None, new: str | None) -> tuple[int, int]:
    """How many lines a change adds and removes.

    Args:
        old: the text before, or None when the file did not exist.
        new: the text after, or None when the file is deleted.

    Returns:
        ``(added, removed)``, the counts of ``+`` and ``-`` lines in ``unified_diff``.
    """
    added = removed = 0
    matcher = difflib.SequenceMatcher(None, _lines(old), _lines(new))
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    return added, removed


def _lines(text: str | None) -> list[str]:
    if not text:
        return []
    lines = [line + "\n" for line in text.split("\n")]
    last = lines.pop()
    if last != "\n":
        lines.append(last[:-1])
    return lines
