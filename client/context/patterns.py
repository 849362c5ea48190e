"""One ignore file, parsed the way git parses ``.gitignore`` (``dir.c``), compiled once.

Rules for reading a file (``add_patterns_from_buffer``):

Rule 1: A UTF-8 byte-order mark at the start is skipped. Lines end at ``\\n``; one ``\\r`` before it
        is dropped. A line that is empty or starts with ``#`` is skipped (``\\#`` escapes it).
Rule 2: Trailing spaces (only ``' '``, not tabs) are removed unless escaped with a backslash.
Rule 3: A leading ``!`` negates the pattern (``\\!`` escapes it). One trailing ``/`` makes the
        pattern match directories only and is then removed.
Rule 4: A pattern with no ``/`` left in it matches the *name* of a file or directory at any depth
        below the ignore file. Otherwise (a leading or middle ``/``) it matches the path relative
        to the ignore file's directory; a leading ``/`` only anchors and is removed.
Rule 5: The literal prefix of a path pattern (up to the first of ``*?[\\``) is compared as is, and
        the rest is handed to wildmatch as a *separate* pattern, so a ``**`` right after the
        prefix counts as being at the start (git's ``match_pathname``; ``foo**/bar`` therefore
        matches ``foo/a/b/bar``).
Rule 6: The pattern is cut at a NUL byte, as git uses C strings.

Each :class:`Rule` carries where it came from (file, line, pattern text) so that a verdict can say
which rule decided, like ``git check-ignore -v``, and a priority: a higher priority wins.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from plancast.client.context.wildmatch import translate

__all__ = ["Rule", "SourceKind", "parse_ignore_bytes", "simple_length"]

_GLOB_SPECIAL = frozenset(b"*?[\\")
_BOM = b"\xef\xbb\xbf"


class SourceKind(enum.IntEnum):
    """Where a rule comes from, in increasing precedence (for rules at the same directory)."""

    DEFAULT = 0  # plancast's built-in defaults: lowest precedence of all
    GLOBAL = 1  # core.excludesFile or $XDG_CONFIG_HOME/git/ignore
    INFO = 2  # .git/info/exclude
    GITIGNORE = 3  # .gitignore in some directory
    PLANCASTIGNORE = 4  # .plancastignore in some directory (after that directory's .gitignore)

    @property
    def is_git(self) -> bool:
        """Git's own sources: these are the ones that do not apply to tracked files."""
        return self in (SourceKind.GLOBAL, SourceKind.INFO, SourceKind.GITIGNORE)


def simple_length(pattern: bytes) -> int:
    """Length of the literal prefix of ``pattern`` (git's ``simple_length``)."""
    for i, c in enumerate(pattern):
        if c in _GLOB_SPECIAL:
            return i
    return len(pattern)


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """One compiled pattern line.

    Matching uses the cheapest exact form: ``literal`` (whole name or path equals), ``suffix``
    (git's ``*literal`` fast path), else ``regex``; a rule with none of the three never matches.
    """

    source: str  # ".gitignore", "src/.plancastignore", "<global>", "<default>", ...
    kind: SourceKind
    line: int
    text: str  # the pattern as written, after trimming (for display)
    negated: bool
    dir_only: bool
    basename: bool  # no "/" in the pattern: match the entry's name, not its path
    base: bytes  # directory of the ignore file relative to the root, b"" or b"dir/sub/"
    priority: int
    literal: bytes | None = None
    suffix: bytes | None = None
    regex_source: bytes | None = None
    regex: re.Pattern[bytes] | None = field(default=None, repr=False)
    prefix: bytes = b""  # literal prefix of a path pattern, relative to ``base``
    git: bool = field(init=False)  # from git's own sources (Rule 3 of ignore.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "git", self.kind.is_git)

    def matches(self, rel: bytes, name: bytes, is_dir: bool) -> bool:
        """Whether this rule matches the entry ``rel`` (root-relative) named ``name``."""
        if self.dir_only and not is_dir:
            return False
        if self.basename:
            target = name
        else:
            if not rel.startswith(self.base):
                return False
            target = rel[len(self.base) :]
        if self.literal is not None:
            return target == self.literal
        if self.suffix is not None:
            return target.endswith(self.suffix)
        if self.regex is None:
            return False
        return self.regex.fullmatch(target) is not None

    def describe(self) -> str:
        """``.gitignore:3 'build/'``: the location and the pattern as written."""
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where} {self.text!r}"


