"""Git's ``wildmatch()``, translated once into a Python regular expression.

Git matches ignore patterns with its own glob engine (``wildmatch.c``), not with ``fnmatch``. Its
rules differ from shell globs in small ways that decide whether a file is sent, so they are
reproduced here exactly, on bytes (git compares bytes, so ``?`` matches one byte of a UTF-8 name):

Rule 1: ``?`` matches one byte other than ``/``; ``*`` matches any run of bytes without ``/``.
Rule 2: A run of two or more ``*`` is special only when it stands alone between slashes (or at the
        start or end of the pattern): ``**/`` matches zero or more whole directories, a trailing
        ``/**`` (or ``**`` alone) matches everything. Anywhere else ``**`` is just ``*``.
Rule 3: ``[...]`` is a set of bytes: ``!`` or ``^`` right after ``[`` negates it, ``]`` right after
        the opening (or the negation) is a member, ``a-z`` is a range (a reversed range is empty),
        ``\\x`` is a literal member, ``[:alpha:]`` and friends are ASCII classes. A set never
        matches ``/``. An unterminated set or an unknown ``[:class:]`` makes the pattern match
        nothing, as in git.
Rule 4: ``\\x`` matches ``x`` literally; a pattern ending in a lone backslash matches nothing.
Rule 5: Everything else matches itself; the whole text must match (no partial matches).

Translation happens once per pattern; matching is one ``fullmatch`` call. The translation is
checked against git itself by the differential tests in ``tests/client/context``.
"""

from __future__ import annotations

import re

__all__ = ["NEVER", "compile_wildmatch", "translate"]

_STAR = 0x2A  # *
_QUESTION = 0x3F  # ?
_LBRACKET = 0x5B  # [
_RBRACKET = 0x5D  # ]
_BACKSLASH = 0x5C  # \
_SLASH = 0x2F  # /
_DASH = 0x2D  # -
_COLON = 0x3A  # :
_BANG = 0x21  # !
_CARET = 0x5E  # ^

#: Returned by :func:`translate` for patterns that can never match (git aborts on them).
NEVER = None


def _bytes_in(*ranges: tuple[int, int]) -> frozenset[int]:
    return frozenset(b for lo, hi in ranges for b in range(lo, hi + 1))


