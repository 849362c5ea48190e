"""Opening a file that may be sent: the checks that need the file itself, in one open.

Rules:

Rule 1: A file is opened once, with ``O_NOFOLLOW`` (a symlink is opened by the path of its
        target, as the scanner checked it: ``scan.py``, Rule 6) and with ``O_NONBLOCK``, so
        that a FIFO swapped in after the listing cannot block. Every check below uses that one
        open file, so nothing can be swapped between a check and the read.
Rule 2: It is refused, with a reason, when it is not a regular file, when it is larger than the
        limit (by ``fstat``, or because it grew past the limit while being read), when it cannot
        be opened or read, or when it is binary: a NUL byte in its first
        :data:`BINARY_SNIFF_BYTES` bytes (git's heuristic).
Rule 3: Reading the head only (a sniff, for ``load --dry-run`` and ``ignore why``) and reading
        the whole file (for ``load`` and ``update``) make the same decision: the size comes from
        ``fstat`` and the binary check reads the same first bytes either way.
Rule 4: Content is bytes here. Whoever sends it decodes it as UTF-8 with replacement, so text
        that is not UTF-8 is loaded, never a crash.
"""

from __future__ import annotations

import os
import stat

__all__ = [
    "BINARY_SNIFF_BYTES",
    "Unloadable",
    "format_size",
    "looks_binary",
    "read_checked",
    "unreadable",
]

#: A NUL byte in this many leading bytes makes a file binary (git's heuristic).
BINARY_SNIFF_BYTES = 8192
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in after listing must not block us
    | getattr(os, "O_NOCTTY", 0)
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: Bytes per read once a file turned out not to be the size ``fstat`` gave.
_READ_CHUNK = 1 << 20


class Unloadable(Exception):
    """A file that may not be sent; the message is the reason, as a skip line shows it."""


def looks_binary(head: bytes) -> bool:
    """git's heuristic: a NUL byte in the first :data:`BINARY_SNIFF_BYTES` bytes."""
    return head.find(b"\0", 0, BINARY_SNIFF_BYTES) != -1


def format_size(n: int) -> str:
    """``1 MiB``, ``1.5 KiB``, ``300 bytes``: sizes for skip reasons."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value.is_integer() else f"{value:.1f} {unit}"
    return f"{n} bytes"


def _too_large(size: int, limit: int) -> Unloadable:
    return Unloadable(f"larger than {format_size(limit)} ({format_size(size)})")


def unreadable(exc: OSError) -> str:
    """The skip reason for an ``OSError`` met while opening or reading."""
    return f"unreadable: {exc.strerror or type(exc).__name__}"


def read_checked(path: str | bytes, max_bytes: int, *, whole: bool = True) -> tuple[int, bytes]:
    """Open ``path`` once, check it (Rules 1-3) and return its size and content.

    Args:
        path: Where the file is (absolute, or relative to the current directory).
        max_bytes: Larger files are refused.
        whole: Read the whole file; otherwise only its first :data:`BINARY_SNIFF_BYTES` bytes.

    Returns:
        The file's size as read (as ``fstat`` gave it when only the head was read), and its
        bytes (the head only when ``whole`` is false).

    Raises:
        Unloadable: the file may not be sent; the message says why.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS | _NOFOLLOW)
    except OSError as exc:
        raise Unloadable(unreadable(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unloadable("not a regular file")
        size = st.st_size
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        if not whole:
            data = os.read(fd, BINARY_SNIFF_BYTES) if size else b""
        else:
            # One read when the file is as fstat said; more only when it grew or shrank since
            # (or the read was short), to its end, and never past the limit.
            data = os.read(fd, size + 1)
            if len(data) != size:
                parts = [data]
                got = len(data)
                while got <= max_bytes:
                    chunk = os.read(fd, min(max_bytes + 1 - got, _READ_CHUNK))
                    if not chunk:
                        break
                    parts.append(chunk)
                    got += len(chunk)
                if got > max_bytes:
                    raise Unloadable(f"larger than {format_size(max_bytes)} (grew while read)")
                data = b"".join(parts)
            size = len(data)
    except OSError as exc:
        raise Unloadable(unreadable(exc)) from None
    finally:
        os.close(fd)
    if looks_binary(data):
        raise Unloadable("binary")
    return size, data
