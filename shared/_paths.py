"""Project-relative paths that cannot escape the project.

Every path a model proposes, and every path stored in a plan, goes through
``check_relative_path`` first. This is the lexical half of the guard; the
client adds the on-disk half (symlinks) before it writes anything.
"""

from __future__ import annotations

import posixpath

from ._errors import UnsafePathError

MAX_PATH_CHARS = 4096
_FORBIDDEN_DIRS = frozenset({".git", ".plancast"})


def check_relative_path(path: str) -> str:
    """Normalise a project-relative path, refusing any that could escape.

    Args:
        path: a path as a model or a user wrote it; ``\\`` is read as ``/``.

    Returns:
        The normal form: POSIX separators, no ``.`` parts, no trailing slash.

    Raises:
        UnsafePathError: the path is empty, absolute, has a drive letter, a NUL
            or control character, climbs out with ``..``, or enters ``.git`` or
            ``.plancast``.
    """
    if not path or not path.strip():
        raise UnsafePathError("path is empty")
    if len(path) > MAX_PATH_CHARS:
        raise UnsafePathError(f"path is longer than {MAX_PATH_CHARS} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        raise UnsafePathError(f"path {path[:80]!r} contains a control character")
    text = path.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UnsafePathError(f"path {path!r} is absolute; only project-relative paths are allowed")
    parts = text.split("/")
    if ".." in parts:
        raise UnsafePathError(f"path {path!r} climbs out of the project with '..'")
    normal = posixpath.normpath(text)
    if normal in (".", ""):
        raise UnsafePathError(f"path {path!r} names the project root, not a file")
    if len(normal) > 1 and normal[1] == ":":  # 'C:/x' again, once './' is gone
        raise UnsafePathError(f"path {path!r} is absolute; only project-relative paths are allowed")
    for part in normal.split("/"):
        if part.lower() in _FORBIDDEN_DIRS:
            raise UnsafePathError(f"path {path!r} is inside {part}/, which plancast never writes")
    return normal