def _trim_trailing_spaces(line: bytes) -> bytes:
    """Drop unescaped trailing spaces (git's ``trim_trailing_spaces``)."""
    last_space = -1
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c == 0x20:
            if last_space < 0:
                last_space = i
        elif c == 0x5C:
            i += 1
            if i >= n:
                return line
            last_space = -1
        else:
            last_space = -1
        i += 1
    return line[:last_space] if last_space >= 0 else line


def _compile(body: bytes, basename: bool) -> tuple[bytes | None, bytes | None, bytes | None, bytes]:
    """Choose the matching form for a pattern body: (literal, suffix, regex source, prefix)."""
    if basename:
        nowild = simple_length(body)
        if nowild == len(body):
            return body, None, None, b""
        if body[:1] == b"*" and simple_length(body[1:]) == len(body) - 1 and len(body) > 1:
            return None, body[1:], None, b""
        return None, None, translate(body), b""
    if body[:1] == b"/":
        body = body[1:]
    nowild = simple_length(body)
    prefix = body[:nowild]
    rest = body[nowild:]
    if not rest:
        return prefix, None, None, prefix
    rest_source = translate(rest)
    if rest_source is None:
        return None, None, None, prefix
    return None, None, re.escape(prefix) + rest_source, prefix


def parse_ignore_bytes(
    data: bytes,
    *,
    source: str,
    kind: SourceKind,
    base: bytes = b"",
    rank: int | None = None,
) -> list[Rule]:
    """Parse the text of one ignore file into rules, in file order.

    Args:
        data: The raw file contents (any encoding: patterns are bytes, as in git).
        source: How verdicts name this file, e.g. ``"src/.gitignore"`` or ``"<global>"``.
        kind: Which kind of source it is.
        base: The file's directory relative to the root, ``b""`` or ending in ``b"/"``.
        rank: Precedence of the whole file; defaults to one derived from ``kind`` and the depth
            of ``base`` (deeper directories win, ``.plancastignore`` after ``.gitignore``).

    Returns:
        The rules, each with a priority that orders it against every other rule.
    """
    if rank is None:
        rank = file_rank(kind, base)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    rules: list[Rule] = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for lineno, raw in enumerate(lines, start=1):
        if not raw or raw[:1] == b"#":
            continue
        line = raw[:-1] if raw.endswith(b"\r") else raw
        nul = line.find(b"\0")
        if nul >= 0:
            line = line[:nul]
        line = _trim_trailing_spaces(line)
        text = line.decode("utf-8", "backslashreplace")
        negated = line[:1] == b"!"
        body = line[1:] if negated else line
        dir_only = body.endswith(b"/")
        if dir_only:
            body = body[:-1]
        basename = b"/" not in body
        literal, suffix, regex_source, prefix = _compile(body, basename)
        rules.append(
            Rule(
                source=source,
                kind=kind,
                line=lineno,
                text=text,
                negated=negated,
                dir_only=dir_only,
                basename=basename,
                base=base,
                priority=(rank << 20) | lineno,
                literal=literal,
                suffix=suffix,
                regex_source=regex_source,
                regex=None if regex_source is None else re.compile(regex_source, re.DOTALL),
                prefix=prefix,
            )
        )
    return rules


def file_rank(kind: SourceKind, base: bytes) -> int:
    """Precedence of a whole ignore file: global < info/exclude < root .gitignore < deeper ones."""
    if kind is SourceKind.GITIGNORE or kind is SourceKind.PLANCASTIGNORE:
        depth = base.count(b"/")
        return 3 + 2 * depth + (kind is SourceKind.PLANCASTIGNORE)
    return int(kind)
