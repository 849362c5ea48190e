"""Incremental parser for the file blocks in a model's reply.

The model is told to write its changes as blocks between prose::

    <pc:file path="src/app.py">
    ...the whole new content of the file...
    </pc:file>

    <pc:edit path="src/app.py">
    <pc:find>
    ...lines that exist in the file now...
    </pc:find>
    <pc:replace>
    ...lines to put in their place...
    </pc:replace>
    </pc:edit>

    <pc:move path="src/old.py" to="src/new.py" />
    <pc:delete path="src/unused.py" />

``ReplyParser`` is sans-I/O, like h11: ``feed()`` it text as the reply streams in, get
events back, call ``finish()`` once the reply is complete.

Rules:

1. The reply is read line by line. A line ends at ``"\\n"``; a ``"\\r"`` just before it
   is part of the line end. Only complete lines are acted on: a partial last line waits
   for more text, and ``finish()`` reads it as complete. So every way of splitting a
   reply into chunks gives the same events.
2. A tag is a line that holds the tag and nothing else but surrounding whitespace. A
   line longer than ``MAX_TAG_LINE_CHARS`` is never a tag, and a tag written inside a
   sentence is not a tag.
3. Outside blocks, ``<pc:file path="...">`` and ``<pc:edit path="...">`` open a block,
   and the self-closing ``<pc:move path="..." to="..." />`` and ``<pc:delete path="..." />``
   are a whole op each (a ``MoveFile`` or a ``DeleteFile``), even inside a markdown fence
   of the prose; every other line is prose. Attributes are double-quoted and in that
   order. A line that begins like one of these tags but is not well formed (a move or a
   delete that does not close itself included), and any closing or inner tag, is a
   problem there.
4. In a ``pc:file`` block, and in a ``pc:find`` or ``pc:replace`` body, every line up to
   the matching closing tag is content: other tags there are content too.
5. In a ``pc:edit`` block, between pairs, ``<pc:find>`` starts a pair and ``</pc:edit>``
   closes the block; an opening, move or delete tag closes it too (see rule 7); other tags
   are problems and other lines are ignored. A pair is
   ``<pc:find>`` ... ``</pc:find>`` then ``<pc:replace>`` ... ``</pc:replace>``, and
   becomes one ``EditFile`` op.
6. A content text is its lines joined with ``"\\n"`` plus a final ``"\\n"`` (``""`` when
   there are none). When there are two lines or more, the first starts with three
   backticks and the last is three backticks (whitespace aside), both are dropped: that
   is a fence the model wrapped the content in.
7. Mistakes become ``ParseProblem`` events, never exceptions, and parsing goes on:

   - a block whose opening tag is malformed or names an unsafe path is read up to its
     closing tag and dropped;
   - a move or delete tag that is malformed, names an unsafe path, or moves a file onto
     itself is dropped;
   - an opening, move or delete tag between the pairs of an edit closes that edit
     (``</pc:edit>`` was missing), then is read as outside blocks;
   - a pair whose find is empty (or blank), or which has no ``<pc:replace>``, is dropped;
     the other pairs of its edit stand;
   - a stray closing or inner tag is ignored;
   - a block still open at ``finish()`` is dropped (the reply was cut short); the
     pairs of an edit that were complete stand.

8. The text held for one op (a file block's content, or one find/replace pair) is at
   most ``max_block_chars`` characters as received, line ends included: a security
   limit. A larger op is dropped with a problem and its text is not kept, so memory
   stays bounded whatever the model sends.
9. A problem says what was wrong and at which line, naming tags and paths, never the
   content of a block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto
from typing import Literal, NamedTuple

from ._changes import DeleteFile, EditFile, FileOp, MoveFile, WriteFile
from ._errors import ReplyFormatError, UnsafePathError
from ._paths import check_relative_path

DEFAULT_MAX_BLOCK_CHARS = 4 * 1024 * 1024
"""Default ``max_block_chars``: 4 MiB of reply text for one op."""

MAX_TAG_LINE_CHARS = 8192
"""A longer line is never a tag (a path is at most 4096 characters)."""

BlockKind = Literal["file", "edit"]
_BLOCK_KINDS: tuple[str, ...] = ("file", "edit")
_OP_KINDS: tuple[str, ...] = ("move", "delete")  # one-line ops: self-closing tags


def _check_line(line: int) -> None:
    if line < 1:
        raise ValueError("line must be >= 1")


@dataclass(frozen=True, slots=True)
class BlockOpened:
    """A block's opening tag is complete: a UI can say "building ``path``".

    ``line`` is the reply line of the opening tag.
    """

    kind: BlockKind
    path: str
    line: int

    def __post_init__(self) -> None:
        if self.kind not in _BLOCK_KINDS:
            raise ValueError(f"kind must be one of {', '.join(_BLOCK_KINDS)}")
        object.__setattr__(self, "path", check_relative_path(self.path))
        _check_line(self.line)


@dataclass(frozen=True, slots=True)
class OpParsed:
    """A file op is complete.

    ``line`` is the reply line of the ``<pc:file>`` tag, of the ``<pc:find>`` tag that
    starts the pair, or of the ``<pc:move>`` or ``<pc:delete>`` tag.
    """

    op: FileOp
    line: int

    def __post_init__(self) -> None:
        _check_line(self.line)


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Something in the reply could not be read; the parser went on without it.

    ``line`` is the reply line where the faulty thing begins; ``path`` is the path of the
    block concerned when there is one and it is safe.
    """

    message: str
    line: int
    path: str | None = None

    def __post_init__(self) -> None:
        if not self.message:
            raise ValueError("message must not be empty")
        _check_line(self.line)