# git's ctype is ASCII-only (``sane_ctype``): bytes >= 0x80 belong to no class.
_POSIX_CLASSES: dict[bytes, frozenset[int]] = {
    b"alnum": _bytes_in((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    b"alpha": _bytes_in((0x41, 0x5A), (0x61, 0x7A)),
    b"blank": frozenset({0x20, 0x09}),
    b"cntrl": _bytes_in((0x00, 0x1F), (0x7F, 0x7F)),
    b"digit": _bytes_in((0x30, 0x39)),
    b"graph": _bytes_in((0x21, 0x7E)),
    b"lower": _bytes_in((0x61, 0x7A)),
    b"print": _bytes_in((0x20, 0x7E)),
    b"punct": _bytes_in((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    b"space": frozenset({0x09, 0x0A, 0x0D, 0x20}),  # git's isspace: no \v, no \f
    b"upper": _bytes_in((0x41, 0x5A)),
    b"xdigit": _bytes_in((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}

_ALL_BUT_SLASH = frozenset(range(256)) - {_SLASH}


def _parse_class(pat: bytes, i: int) -> tuple[frozenset[int] | None, int]:
    """Parse the set starting at ``pat[i] == '['`` the way git's ``dowild()`` does.

    Returns the bytes the set matches (``/`` already removed) and the index after the closing
    ``]``, or ``None`` when git would abort (unterminated set, unknown ``[:class:]``).
    """
    n = len(pat)
    i += 1
    if i >= n:
        return None, n
    negated = pat[i] in (_BANG, _CARET)
    if negated:
        i += 1
    members: set[int] = set()
    prev = 0  # git's prev_ch: 0 means "the previous item cannot start a range"
    while True:
        if i >= n:
            return None, n
        c = pat[i]
        if c == _BACKSLASH:
            i += 1
            if i >= n:
                return None, n
            c = pat[i]
            members.add(c)
        elif c == _DASH and prev and i + 1 < n and pat[i + 1] != _RBRACKET:
            i += 1
            c = pat[i]
            if c == _BACKSLASH:
                i += 1
                if i >= n:
                    return None, n
                c = pat[i]
            members.update(range(prev, c + 1))  # empty when reversed, as in git
            c = 0
        elif c == _LBRACKET and i + 1 < n and pat[i + 1] == _COLON:
            start = i + 2
            j = start
            while j < n and pat[j] != _RBRACKET:
                j += 1
            if j >= n:
                return None, n
            if j - start - 1 < 0 or pat[j - 1] != _COLON:
                # No ":]": the "[" is an ordinary member and scanning resumes after it.
                members.add(_LBRACKET)
                c = _LBRACKET
            else:
                cls = _POSIX_CLASSES.get(pat[start : j - 1])
                if cls is None:
                    return None, n
                members.update(cls)
                c = 0
                i = j
        else:
            members.add(c)
        prev = c
        i += 1
        if i >= n:
            return None, n
        if pat[i] == _RBRACKET:
            break
    matched = (_ALL_BUT_SLASH - members) if negated else (frozenset(members) - {_SLASH})
    return frozenset(matched), i + 1


def _render_set(members: frozenset[int]) -> bytes:
    """Render a byte set as a compact regex class of ``\\xNN`` ranges."""
    if not members:
        return b"(?!)"
    out = [b"["]
    values = sorted(members)
    lo = prev = values[0]
    for b in values[1:] + [-2]:
        if b == prev + 1:
            prev = b
            continue
        if lo == prev:
            out.append(b"\\x%02x" % lo)
        else:
            out.append(b"\\x%02x-\\x%02x" % (lo, prev))
        lo = prev = b
    out.append(b"]")
    return b"".join(out)


def translate(pattern: bytes) -> bytes | None:
    """Translate a git wildmatch pattern (``WM_PATHNAME`` semantics) into regex source.

    The result must be used with ``fullmatch`` and ``re.DOTALL``. ``None`` means the pattern can
    never match anything. The start of ``pattern`` counts as a directory boundary for ``**``,
    which matters because git matches the part of a pattern after its literal prefix separately
    (see ``patterns.py``).
    """
    out: list[bytes] = []
    literal = bytearray()
    n = len(pattern)
    i = 0

    def flush() -> None:
        if literal:
            out.append(re.escape(bytes(literal)))
            literal.clear()

    while i < n:
        c = pattern[i]
        if c == _STAR:
            j = i + 1
            while j < n and pattern[j] == _STAR:
                j += 1
            flush()
            if j - i >= 2 and (i == 0 or pattern[i - 1] == _SLASH):
                if j == n:
                    out.append(b".*")
                    i = j
                    continue
                if pattern[j] == _SLASH:
                    out.append(b"(?:.*/)?")
                    i = j + 1
                    continue
                if pattern[j] == _BACKSLASH and j + 1 < n and pattern[j + 1] == _SLASH:
                    out.append(b".*")  # "**\/": any bytes, then the escaped slash
                    i = j
                    continue
            out.append(b"[^/]*")
            i = j
        elif c == _QUESTION:
            flush()
            out.append(b"[^/]")
            i += 1
        elif c == _LBRACKET:
            members, i = _parse_class(pattern, i)
            if members is None:
                return NEVER
            flush()
            out.append(_render_set(members))
        elif c == _BACKSLASH:
            if i + 1 >= n:
                return NEVER
            literal.append(pattern[i + 1])
            i += 2
        else:
            literal.append(c)
            i += 1
    flush()
    return b"".join(out)


def compile_wildmatch(pattern: bytes) -> re.Pattern[bytes] | None:
    """Compile ``pattern`` for ``fullmatch`` on a project-relative path; ``None`` never matches."""
    source = translate(pattern)
    if source is None:
        return None
    return re.compile(source, re.DOTALL)
