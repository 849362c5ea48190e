"""Pending changes in git's extended diff format (``plancast diff --git``), for ``git apply``.

The plain ``plancast diff`` is for reading; this one is for tools. Its output, saved to a file,
applies with ``git apply`` (or ``patch -p1``) and gives the files ``plancast apply`` writes.

Rules:

1. Each file starts with ``diff --git a/OLD b/NEW``; OLD is a move's source, else the path.
2. Extended header lines, as git writes them: a file created has ``new file mode 100644``
   (``apply`` creates files with that mode); a file deleted has ``deleted file mode`` with
   its mode on disk (``100755`` when executable); a file moved has ``similarity index``
   (only ``100%``, for a move that changes nothing inside: git's estimate for the others is
   its own), ``rename from`` and ``rename to``. Then ``index OLD..NEW``: abbreviated git blob
   ids of the two texts (all zeros for a side that does not exist), with the mode when the
   file stays, so that ``git apply --3way`` can find the blobs in a repository that has them.
3. Then ``---``/``+++`` and the hunks of ``unified_diff`` (``/dev/null`` for a side that does
   not exist). A file with no hunk (an empty file created or deleted, or a move that changes
   nothing inside) has no ``---``/``+++`` lines, as in git.
4. Paths are quoted as git quotes them (``core.quotePath``, its default): a path with ``"``,
   ``\\``, a control character or a non-ASCII character is written in double quotes with C
   escapes (octal for bytes of UTF-8), and a path with a space ends its ``---``/``+++`` line
   with a tab.
5. A change that leaves a file as it is (same path, same text) gives nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from plancast.shared import check_relative_path, unified_diff

REGULAR = 0o100644
EXECUTABLE = 0o100755
_NO_BLOB = "0000000"
_ESCAPES = {
    0x07: "\\a",
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0B: "\\v",
    0x0C: "\\f",
    0x0D: "\\r",
    0x22: '\\"',
    0x5C: "\\\\",
}


@dataclass(frozen=True, slots=True)
class GitFile:
    """One file's change: ``path`` after it (or the path deleted), the texts, and the rest.

    ``source`` is a move's old path. ``mode`` is the file's mode on disk before the change
    (``REGULAR`` or ``EXECUTABLE``); a new file gets ``REGULAR``.
    """

    path: str
    old: str | None
    new: str | None
    source: str | None = None
    mode: int = REGULAR


def git_diff(change: GitFile) -> str:
    """The change as git's extended diff (module rules 1-5).

    Raises:
        UnsafePathError: a path is not a safe project-relative path.
        ValueError: the change creates and deletes nothing and has no text on either side.
    """
    path = check_relative_path(change.path)
    source = check_relative_path(change.source) if change.source else None
    if change.old is None and change.new is None:
        raise ValueError(f"{path}: a change needs a text before or after")
    before = source or path
    if source is None and change.old == change.new:
        return ""
    lines = [f"diff --git {_quote('a/' + before)} {_quote('b/' + path)}"]
    old_blob = _blob(change.old)
    new_blob = _blob(change.new)
    if change.old is None:
        lines.append(f"new file mode {REGULAR:o}")
        lines.append(f"index {_NO_BLOB}..{new_blob}")
    elif change.new is None:
        lines.append(f"deleted file mode {change.mode:o}")
        lines.append(f"index {old_blob}..{_NO_BLOB}")
    else:
        if source is not None:
            if change.old == change.new:
                lines.append("similarity index 100%")
            lines += [f"rename from {_quote(source)}", f"rename to {_quote(path)}"]
        if change.old != change.new:
            lines.append(f"index {old_blob}..{new_blob} {change.mode:o}")
    body = unified_diff(path, change.old, change.new)
    hunks = body.split("\n", 2)[2] if body else ""
    if hunks:
        old_name = "/dev/null" if change.old is None else _file_line("a/" + before)
        new_name = "/dev/null" if change.new is None else _file_line("b/" + path)
        lines += [f"--- {old_name}", f"+++ {new_name}"]
    return "\n".join(lines) + "\n" + hunks


# -- internals --------------------------------------------------------------------------------


def _blob(text: str | None) -> str:
    """git's object id for ``text`` as a blob, abbreviated as git shows it in ``index``."""
    if text is None:
        return _NO_BLOB
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()[:7]


def _quote(name: str) -> str:
    """``name`` as git writes it in a header (rule 4)."""
    data = name.encode("utf-8", "surrogatepass")
    if not any(b < 0x20 or b >= 0x7F or b in (0x22, 0x5C) for b in data):
        return name
    out = []
    for b in data:
        if b in _ESCAPES:
            out.append(_ESCAPES[b])
        elif b < 0x20 or b >= 0x7F:
            out.append(f"\\{b:03o}")
        else:
            out.append(chr(b))
    return '"' + "".join(out) + '"'


def _file_line(name: str) -> str:
    """A name on a ``---``/``+++`` line: quoted, and followed by a tab when it has a space."""
    quoted = _quote(name)
    return quoted + "\t" if " " in quoted else quoted