ReplyEvent = BlockOpened | OpParsed | ParseProblem


# -- tags -------------------------------------------------------------------------------------


class _Tag(NamedTuple):
    name: str  # "file", "edit", "find", "replace", "move" or "delete"
    closing: bool = False
    # The raw path of a well-formed opening file/edit tag or move/delete tag; None on a
    # malformed one. ``to`` is a well-formed move's destination.
    path: str | None = None
    to: str | None = None

    @property
    def opens_block(self) -> bool:
        return not self.closing and self.name in _BLOCK_KINDS

    @property
    def is_op(self) -> bool:
        return not self.closing and self.name in _OP_KINDS

    @property
    def starts_something(self) -> bool:
        """An opening or op tag: what ends an edit whose ``</pc:edit>`` is missing."""
        return self.opens_block or self.is_op

    def __str__(self) -> str:
        return f"<{'/' if self.closing else ''}pc:{self.name}>"


_OPEN_TAG = re.compile(r'<pc:(file|edit)\s+path\s*=\s*"([^"]*)"\s*>')
_MOVE_TAG = re.compile(r'<pc:move\s+path\s*=\s*"([^"]*)"\s+to\s*=\s*"([^"]*)"\s*/>')
_DELETE_TAG = re.compile(r'<pc:delete\s+path\s*=\s*"([^"]*)"\s*/>')
_BARE_TAG = re.compile(r"<(/?)pc:(file|edit|find|replace|move|delete)\s*>")
_OPEN_LIKE = re.compile(r"<pc:(file|edit|move|delete)(?=[\s>/]|$)")


def _classify(text: str) -> _Tag | None:
    """The tag on a stripped line, or None when the line is not a tag."""
    if not text.startswith("<"):
        return None
    if m := _OPEN_TAG.fullmatch(text):
        return _Tag(m[1], path=m[2])
    if m := _MOVE_TAG.fullmatch(text):
        return _Tag("move", path=m[1], to=m[2])
    if m := _DELETE_TAG.fullmatch(text):
        return _Tag("delete", path=m[1])
    if m := _BARE_TAG.fullmatch(text):  # <pc:file> without a path is malformed
        return _Tag(m[2], closing=bool(m[1]))
    if m := _OPEN_LIKE.match(text):
        return _Tag(m[1])
    return None


def _content(lines: list[str]) -> str:
    if len(lines) >= 2 and lines[0].lstrip().startswith("```") and lines[-1].strip() == "```":
        lines = lines[1:-1]
    return "".join(line + "\n" for line in lines)


