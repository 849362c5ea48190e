"""Applying file ops to the text of one file.

Rules:

1. The ops for one path apply in order, each to the text the one before left.
   ``original`` is None when the file does not exist, and so is the result once the
   file is gone.
2. Text is a list of lines. A line ends at ``"\\n"`` (``"\\r\\n"`` when a ``"\\r"`` comes
   before it); the last line may have no end. The file's style is its most common line end
   (``"\\n"`` on a tie or when it has none).
3. ``WriteFile`` replaces the whole text. Over an existing non-empty file the new text takes
   that file's style and ends with a newline exactly when the old one did: the reply format
   can express neither, so a rewrite never turns a CRLF file into LF or adds a trailing
   newline the project did not have.
4. ``EditFile`` works on whole lines. Its find and replace are read as lines (``"\\r\\n"``
   as ``"\\n"``, a missing final newline as present), and the find must match a run of
   whole lines of the file, tried in this order:

   a. exact: the lines are equal, line ends aside. One run is replaced; more than one
      raises ``EditAmbiguousError``. (So a find ending in ``"\\n"`` matches the last line
      of a file that has no trailing newline.)
   b. whitespace-tolerant: the lines are equal once trailing whitespace is ignored and
      one consistent indentation difference is allowed: every non-blank file line has the
      same extra leading whitespace in front of its find line, or every one lacks the same
      leading whitespace of its find line. Blank lines match blank lines. One run is
      replaced by the replace lines re-indented by that difference; more than one is
      ambiguous.
   c. otherwise ``EditNotFoundError``.

5. Lines outside the matched run keep their own ends; new lines take the file's style; the
   file ends with a newline exactly when it did before.
6. ``DeleteFile`` removes the file: the text becomes None. ``MoveFile`` is seen from its
   source only: the file leaves this path, so the text becomes None too. (Carrying the
   text to ``to`` touches a second path; ``build_files`` does that.) Both need the file
   to exist, like an edit; a ``WriteFile`` after them creates the file anew.
7. Error messages name the path and the first non-blank find line (cut to 80 characters),
   never other text of the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ._changes import DeleteFile, EditFile, FileOp, MoveFile, WriteFile
from ._errors import EditAmbiguousError, EditNotFoundError

MatchStrategy = Literal["exact", "whitespace"]
_SHOWN_CHARS = 80
_SHOWN_LINES = 5


@dataclass(frozen=True, slots=True)
class EditMatch:
    """Where an edit's find matched, and how.

    ``start`` and ``stop`` are 0-based line indexes (``stop`` exclusive). For a
    whitespace-tolerant match, ``indent`` is the whitespace the file has in front of each
    non-blank find line, or ``dedent`` the whitespace it lacks (at most one is set).
    """

    strategy: MatchStrategy
    start: int
    stop: int
    indent: str = ""
    dedent: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop:
            raise ValueError("a match needs 0 <= start < stop")
        if self.indent and self.dedent:
            raise ValueError("a match has an indent or a dedent, not both")

    @property
    def line(self) -> int:
        """The 1-based number of the first matched line."""
        return self.start + 1


def apply_ops(original: str | None, ops: Sequence[FileOp]) -> str | None:
    """Apply the ops for one path to that file's text.

    Args:
        original: the file's current text, or None when it does not exist.
        ops: one or more ops, all for the same path (a move's source), in the order the
            reply gave them.

    Returns:
        The file's new text, or None when it was deleted or moved away (rule 6).

    Raises:
        EditNotFoundError: an edit's find is not in the text, or the file to edit, delete
            or move does not exist.
        EditAmbiguousError: an edit's find matches more than one place.
        ValueError: ``ops`` is empty or names more than one path.
    """
    if not ops:
        raise ValueError("apply_ops needs at least one op")
    path = ops[0].path
    for op in ops:
        if op.path != path:
            raise ValueError(f"apply_ops got ops for {path} and {op.path}; give one path at a time")
    text = original
    for op in ops:
        text = _apply(text, op)
    return text


def match_edit(text: str, op: EditFile) -> EditMatch:
    """Find where an edit applies in a file's text, without applying it.

    Args:
        text: the file's current text.
        op: the edit.

    Returns:
        The one place where ``op.find`` matches, and by which strategy.

    Raises:
        EditNotFoundError: the find matches nowhere.
        EditAmbiguousError: the find matches more than one place.
    """
    bodies, _ = _split(text)
    find = _op_lines(op.find)
    size = len(find)
    last = len(bodies) - size
    exact = [i for i in range(last + 1) if bodies[i] == find[0] and bodies[i : i + size] == find]
    if len(exact) == 1:
        return EditMatch("exact", exact[0], exact[0] + size)
    if exact:
        raise _ambiguous(op, exact, "")
    tolerant: list[EditMatch] = []
    for i in range(last + 1):
        delta = _indent_delta(bodies[i : i + size], find)
        if delta is not None:
            tolerant.append(EditMatch("whitespace", i, i + size, *delta))
    if len(tolerant) == 1:
        return tolerant[0]
    if tolerant:
        raise _ambiguous(op, [m.start for m in tolerant], " when whitespace is ignored")
    raise EditNotFoundError(
        f"edit of {op.path} failed: the find text starting {_first_line(op)!r} is not in the file",
        path=op.path,
    )


# -- internals --------------------------------------------------------------------------------


def _apply(text: str | None, op: FileOp) -> str | None:
    if isinstance(op, WriteFile):
        return _write(text, op.content)
    if text is None:
        verb = {EditFile: "edit", MoveFile: "move", DeleteFile: "delete"}[type(op)]
        raise EditNotFoundError(f"cannot {verb} {op.path}: the file does not exist", path=op.path)
    if isinstance(op, EditFile):
        return _apply_edit(text, op)[0]
    return None  # deleted, or moved away (rule 6)


def _apply_edit(text: str, op: EditFile) -> tuple[str, EditMatch, int]:
    """The text with the edit applied, where it matched, and how many lines replaced the run.

    The lines that replaced the run are lines ``match.start`` up to ``match.start`` plus
    that count, in the new text.
    """
    match = match_edit(text, op)
    bodies, ends = _split(text)
    new = [_reindent(line, match.indent, match.dedent) for line in _op_lines(op.replace)]
    style = _style(ends)
    bodies[match.start : match.stop] = new
    ends[match.start : match.stop] = [style] * len(new)
    if ends and not text.endswith("\n"):
        ends[-1] = ""
    return "".join(body + end for body, end in zip(bodies, ends, strict=True)), match, len(new)


def _write(text: str | None, content: str) -> str:
    if not text:
        return content
    style = _style(_split(text)[1])
    lines = _op_lines(content)
    ends = [style] * len(lines)
    if ends and not text.endswith("\n"):
        ends[-1] = ""
    return "".join(line + end for line, end in zip(lines, ends, strict=True))


def _split(text: str) -> tuple[list[str], list[str]]:
    """The text's lines, without their ends, and their ends."""
    pieces = text.split("\n")
    bodies: list[str] = []
    ends: list[str] = []
    for piece in pieces[:-1]:
        if piece.endswith("\r"):
            bodies.append(piece[:-1])
            ends.append("\r\n")
        else:
            bodies.append(piece)
            ends.append("\n")
    if pieces[-1]:
        bodies.append(pieces[-1])
        ends.append("")
    return bodies, ends


def _op_lines(text: str) -> list[str]:
    """The lines of a find, replace or content text, read as rule 4 says."""
    return _split(text)[0]


def _style(ends: list[str]) -> str:
    return "\r\n" if ends.count("\r\n") > ends.count("\n") else "\n"


def _indent_delta(lines: list[str], find: list[str]) -> tuple[str, str] | None:
    """The (indent, dedent) that makes ``find`` match ``lines``, or None."""
    delta: tuple[str, str] | None = None
    for have, want in zip(lines, find, strict=True):
        have, want = have.rstrip(), want.rstrip()
        if not have or not want:
            if have or want:
                return None
            continue
        have_body, want_body = have.lstrip(), want.lstrip()
        if have_body != want_body:
            return None
        have_lead = have[: len(have) - len(have_body)]
        want_lead = want[: len(want) - len(want_body)]
        if have_lead.endswith(want_lead):
            line_delta = (have_lead[: len(have_lead) - len(want_lead)], "")
        elif want_lead.endswith(have_lead):
            line_delta = ("", want_lead[: len(want_lead) - len(have_lead)])
        else:
            return None
        if delta is None:
            delta = line_delta
        elif line_delta != delta:
            return None
    return delta or ("", "")


def _reindent(line: str, indent: str, dedent: str) -> str:
    if not line.strip():
        return line
    if indent:
        return indent + line
    lead = line[: len(line) - len(line.lstrip())]
    shared = 0
    while shared < min(len(lead), len(dedent)) and lead[shared] == dedent[shared]:
        shared += 1
    return line[shared:]


def _first_line(op: EditFile) -> str:
    line = next((line.strip() for line in _op_lines(op.find) if line.strip()), "")
    if len(line) > _SHOWN_CHARS:
        line = line[: _SHOWN_CHARS - 1] + "…"
    return line


def _ambiguous(op: EditFile, starts: list[int], how: str) -> EditAmbiguousError:
    shown = ", ".join(str(i + 1) for i in starts[:_SHOWN_LINES])
    more = ", ..." if len(starts) > _SHOWN_LINES else ""
    return EditAmbiguousError(
        f"edit of {op.path} failed: the find text starting {_first_line(op)!r} matches "
        f"{len(starts)} places{how} (lines {shown}{more}); it needs more surrounding lines",
        path=op.path,
    )