# -- the parser -------------------------------------------------------------------------------


class _State(Enum):
    OUTSIDE = auto()  # prose
    FILE = auto()  # in a pc:file block
    EDIT = auto()  # in a pc:edit block, between pairs
    FIND = auto()  # in a pc:find body
    AFTER_FIND = auto()  # a find is closed; <pc:replace> is expected
    REPLACE = auto()  # in a pc:replace body


_BODY_CLOSERS = {_State.FILE: "file", _State.FIND: "find", _State.REPLACE: "replace"}


@dataclass(slots=True)
class _Block:
    kind: BlockKind
    path: str | None  # None when the block is dropped
    line: int
    opened: BlockOpened | None


class ReplyParser:
    """Turn a streamed model reply into file ops, incrementally.

    Feed it the reply in chunks of any size; each call returns the events that the
    newly complete lines produced. See the module docstring for the rules.

    Args:
        max_block_chars: the most reply characters held for one op (a security limit);
            a larger op is dropped with a ``ParseProblem``.

    Raises:
        ValueError: ``max_block_chars`` is less than 1.
    """

    def __init__(self, *, max_block_chars: int = DEFAULT_MAX_BLOCK_CHARS) -> None:
        if max_block_chars < 1:
            raise ValueError("max_block_chars must be >= 1")
        self.max_block_chars = max_block_chars
        self._state = _State.OUTSIDE
        self._line = 0  # number of complete lines read
        self._finished = False
        # The partial last line: its pieces, its length as received, and whether its
        # text was let go of (it can be neither a tag nor kept content).
        self._parts: list[str] = []
        self._part_chars = 0
        self._truncated = False
        # The open block, and the op being collected in it.
        self._block: _Block | None = None
        self._lines: list[str] = []
        self._held = 0
        self._dropping = False  # the current op is dropped; read on to its end
        self._pair_line = 0
        self._pairs = 0
        self._find = ""

    @property
    def current_block(self) -> BlockOpened | None:
        """The event that opened the block being read, or None outside blocks.

        None too inside a block that is being dropped (its tag was refused).
        """
        return self._block.opened if self._block is not None else None

    @property
    def current_path(self) -> str | None:
        """The path of the block being read, or None (see ``current_block``)."""
        block = self.current_block
        return block.path if block is not None else None

    def feed(self, chunk: str) -> list[ReplyEvent]:
        """Read the next piece of the reply.

        Args:
            chunk: any amount of reply text, split anywhere, even inside a ``"\\r\\n"``.

        Returns:
            The events of the lines this chunk completed, in order (often none).

        Raises:
            RuntimeError: ``finish()`` was called already.
        """
        if self._finished:
            raise RuntimeError("feed() after finish(): the reply is complete")
        events: list[ReplyEvent] = []
        start = 0
        while (end := chunk.find("\n", start)) >= 0:
            self._add_partial(chunk[start:end])
            self._complete_line(events)
            start = end + 1
        if start < len(chunk):
            self._add_partial(chunk[start:])
            self._check_partial(events)
        return events

    def finish(self) -> list[ReplyEvent]:
        """End the reply: read a partial last line, and report a block left open.

        Returns:
            The remaining events. A second call returns none.
        """
        if self._finished:
            return []
        self._finished = True
        events: list[ReplyEvent] = []
        if self._part_chars:
            self._complete_line(events)
        block = self._block
        if block is not None:
            if block.kind == "file":
                fate = "; it is skipped"
            elif self._state is _State.EDIT:
                fate = ""
            else:
                fate = f"; its last find/replace pair (line {self._pair_line}) is skipped"
            self._problem(
                events,
                block.line,
                f"line {block.line}: {_describe(block)} was not closed before the end of "
                f"the reply{fate}",
            )
            self._close_block()
        return events

    # -- lines --------------------------------------------------------------------------------

    def _collecting(self) -> bool:
        return (
            self._state in _BODY_CLOSERS
            and self._block is not None
            and self._block.path is not None
            and not self._dropping
        )

    def _add_partial(self, piece: str) -> None:
        self._part_chars += len(piece)
        if self._truncated:
            return
        if self._collecting() or self._part_chars <= MAX_TAG_LINE_CHARS:
            self._parts.append(piece)
        else:  # too long to be a tag and not content we keep: let the text go
            self._parts.clear()
            self._truncated = True

    def _check_partial(self, events: list[ReplyEvent]) -> None:
        # A partial line that cannot be a tag is content for sure: if it already
        # overflows the op, drop the op now rather than hold the line.
        if (
            self._collecting()
            and self._part_chars > MAX_TAG_LINE_CHARS
            and self._held + self._part_chars + 1 > self.max_block_chars
        ):
            self._overflow(events)
            self._parts.clear()
            self._truncated = True

    def _complete_line(self, events: list[ReplyEvent]) -> None:
        raw_chars = self._part_chars
        text = "".join(self._parts)
        self._parts.clear()
        self._part_chars = 0
        self._truncated = False
        if text.endswith("\r"):
            text = text[:-1]
        self._line += 1
        tag = None if raw_chars > MAX_TAG_LINE_CHARS else _classify(text.strip())
        self._on_line(text, raw_chars, tag, events)

    def _on_line(
        self, text: str, raw_chars: int, tag: _Tag | None, events: list[ReplyEvent]
    ) -> None:
        state = self._state
        if state in _BODY_CLOSERS:
            if tag is not None and tag.closing and tag.name == _BODY_CLOSERS[state]:
                self._close_body(events)
            else:
                self._add_content(text, raw_chars, events)
        elif tag is None:
            pass  # prose, or text between the pairs of an edit
        elif state is _State.OUTSIDE:
            if tag.opens_block:
                self._open_block(tag, events)
            elif tag.is_op:
                self._one_line_op(tag, events)
            else:
                self._problem(events, self._line, f"line {self._line}: {tag} outside any block")
        elif state is _State.AFTER_FIND:
            if tag == _REPLACE:
                self._state = _State.REPLACE
            elif tag.starts_something or tag in (_FIND, _CLOSE_EDIT):
                self._missing_replace(events)
                self._on_line(text, raw_chars, tag, events)  # again, between pairs
            else:
                self._stray_in_edit(tag, events)
        elif tag == _FIND:
            self._start_pair()
        elif tag == _CLOSE_EDIT:
            self._close_edit(events)
        elif tag.starts_something:
            self._problem(
                events,
                self._line,
                f"line {self._line}: {tag} inside {_describe(self._open())}, "
                "which ends there (its </pc:edit> is missing)",
            )
            self._close_edit(events)
            self._on_line(text, raw_chars, tag, events)  # again, outside blocks
        else:
            self._stray_in_edit(tag, events)

    # -- blocks -------------------------------------------------------------------------------

    def _open(self) -> _Block:
        block = self._block
        assert block is not None, "the state says a block is open"
        return block

    def _open_block(self, tag: _Tag, events: list[ReplyEvent]) -> None:
        line = self._line
        kind: BlockKind = "file" if tag.name == "file" else "edit"
        path: str | None = None
        if tag.path is None:
            self._problem(
                events,
                line,
                f"line {line}: malformed <pc:{kind}> tag, expected "
                f'<pc:{kind} path="relative/path">; the block is skipped',
            )
        else:
            try:
                path = check_relative_path(tag.path)
            except UnsafePathError as exc:
                self._problem(
                    events,
                    line,
                    f"line {line}: <pc:{kind}> block refused: {exc.message}; the block is skipped",
                )
        opened = None
        if path is not None:
            opened = BlockOpened(kind, path, line)
            events.append(opened)
        self._block = _Block(kind, path, line, opened)
        self._state = _State.FILE if kind == "file" else _State.EDIT
        self._reset_op()
        self._pairs = 0

    def _one_line_op(self, tag: _Tag, events: list[ReplyEvent]) -> None:
        line = self._line
        if tag.name == "move":
            expected = '<pc:move path="old/path" to="new/path" />'
        else:
            expected = '<pc:delete path="relative/path" />'
        if tag.path is None:
            message = f"line {line}: malformed {tag} tag, expected {expected}; it is skipped"
            events.append(ParseProblem(message, line))
            return
        safe: str | None = None
        try:
            safe = check_relative_path(tag.path)
            if tag.to is None:
                op: FileOp = DeleteFile(safe)
            else:
                op = MoveFile(safe, tag.to)
        except (UnsafePathError, ReplyFormatError) as exc:
            message = f"line {line}: {tag} refused: {exc.message}; it is skipped"
            events.append(ParseProblem(message, line, safe))
            return
        events.append(OpParsed(op, line))

    def _reset_op(self) -> None:
        self._lines = []
        self._held = 0
        self._dropping = False
        self._find = ""

    def _start_pair(self) -> None:
        self._state = _State.FIND
        self._reset_op()
        self._pair_line = self._line
        self._pairs += 1

    def _add_content(self, text: str, raw_chars: int, events: list[ReplyEvent]) -> None:
        if not self._collecting():
            return
        self._held += raw_chars + 1
        if self._held > self.max_block_chars:
            self._overflow(events)
        else:
            self._lines.append(text)

    def _overflow(self, events: list[ReplyEvent]) -> None:
        block = self._open()
        limit = f"larger than the limit of {self.max_block_chars} characters"
        if block.kind == "file":
            line, what = block.line, f"{_describe(block)} is {limit}; it is skipped"
        else:
            line = self._pair_line
            what = f"the find/replace pair in {_describe(block)} is {limit}; that pair is skipped"
        self._problem(events, line, f"line {line}: {what}")
        self._lines = []
        self._find = ""
        self._dropping = True

    def _close_body(self, events: list[ReplyEvent]) -> None:
        block = self._open()
        keep = self._collecting()
        content = _content(self._lines)
        self._lines = []
        if self._state is _State.FILE:
            if keep and block.path is not None:
                events.append(OpParsed(WriteFile(block.path, content), block.line))
            self._close_block()
        elif self._state is _State.FIND:
            self._state = _State.AFTER_FIND
            self._find = content
            if keep and not content.strip():
                line = self._pair_line
                self._problem(
                    events,
                    line,
                    f"line {line}: empty <pc:find> in {_describe(block)}; that pair is skipped",
                )
                self._dropping = True
        else:
            if keep and block.path is not None:
                events.append(OpParsed(EditFile(block.path, self._find, content), self._pair_line))
            self._state = _State.EDIT
            self._reset_op()

    def _missing_replace(self, events: list[ReplyEvent]) -> None:
        line = self._pair_line
        self._problem(
            events,
            line,
            f"line {line}: <pc:find> in {_describe(self._open())} has no <pc:replace> "
            f"before line {self._line}; that pair is skipped",
        )
        self._state = _State.EDIT
        self._reset_op()

    def _stray_in_edit(self, tag: _Tag, events: list[ReplyEvent]) -> None:
        self._problem(
            events,
            self._line,
            f"line {self._line}: {tag} does not belong inside {_describe(self._open())}",
        )

    def _close_edit(self, events: list[ReplyEvent]) -> None:
        block = self._open()
        if self._pairs == 0 and block.path is not None:
            self._problem(
                events,
                block.line,
                f"line {block.line}: {_describe(block)} has no <pc:find>/<pc:replace> pair",
            )
        self._close_block()

    def _close_block(self) -> None:
        self._block = None
        self._state = _State.OUTSIDE
        self._reset_op()
        self._pairs = 0

    def _problem(self, events: list[ReplyEvent], line: int, message: str) -> None:
        path = self._block.path if self._block is not None else None
        events.append(ParseProblem(message, line, path))


_FIND = _Tag("find")
_REPLACE = _Tag("replace")
_CLOSE_EDIT = _Tag("edit", closing=True)


def _describe(block: _Block) -> str:
    where = f" for {block.path}" if block.path is not None else ""
    return f"the <pc:{block.kind}> block{where} opened at line {block.line}"
